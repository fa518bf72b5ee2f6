"""Patch store: a zarr v3 group of uint16 arrays ``train/lr``, ``train/hr``, ``val/lr``, ``val/hr``.

Its description (scale, size, pixel sizes, provenance) is the
:class:`~srbio.io.records.Patches` record written beside it.
"""

from __future__ import annotations

import os

import numpy as np
import zarr

from srbio.io.atomic import atomic_path

PARTS = ("train/lr", "train/hr", "val/lr", "val/hr")


def write_patches(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write patch arrays (N, h, w) into a new zarr group (atomically)."""
    for name, arr in arrays.items():
        if arr.dtype != np.uint16 or arr.ndim != 3:
            raise ValueError(f"patch array {name}: expected (N, h, w) uint16, got "
                             f"{arr.dtype} {arr.shape}")
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        for name, arr in arrays.items():
            group.create_array(name, data=arr, chunks=(min(256, len(arr)), *arr.shape[1:]))
        group.attrs["srbio"] = {"output": "patches"}  # srbio's own (srbio.io.outputs.owner)


def read_patches(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every patch array into memory."""
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types
        raise ValueError(f"{path}: not a patch store ({exc})") from None
    arrays = {}
    for key in PARTS:
        if key not in group:
            raise ValueError(f"{path}: patch store lacks {key}")
        arrays[key] = np.asarray(group[key])
    return arrays
