"""The srbio model file: a :class:`~srbio.io.records.ModelHeader` beside the weights.

Written with ``torch.save`` of plain tensors and JSON-like values, read with
``weights_only=True``, so a model file cannot run code. Which network the weights belong to is
in the header (:class:`~srbio.io.records.NetworkSpec`); building it is the models' factory's
job (:func:`srbio.inference.load_model` does both).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from srbio.io.atomic import atomic_path
from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, Range

FORMAT = "srbio-model/2"
_OLD_FORMATS = ("srbio-model/1",)


def save_model_file(path: str | os.PathLike, header: ModelHeader, state_dict: dict[str, Any]
                    ) -> Path:
    """Write a model file (to a temporary name, renamed when complete)."""
    import torch

    payload = {"format": FORMAT, "header": header.model_dump(mode="json"),
               "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _upgrade_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """Header of a ``srbio-model/1`` file (RCAN only, normalisation as lists)."""
    net = NetworkSpec.from_config(payload["network"])
    old = payload["normalisation"]
    norm = Normalisation(lr=Range(vmin=old["lr"][0], vmax=old["lr"][1], source="model file v1"),
                         hr=Range(vmin=old["hr"][0], vmax=old["hr"][1], source="model file v1"))
    return ModelHeader(network=net, normalisation=norm,
                       provenance=payload.get("provenance") or {}).model_dump(mode="json")


def read_model_file(path: str | os.PathLike) -> tuple[ModelHeader, dict[str, Any]]:
    """Read a model file's header and weights (``weights_only=True``).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For anything that is not a complete srbio model file, naming the file and the problem.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights only" in reason.lower():  # never relay torch's advice to unpickle
            reason = ("it holds Python objects besides tensors, which srbio model files never "
                      "do; it was not loaded, for safety")
        raise ValueError(f"{path}: not a readable srbio model file ({reason[:200]})") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt not in (FORMAT, *_OLD_FORMATS):
        raise ValueError(f"{path}: not an srbio model file (format {fmt!r}, expected {FORMAT})")
    try:
        header_data = payload["header"] if fmt == FORMAT else _upgrade_v1(payload)
        state = payload["state_dict"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: incomplete srbio model file ({fmt}): missing or invalid "
                         f"{exc}") from None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: the model file holds no weights")
    return ModelHeader.from_mapping(header_data, source=str(path)), state
