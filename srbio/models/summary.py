"""What each network and preset costs: parameters and FLOPs per output pixel.

Networks are built on PyTorch's ``meta`` device, so even the 40 M-parameter presets are
described in a fraction of a second without allocating their weights.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from srbio.models.factory import build_network, count_parameters
from srbio.models.registry import NETWORKS, network_info


def flops_per_output_pixel(name: str, *, scale: int, preset: str | None = None,
                           params: dict | None = None, channels: int = 1, size: int = 32
                           ) -> float:
    """Floating-point operations (multiply and add counted apart) per output pixel.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` on a ``size``² input (a
    volume of 8 planes for 3D networks, per output voxel): convolutions and matrix products,
    not element-wise activations.
    """
    info = network_info(name)
    size = max(size, info.min_input)
    with torch.device("meta"):
        net = build_network(name, scale=scale, in_channels=channels, preset=preset,
                            params=params)
        x = torch.empty(1, channels, *([8] if info.dims == 3 else []), size, size)
    with FlopCounterMode(display=False) as counter:
        y = net(x)
    return counter.get_total_flops() / y[0, 0].numel()


def describe(*, scale: int = 2, channels: int = 1) -> list[dict]:
    """One row per network and preset that supports ``scale``: parameters, FLOPs per pixel."""
    rows = []
    for name, info in NETWORKS.items():
        if scale not in info.scales:
            continue
        for preset in info.presets:
            with torch.device("meta"):
                net = build_network(name, scale=scale, in_channels=channels, preset=preset)
            rows.append({"name": name, "preset": preset, "scale": scale, "channels": channels,
                         "parameters": count_parameters(net),
                         "flops_per_output_pixel": flops_per_output_pixel(
                             name, scale=scale, preset=preset, channels=channels),
                         "default": preset == info.default_preset,
                         "reference": info.reference})
    return rows
