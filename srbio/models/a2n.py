"""A2N: attention in attention network (Chen et al., 2021), for 1-channel 16-bit data.

Structure: head conv → B attention-in-attention blocks → conv + long skip → upsampling by
nearest-neighbour interpolation, each step followed by conv, pixel attention and conv → conv,
plus a global skip from the bilinearly upsampled input. In each block an *attention dropout
module* weighs an attention branch against a non-attention branch per image (softmax of a
small MLP over pooled features, with temperature ``temperature``), so the network learns where
attention helps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PixelAttention(nn.Module):
    """x · sigmoid(conv1×1(x))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Weight each pixel and channel."""
        return x * torch.sigmoid(self.conv(x))


class AttentionBranch(nn.Module):
    """conv3×3(x) weighted by a sigmoid map computed from x, then conv3×3."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.key = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.gate = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.out = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The attended features."""
        weight = torch.sigmoid(self.gate(F.leaky_relu(self.key(x), 0.2)))
        return self.out(self.value(x) * weight)


class AAB(nn.Module):
    """Attention-in-attention block with its attention dropout module."""

    def __init__(self, channels: int, reduction: int, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.enter = nn.Conv2d(channels, channels, 1, bias=False)
        self.leave = nn.Conv2d(channels, channels, 1, bias=False)
        self.dropout_module = nn.Sequential(  # two weights per image: attention, no attention
            nn.Linear(channels, max(1, channels // reduction), bias=False), nn.ReLU(),
            nn.Linear(max(1, channels // reduction), 2, bias=False))
        self.attention = AttentionBranch(channels)
        self.plain = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update mixing both branches with per-image weights."""
        feats = F.leaky_relu(self.enter(x), 0.2)
        weights = F.softmax(self.dropout_module(feats.mean(dim=(2, 3))) / self.temperature,
                            dim=1)
        mixed = (self.attention(feats) * weights[:, 0, None, None, None]
                 + self.plain(feats) * weights[:, 1, None, None, None])
        return x + self.leave(F.leaky_relu(mixed, 0.2))


def upsampling_steps(scale: int) -> list[int]:
    """Factors of the interpolation steps: ×2 steps for powers of 2 ≥ 4, else one step."""
    if scale >= 4 and scale & (scale - 1) == 0:
        return [2] * int(math.log2(scale))
    return [scale]


class UpStep(nn.Module):
    """Nearest-neighbour interpolation, conv, pixel attention, conv (LeakyReLU between)."""

    def __init__(self, in_channels: int, channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.attention = PixelAttention(channels)
        self.refine = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample by ``factor``."""
        if self.factor != 1:
            x = F.interpolate(x, scale_factor=self.factor, mode="nearest")
        x = F.leaky_relu(self.attention(self.conv(x)), 0.2)
        return F.leaky_relu(self.refine(x), 0.2)


class A2N(nn.Module):
    """Attention in attention network.

    Parameters
    ----------
    scale : int
        Upsampling factor.
    n_blocks, n_feats : int
        B attention-in-attention blocks of C channels (paper: 16 × 40).
    up_feats : int
        Channels of the upsampling part (paper: 24).
    reduction : int
        Channel reduction of the attention dropout module (paper: 4).
    temperature : float
        Softmax temperature of the attention dropout module (paper: 30).
    in_channels : int
        Input and output channels.
    """

    def __init__(self, *, scale: int = 2, n_blocks: int = 16, n_feats: int = 40,
                 up_feats: int = 24, reduction: int = 4, temperature: float = 30.0,
                 in_channels: int = 1) -> None:
        super().__init__()
        self.config = {"name": "a2n", "scale": scale, "n_blocks": n_blocks, "n_feats": n_feats,
                       "up_feats": up_feats, "reduction": reduction,
                       "temperature": temperature, "in_channels": in_channels}
        if scale < 1:
            raise ValueError(f"A2N needs a scale of at least 1, got {scale}")
        self.scale = scale
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[AAB(n_feats, reduction, temperature)
                                    for _ in range(n_blocks)])
        self.body_tail = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        steps = upsampling_steps(scale)
        self.upsample = nn.Sequential(*[UpStep(n_feats if i == 0 else up_feats, up_feats, f)
                                        for i, f in enumerate(steps)])
        self.tail = nn.Conv2d(up_feats, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) to (N, C, H*scale, W*scale)."""
        feats = self.head(x)
        feats = feats + self.body_tail(self.body(feats))
        skip = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale,
                                                        mode="bilinear", align_corners=False)
        return self.tail(self.upsample(feats)) + skip
