"""EDSR: enhanced deep residual network (Lim et al., CVPRW 2017), for 1-channel 16-bit data.

Structure: head conv → B residual blocks (conv-ReLU-conv, no batch norm, output scaled by
``res_scale``) → conv + long skip → sub-pixel upsampler → conv. No RGB mean shift: inputs are
images normalised with fixed dataset-wide values.
"""

from __future__ import annotations

import torch
from torch import nn

from srbio.models.common import pixel_shuffle_upsampler


class ResBlock(nn.Module):
    """conv-ReLU-conv with a skip; the residual is multiplied by ``res_scale``."""

    def __init__(self, channels: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """Enhanced deep super-resolution network.

    Parameters
    ----------
    scale : int
        Upsampling factor (1, 3 or a power of 2).
    n_blocks, n_feats : int
        B residual blocks of C feature channels (baseline 16 × 64, paper 32 × 256).
    res_scale : float
        Residual scaling (0.1 keeps wide models stable).
    in_channels : int
        Input and output channels.
    """

    def __init__(self, *, scale: int = 2, n_blocks: int = 16, n_feats: int = 64,
                 res_scale: float = 1.0, in_channels: int = 1) -> None:
        super().__init__()
        self.config = {"name": "edsr", "scale": scale, "n_blocks": n_blocks, "n_feats": n_feats,
                       "res_scale": res_scale, "in_channels": in_channels}
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(n_feats, res_scale) for _ in range(n_blocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.upsample = pixel_shuffle_upsampler(scale, n_feats, name="EDSR")
        self.tail = nn.Conv2d(n_feats, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) to (N, C, H*scale, W*scale)."""
        feats = self.head(x)
        return self.tail(self.upsample(feats + self.body(feats)))
