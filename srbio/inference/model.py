"""Load a model file into a ready network: the io header + the models factory."""

from __future__ import annotations

import os

import torch

from srbio.io.modelfile import read_model_file
from srbio.io.records import ModelHeader
from srbio.models import build_network


def load_model(path: str | os.PathLike, *, device: torch.device | str = "cpu"
               ) -> tuple[torch.nn.Module, ModelHeader]:
    """Build the network a model file describes and load its weights.

    Returns the network (eval mode, on ``device``) and the file's header.

    Raises
    ------
    ValueError
        When the file is not a complete model file, names an unknown network, or its weights
        do not fit the network its header describes.
    """
    header, state = read_model_file(path)
    spec = header.network
    try:
        net = build_network(spec.name, scale=spec.scale, in_channels=spec.in_channels,
                            params=spec.params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot build its network {spec.name!r}: {exc}") from None
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"{path}: the weights do not fit the network its header describes "
                         f"({spec.name}, scale {spec.scale}, {spec.params}): {first}") from None
    return net.eval().to(device), header
