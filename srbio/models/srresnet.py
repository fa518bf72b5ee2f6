"""SRResNet (Ledig et al., CVPR 2017): the generator of SRGAN, for 1-channel 16-bit data.

Structure: 9×9 head conv + PReLU → B residual blocks (conv-BN-PReLU-conv-BN with a skip) →
conv-BN + long skip → sub-pixel upsampling steps (conv, PixelShuffle, PReLU) → 9×9 conv.
``batch_norm=0`` drops the batch norms (as EDSR and later SRResNet variants do): batch
statistics of microscopy patches vary with the imaged structure, which BN then imprints.
Trained adversarially (``train.adversarial``) it is SRGAN's generator.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN with a skip."""

    def __init__(self, channels: int, batch_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                  _norm(channels, batch_norm), nn.PReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1),
                                  _norm(channels, batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return x + self.body(x)


def _upsampler(scale: int, channels: int) -> nn.Module:
    """SRResNet's sub-pixel steps: ×2 steps for powers of 2, one ×3 step, none at ×1."""
    if scale == 1:
        return nn.Identity()
    if scale & (scale - 1) == 0:
        factors = [2] * int(math.log2(scale))
    elif scale == 3:
        factors = [3]
    else:
        raise ValueError(f"SRResNet supports scale 1, 3 or a power of 2, got {scale}")
    layers: list[nn.Module] = []
    for f in factors:
        layers += [nn.Conv2d(channels, channels * f * f, 3, padding=1), nn.PixelShuffle(f),
                   nn.PReLU()]
    return nn.Sequential(*layers)


class SRResNet(nn.Module):
    """Super-resolution residual network.

    Parameters
    ----------
    scale : int
        Upsampling factor (1, 3 or a power of 2).
    n_blocks, n_feats : int
        B residual blocks of C channels (paper: 16 × 64).
    batch_norm : int
        1: batch norm in the blocks, as published; 0: none.
    in_channels : int
        Input and output channels.
    """

    def __init__(self, *, scale: int = 4, n_blocks: int = 16, n_feats: int = 64,
                 batch_norm: int = 1, in_channels: int = 1) -> None:
        super().__init__()
        self.config = {"name": "srresnet", "scale": scale, "n_blocks": n_blocks,
                       "n_feats": n_feats, "batch_norm": batch_norm, "in_channels": in_channels}
        self.head = nn.Sequential(nn.Conv2d(in_channels, n_feats, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*[ResidualBlock(n_feats, bool(batch_norm))
                                    for _ in range(n_blocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1),
                                  _norm(n_feats, bool(batch_norm)))
        self.upsample = _upsampler(scale, n_feats)
        self.tail = nn.Conv2d(n_feats, in_channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) to (N, C, H*scale, W*scale)."""
        feats = self.head(x)
        return self.tail(self.upsample(feats + self.body(feats)))
