"""RCAN: residual channel attention network (Zhang et al., ECCV 2018), for 1-channel 16-bit data.

Structure: head conv → G residual groups (each: B residual channel-attention blocks + conv, with
a group skip) → conv + long skip → PixelShuffle upsampler → conv. No RGB mean shift and no 0–255
assumption: inputs are images normalised with fixed dataset-wide values.

Weights are named by position (``body.<g>.blocks.<b>``, ``body.<g>.conv``, ``body_conv``), so
a pruned RCAN (fewer groups, blocks or channels) shares the names of the first G groups and B
blocks of a larger one: what ``train.init_from`` copies. Files of srbio ≤ 0.2, whose group and
trunk convs were the last item of a Sequential, are renamed when loaded.
"""

from __future__ import annotations

import torch
from torch import nn

from srbio.models.common import pixel_shuffle_upsampler


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel by its attention weight."""
        return x * self.body(x)


class RCAB(nn.Module):
    """Residual channel attention block: conv-ReLU-conv-CA with a skip (residual × res_scale)."""

    def __init__(self, channels: int, reduction: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            ChannelAttention(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return x + self.body(x) * self.res_scale


class ResidualGroup(nn.Module):
    """B RCABs and a conv, with a group-level skip."""

    def __init__(self, channels: int, n_blocks: int, reduction: int, res_scale: float = 1.0
                 ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[RCAB(channels, reduction, res_scale)
                                      for _ in range(n_blocks)])
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update."""
        return x + self.conv(self.blocks(x))


class RCAN(nn.Module):
    """Residual channel attention network for single-channel super-resolution.

    Parameters
    ----------
    scale : int
        Upsampling factor (1, or products of 2 and 3).
    n_groups, n_blocks, n_feats, reduction : int
        G residual groups of B blocks, C feature channels, channel-attention reduction.
    res_scale : float
        Factor of each block's residual (1 as published; 0.1 steadies deep or wide models).
    in_channels : int
        Input and output channels.
    """

    def __init__(self, *, scale: int = 2, n_groups: int = 5, n_blocks: int = 3, n_feats: int = 32,
                 reduction: int = 16, res_scale: float = 1.0, in_channels: int = 1) -> None:
        super().__init__()
        self.config = {"name": "rcan", "scale": scale, "n_groups": n_groups, "n_blocks": n_blocks,
                       "n_feats": n_feats, "reduction": reduction, "res_scale": res_scale,
                       "in_channels": in_channels}
        self.scale = scale
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[ResidualGroup(n_feats, n_blocks, reduction, res_scale)
                                    for _ in range(n_groups)])
        self.body_conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        self.upsample = pixel_shuffle_upsampler(scale, n_feats, name="RCAN")
        self.tail = nn.Conv2d(n_feats, in_channels, 3, padding=1)
        self._register_load_state_dict_pre_hook(self._rename_old_layout)

    def _rename_old_layout(self, state: dict, prefix: str, *_: object) -> None:
        """Rename weights of the old layout (convs as the last item of each Sequential)."""
        groups, blocks = self.config["n_groups"], self.config["n_blocks"]
        if f"{prefix}body.{groups}.weight" not in state:
            return
        renames = {f"{prefix}body.{groups}.": f"{prefix}body_conv."}
        for g in range(groups):
            renames[f"{prefix}body.{g}.body.{blocks}."] = f"{prefix}body.{g}.conv."
            renames.update({f"{prefix}body.{g}.body.{b}.": f"{prefix}body.{g}.blocks.{b}."
                            for b in range(blocks)})
        for key in list(state):
            old = next((o for o in renames if key.startswith(o)), None)
            if old is not None:
                state[renames[old] + key[len(old):]] = state.pop(key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) to (N, C, H*scale, W*scale)."""
        feats = self.head(x)
        feats = feats + self.body_conv(self.body(feats))
        return self.tail(self.upsample(feats))
