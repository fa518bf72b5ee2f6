"""Pixel losses and their weighted sums, on normalised images (N, C, H, W).

``1 - SSIM`` uses a Gaussian window (11 px, σ 1.5) and the constants of Wang et al. 2004 for
a data range of 1 (the fixed normalisation maps vmin..vmax to 0..1).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("l1", "mse", "charbonnier", "huber", "ssim")


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of ``sqrt((pred - target)² + eps²)``: a smooth L1 (Lai et al. 2017)."""
    return torch.sqrt((pred - target) ** 2 + eps ** 2).mean()


def _gaussian_window(channels: int, size: int = 11, sigma: float = 1.5,
                     dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_map(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0
             ) -> torch.Tensor:
    """Local SSIM of every fully covered 11×11 Gaussian window (valid convolution)."""
    c = pred.shape[1]
    w = _gaussian_window(c, dtype=pred.dtype, device=pred.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p ** 2
    var_t = blur(target * target) - mu_t ** 2
    cov = blur(pred * target) - mu_p * mu_t
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1)
                                                        * (var_p + var_t + c2))


def as_planes(x: torch.Tensor) -> torch.Tensor:
    """Volumes (N, C, D, H, W) as planes (N·D, C, H, W); planes unchanged."""
    return x.transpose(1, 2).flatten(0, 1) if x.ndim == 5 else x


class PixelLoss(nn.Module):
    """A weighted sum of pixel losses, e.g. ``{"l1": 1.0, "ssim": 0.2}``.

    Parameters
    ----------
    weights : mapping
        Loss name (one of :data:`LOSSES`) → weight; ``ssim`` means ``1 - SSIM``.
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        unknown = sorted(set(weights) - set(LOSSES))
        if unknown or not weights:
            raise ValueError(f"losses {unknown or '(none)'}: expected weights for some of "
                             f"{', '.join(LOSSES)}")
        self.weights = dict(weights)

    def terms(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every configured loss, unweighted (volumes: SSIM over their planes)."""
        pred, target = as_planes(pred), as_planes(target)
        fns = {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": charbonnier,
               "huber": lambda p, t: F.huber_loss(p, t, delta=0.1),
               "ssim": lambda p, t: 1 - ssim_map(p, t).mean()}
        return {name: fns[name](pred, target) for name in self.weights}

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted sum."""
        return sum(w * v for (_, w), v in zip(self.weights.items(),
                                               self.terms(pred, target).values(), strict=True))
