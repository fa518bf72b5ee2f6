"""Networks (torch.nn.Module) and a factory keyed by name."""

from srbio.models.rcan import PRESETS, RCAN, build_model

__all__ = ["PRESETS", "RCAN", "build_model"]
