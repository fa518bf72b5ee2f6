"""The SRGAN discriminator (Ledig et al., CVPR 2017), for adversarial training of any network.

Eight 3×3 convolutions (64 → 512 channels, stride 2 every second one, BN after all but the
first, LeakyReLU 0.2), then a dense 1024 → LeakyReLU → dense 1 scoring "real HR". The dense part
follows a global average pool instead of the paper's flatten, so patches of any size ≥ 16 pixels
can be scored.
"""

from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    """VGG-style patch discriminator of SRGAN.

    Parameters
    ----------
    in_channels : int
        Channels of the images scored.
    n_feats : int
        Channels of the first convolution (paper: 64), doubled every two layers.
    """

    def __init__(self, *, in_channels: int = 1, n_feats: int = 64) -> None:
        super().__init__()
        self.config = {"in_channels": in_channels, "n_feats": n_feats}
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(8):
            out = n_feats * 2 ** (i // 2)
            layers += [nn.Conv2d(channels, out, 3, stride=1 + i % 2, padding=1),
                       *([nn.BatchNorm2d(out)] if i else []), nn.LeakyReLU(0.2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                        nn.Linear(channels, 16 * n_feats), nn.LeakyReLU(0.2),
                                        nn.Linear(16 * n_feats, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N,) that each image is a real HR image."""
        return self.classifier(self.features(x))[:, 0]
