"""Building blocks shared by several networks."""

from __future__ import annotations

import math

from torch import nn


def pixel_shuffle_upsampler(scale: int, channels: int, *, name: str) -> nn.Module:
    """Sub-pixel convolution upsampler (Shi et al. 2016): ×2 steps for powers of 2, one ×3.

    Raises
    ------
    ValueError
        For a scale that is neither 1, 3 nor a power of 2, naming the network.
    """
    if scale == 1:
        return nn.Identity()
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
            layers += [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2)]
    elif scale == 3:
        layers += [nn.Conv2d(channels, 9 * channels, 3, padding=1), nn.PixelShuffle(3)]
    else:
        raise ValueError(f"{name} supports scale 1, 3 or a power of 2, got {scale}")
    return nn.Sequential(*layers)
