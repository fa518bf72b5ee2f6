"""3D RCAN: residual channel attention on volumes (Conv3d), for 1-channel 16-bit data.

The 2D RCAN's structure (:mod:`srbio.models.rcan`) with 3×3×3 convolutions and channel
attention pooled over the whole volume. The scale may be anisotropic: ``scale`` upsamples y
and x, ``z_scale`` (default 1) z, with one sub-pixel step (a 3D pixel shuffle) — (1, 2, 2)
super-resolves laterally while every layer still sees the neighbouring planes.
"""

from __future__ import annotations

import torch
from torch import nn


def pixel_shuffle_3d(x: torch.Tensor, factors: tuple[int, int, int]) -> torch.Tensor:
    """(N, C·fz·fy·fx, D, H, W) → (N, C, D·fz, H·fy, W·fx), as PixelShuffle does in 2D."""
    fz, fy, fx = factors
    n, c, d, h, w = x.shape
    out = c // (fz * fy * fx)
    x = x.reshape(n, out, fz, fy, fx, d, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(n, out, d * fz, h * fy, w * fx)


class PixelShuffle3d(nn.Module):
    """Module form of :func:`pixel_shuffle_3d`."""

    def __init__(self, factors: tuple[int, int, int]) -> None:
        super().__init__()
        self.factors = factors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rearrange channels into space."""
        return pixel_shuffle_3d(x, self.factors)


class ChannelAttention3d(nn.Module):
    """Squeeze-and-excitation over the whole volume."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.body = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Conv3d(channels, hidden, 1),
                                  nn.ReLU(inplace=True), nn.Conv3d(hidden, channels, 1),
                                  nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel by its attention weight."""
        return x * self.body(x)


class RCAB3d(nn.Module):
    """conv-ReLU-conv-CA with a skip (residual × res_scale)."""

    def __init__(self, channels: int, reduction: int, res_scale: float) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(nn.Conv3d(channels, channels, 3, padding=1),
                                  nn.ReLU(inplace=True),
                                  nn.Conv3d(channels, channels, 3, padding=1),
                                  ChannelAttention3d(channels, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return x + self.body(x) * self.res_scale


class ResidualGroup3d(nn.Module):
    """B blocks and a conv, with a group skip."""

    def __init__(self, channels: int, n_blocks: int, reduction: int, res_scale: float) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[RCAB3d(channels, reduction, res_scale)
                                      for _ in range(n_blocks)])
        self.conv = nn.Conv3d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return x + self.conv(self.blocks(x))


class RCAN3D(nn.Module):
    """Residual channel attention network on volumes.

    Parameters
    ----------
    scale : int
        Lateral (y, x) upsampling factor.
    z_scale : int
        Axial (z) upsampling factor (1: z is not upsampled).
    n_groups, n_blocks, n_feats, reduction, res_scale
        As for the 2D :class:`~srbio.models.rcan.RCAN`.
    in_channels : int
        Input and output channels.
    """

    def __init__(self, *, scale: int = 2, z_scale: int = 1, n_groups: int = 2,
                 n_blocks: int = 2, n_feats: int = 16, reduction: int = 8,
                 res_scale: float = 1.0, in_channels: int = 1) -> None:
        super().__init__()
        self.config = {"name": "rcan3d", "scale": scale, "z_scale": z_scale,
                       "n_groups": n_groups, "n_blocks": n_blocks, "n_feats": n_feats,
                       "reduction": reduction, "res_scale": res_scale,
                       "in_channels": in_channels}
        if scale < 1 or z_scale < 1:
            raise ValueError(f"RCAN3D needs scales of at least 1, got z {z_scale}, yx {scale}")
        self.head = nn.Conv3d(in_channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[ResidualGroup3d(n_feats, n_blocks, reduction, res_scale)
                                    for _ in range(n_groups)])
        self.body_conv = nn.Conv3d(n_feats, n_feats, 3, padding=1)
        factors = (z_scale, scale, scale)
        self.upsample = nn.Identity() if factors == (1, 1, 1) else nn.Sequential(
            nn.Conv3d(n_feats, n_feats * z_scale * scale * scale, 3, padding=1),
            PixelShuffle3d(factors))
        self.tail = nn.Conv3d(n_feats, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, D, H, W) to (N, C, D·z_scale, H·scale, W·scale)."""
        if x.ndim != 5:
            raise ValueError(f"RCAN3D takes volumes (N, C, D, H, W), got shape "
                             f"{tuple(x.shape)}")
        feats = self.head(x)
        feats = feats + self.body_conv(self.body(feats))
        return self.tail(self.upsample(feats))
