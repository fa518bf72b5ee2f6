"""The srbio model file: weights, network config, scale, normalisation, spacing, provenance.

Saved with ``torch.save`` of plain tensors and JSON-like values, loaded with
``weights_only=True`` so that a model file cannot run code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from srbio.models.rcan import RCAN, build_model

FORMAT = "srbio-model/1"


def save_model(path: str | os.PathLike, model: RCAN, *, normalisation: dict[str, list[float]],
               spacing: dict[str, list[float]] | None, provenance: dict[str, Any]) -> Path:
    """Write a model file (to a temporary name, renamed when complete)."""
    from srbio.io.atomic import atomic_path

    payload = {
        "format": FORMAT,
        "network": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "normalisation": {k: [float(x) for x in v] for k, v in normalisation.items()},
        "spacing": spacing,
        "provenance": provenance,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_model(path: str | os.PathLike, *, device: torch.device | str = "cpu"
               ) -> tuple[RCAN, dict[str, Any]]:
    """Load a model file; returns the network (eval mode, on ``device``) and its metadata."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise ValueError(f"{path}: not a readable srbio model file ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an srbio model file (expected format {FORMAT})")
    net = dict(payload["network"])
    name = net.pop("name")
    net.pop("in_channels", None)
    model = build_model(name, preset=None, **net)
    model.load_state_dict(payload["state_dict"])
    model.eval().to(device)
    meta = {k: payload[k] for k in ("network", "normalisation", "spacing", "provenance")}
    return model, meta
