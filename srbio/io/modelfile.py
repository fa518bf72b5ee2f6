"""The srbio model file: a :class:`~srbio.io.records.ModelHeader` beside the weights.

Written with ``torch.save`` of plain tensors and JSON-like values, read with
``weights_only=True``, so a model file cannot run code. Which network the weights belong to is
in the header (:class:`~srbio.io.records.NetworkSpec`); building it is the models' factory's
job (:func:`srbio.inference.load_model` does both).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

from srbio.io.atomic import atomic_path
from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, Range

FORMAT = "srbio-model/2"
_OLD_FORMATS = ("srbio-model/1",)

log = logging.getLogger(__name__)


def save_model_file(path: str | os.PathLike, header: ModelHeader, state_dict: dict[str, Any]
                    ) -> Path:
    """Write a model file (to a temporary name, renamed when complete)."""
    import torch

    header_json = header.model_dump(mode="json")
    state = {k: v.detach().cpu() for k, v in state_dict.items()}
    bad = _non_finite(state)
    if bad:
        raise ValueError(f"{path}: not written: the weights hold NaN or infinite values "
                         f"({bad}); the training diverged")
    payload = {"format": FORMAT, "header": header_json, "state_dict": state,
               "digest": digest(header_json, state)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def digest(header: dict[str, Any], state: dict[str, Any]) -> str:
    """SHA-256 of a header (canonical JSON) and its weights (names, dtypes, shapes, bytes).

    Stored in the file: a header or weight edited afterwards no longer matches it.
    """
    import torch

    h = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _non_finite(state: dict[str, Any]) -> str:
    """Which floating-point weights hold NaN or infinite values ("" when none)."""
    import torch

    bad = []
    for key, t in state.items():
        if torch.is_floating_point(t):
            n = int((~torch.isfinite(t)).sum())
            if n:
                bad.append(f"{key}: {n} of {t.numel()}")
    return "; ".join(bad[:3]) + (f"; … {len(bad) - 3} more tensors" if len(bad) > 3 else "")


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
    if path.is_dir():
        hint = " (a train folder: give its model.pt)" if (path / "model.pt").is_file() else ""
        raise ValueError(f"{path}: is a folder, not a model file{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    foreign = _foreign_kind(path)
    if foreign is not None:
        raise ValueError(_not_a_model(path, foreign))
    try:
        with warnings.catch_warnings():  # torch's advice on foreign files is not for users
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights only" in reason.lower():  # never relay torch's advice to unpickle
            reason = ("it holds Python objects besides tensors, which srbio model files never "
                      "do; it was not loaded, for safety")
        raise ValueError(f"{path}: not a readable srbio model file ({reason[:200]})") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if isinstance(payload, dict) and fmt is None and "state_dict" in payload and (
            "pytorch-lightning_version" in payload or "global_step" in payload):
        raise ValueError(_not_a_model(path, f"a Lightning training checkpoint (epoch "
                                            f"{payload.get('epoch', '?')})",
                                      "; to continue training, use `srbio train --resume`"))
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
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: its state_dict holds values that are not tensors; not a "
                         f"model file srbio wrote")
    _check_weights(path, payload, header_data, state)
    return ModelHeader.from_mapping(header_data, source=str(path)), state


def _foreign_kind(path: Path) -> str | None:
    """What a file that is certainly no srbio model file is (an export), else None."""
    if path.suffix.lower() == ".onnx":
        return "an ONNX export (`srbio export` writes it for other tools)"
    if zipfile.is_zipfile(path):
        with contextlib.suppress(OSError, zipfile.BadZipFile), zipfile.ZipFile(path) as z:
            if any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl"))
                   for n in z.namelist()):
                return "a TorchScript export (`srbio export` writes it for other tools)"
    return None


def _not_a_model(path: Path, what: str, hint: str = "") -> str:
    return (f"{path}: is {what}, not an srbio model file; srbio predicts and evaluates with "
            f"the model.pt that `srbio train` writes into its folder{hint}")


def _check_weights(path: Path, payload: dict, header: dict, state: dict[str, Any]) -> None:
    """The weights must be finite and, with the header, match the digest written with them."""
    bad = _non_finite(state)
    if bad:
        raise ValueError(f"{path}: its weights hold NaN or infinite values ({bad}); it would "
                         f"predict nothing but garbage (the training diverged or the file is "
                         f"corrupt)")
    stored = payload.get("digest")
    if stored is None:
        log.warning("%s: written before model files carried a digest; srbio cannot check that "
                    "its header and weights are as training wrote them", path)
    elif stored != digest(header, state):
        raise ValueError(f"{path}: its header or weights were changed after srbio wrote it (the "
                         f"digest stored in the file no longer matches); an edited header "
                         f"(e.g. res_scale, normalisation) would silently change every result: "
                         f"use the file training wrote, or train again")
