"""Build any registered network by name (see :mod:`srbio.models.registry`)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

from torch import nn

from srbio.models.registry import ParamValue, check_scale, network_info, resolve_params


def build_network(name: str, *, scale: int, in_channels: int = 1, preset: str | None = None,
                  params: Mapping[str, ParamValue] | None = None) -> nn.Module:
    """Build network ``name`` from a preset and/or explicit parameters.

    Parameters
    ----------
    name : str
        A key of :data:`srbio.models.registry.NETWORKS`.
    scale : int
        Upsampling factor; must be one the network supports.
    in_channels : int
        Input (and output) channels.
    preset : str, optional
        Named parameter set of the network.
    params : mapping, optional
        Parameters overriding the preset's.

    Returns
    -------
    torch.nn.Module
        The network; its ``config`` attribute holds ``name``, ``scale``, ``in_channels`` and
        every parameter, enough to build it again.
    """
    info = network_info(name)
    check_scale(name, scale)
    resolved = resolve_params(name, preset, params or {})
    cls = getattr(import_module(info.module), info.builder)
    return cls(scale=scale, in_channels=in_channels, **resolved)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
