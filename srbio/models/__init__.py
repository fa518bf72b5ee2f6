"""Networks (torch.nn.Module) and the factory that builds them by name.

Importing this package does not import torch: the registry (names, presets, scales) is plain
Python, so the configuration schema can check a network before any heavy import.
"""

from typing import Any

from srbio.models.registry import NETWORKS, network_info

__all__ = ["NETWORKS", "build_network", "count_parameters", "network_info"]


def __getattr__(name: str) -> Any:
    if name in ("build_network", "count_parameters"):
        from srbio.models import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'srbio.models' has no attribute {name!r}")
