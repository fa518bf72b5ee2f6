"""RLFN: residual local feature network (Kong et al., CVPRW 2022, NTIRE 2022 efficient SR).

Structure: head conv → B residual local feature blocks (three conv3-LeakyReLU with a local
skip, a 1×1 conv, then enhanced spatial attention, ESA) → conv + long skip → one sub-pixel
convolution straight to the output channels. For 1-channel 16-bit data, no mean shift.
ESA pools over a strided, max-pooled map: inputs need at least :data:`MIN_INPUT` pixels a side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIN_INPUT = 15  # ESA: conv 3×3 stride 2, then max-pool 7 stride 3, must keep ≥ 1 pixel


class ESA(nn.Module):
    """Enhanced spatial attention (Liu et al. 2020), in RLFN's lighter form."""

    def __init__(self, channels: int, esa_channels: int) -> None:
        super().__init__()
        f = esa_channels
        self.reduce = nn.Conv2d(channels, f, 1)
        self.skip = nn.Conv2d(f, f, 1)
        self.down = nn.Conv2d(f, f, 3, stride=2)
        self.mix = nn.Conv2d(f, f, 3, padding=1)
        self.expand = nn.Conv2d(f, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weight every pixel of ``x`` by a sigmoid attention map."""
        reduced = self.reduce(x)
        pooled = F.max_pool2d(self.down(reduced), kernel_size=7, stride=3)
        coarse = F.interpolate(self.mix(pooled), size=x.shape[-2:], mode="bilinear",
                               align_corners=False)
        return x * torch.sigmoid(self.expand(coarse + self.skip(reduced)))


class RLFB(nn.Module):
    """Residual local feature block."""

    def __init__(self, channels: int, mid_channels: int, esa_channels: int) -> None:
        super().__init__()
        act = nn.LeakyReLU(0.05, inplace=True)
        self.body = nn.Sequential(nn.Conv2d(channels, mid_channels, 3, padding=1), act,
                                  nn.Conv2d(mid_channels, mid_channels, 3, padding=1), act,
                                  nn.Conv2d(mid_channels, channels, 3, padding=1), act)
        self.fuse = nn.Conv2d(channels, channels, 1)
        self.esa = ESA(channels, esa_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Local residual, 1×1 fusion, spatial attention."""
        return self.esa(self.fuse(x + self.body(x)))


class RLFN(nn.Module):
    """Residual local feature network.

    Parameters
    ----------
    scale : int
        Upsampling factor (any integer ≥ 1: one sub-pixel convolution).
    n_blocks, n_feats, mid_feats, esa_feats : int
        B blocks of C features, the blocks' inner width and ESA's width (paper: 6, 52, 52, 16;
        NTIRE 2022 winner: 4, 46, 48, 16).
    in_channels : int
        Input and output channels.
    """

    def __init__(self, *, scale: int = 2, n_blocks: int = 6, n_feats: int = 52,
                 mid_feats: int = 52, esa_feats: int = 16, in_channels: int = 1) -> None:
        super().__init__()
        self.config = {"name": "rlfn", "scale": scale, "n_blocks": n_blocks, "n_feats": n_feats,
                       "mid_feats": mid_feats, "esa_feats": esa_feats, "in_channels": in_channels}
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[RLFB(n_feats, mid_feats, esa_feats) for _ in range(n_blocks)])
        self.trunk = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.upsample = nn.Sequential(nn.Conv2d(n_feats, in_channels * scale ** 2, 3, padding=1),
                                      nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) to (N, C, H*scale, W*scale); H and W at least MIN_INPUT."""
        if min(x.shape[-2:]) < MIN_INPUT:
            raise ValueError(f"RLFN needs inputs of at least {MIN_INPUT}×{MIN_INPUT} pixels "
                             f"(its spatial attention pools), got {tuple(x.shape[-2:])}")
        feats = self.head(x)
        return self.upsample(self.trunk(self.body(feats)) + feats)
