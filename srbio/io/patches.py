"""Patch store: a zarr v3 group of uint16 arrays ``train/lr``, ``train/hr``, ``val/lr``, ``val/hr``.

The patches are 2D (N, h, w) or 3D (N, d, h, w).

Each patch is one zarr chunk, and chunks are grouped into shards of up to 256 patches (one
file each), so training reads one patch at a time without loading the store: datasets far
larger than memory train, from any number of loader processes. Stores written by srbio ≤ 0.2
(256 patches per chunk) read the same, a chunk at a time.

Its description (scale, size, pixel sizes, provenance) is the
:class:`~srbio.io.records.Patches` record written beside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from srbio.io.atomic import atomic_path

PARTS = ("train/lr", "train/hr", "val/lr", "val/hr")
SHARD = 256  # patches per shard file


def write_patches(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write patch arrays (N, h, w) or (N, d, h, w) into a new zarr group (atomically)."""
    for name, arr in arrays.items():
        if arr.dtype != np.uint16 or arr.ndim not in (3, 4):
            raise ValueError(f"patch array {name}: expected (N, h, w) or (N, d, h, w) uint16, "
                             f"got {arr.dtype} {arr.shape}")
    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        for name, arr in arrays.items():
            group.create_array(name, data=arr, chunks=(1, *arr.shape[1:]),
                               shards=(max(1, min(SHARD, len(arr))), *arr.shape[1:]))
        group.attrs["srbio"] = {"output": "patches"}  # srbio's own (srbio.io.outputs.owner)


CACHE_BYTES = 256 << 20  # a store this small is kept once read (per process)


class LazyPatches:
    """One patch array of a store, opened on first use in each process; ``[i]`` reads patch i.

    Pickles as its path and name (no open file handles), so loader workers open their own.
    With ``cached`` (:func:`open_patches` sets it for stores of at most :data:`CACHE_BYTES`)
    it is read a shard at a time and kept (a shard costs about what 50 single patches do), so
    small stores train at in-memory speed; otherwise it is read a patch at a time, so memory
    never grows with the store.
    """

    def __init__(self, store: str | os.PathLike, name: str, shape: tuple[int, ...],
                 shard: int = SHARD, cached: bool = False) -> None:
        self.store, self.name, self.shape = str(store), name, tuple(shape)
        self.dtype = np.dtype(np.uint16)
        self.shard = max(1, int(shard))
        self.cached = cached
        self._array: Any = None
        self._blocks: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if self._array is None:
            self._array = zarr.open_array(self.store, path=self.name, mode="r")
        if not self.cached:
            return np.asarray(self._array[i])
        k = int(i) // self.shard
        if k not in self._blocks:
            self._blocks[k] = np.asarray(self._array[k * self.shard:(k + 1) * self.shard])
        return self._blocks[k][int(i) - k * self.shard]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None, "_blocks": {}}


def open_patches(path: str | os.PathLike) -> dict[str, LazyPatches]:
    """The patch arrays of a store, read lazily (see :class:`LazyPatches`).

    Raises
    ------
    ValueError
        Naming the store when it is not a patch store, lacks a part, or holds other data.
    """
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types
        raise ValueError(f"{path}: not a patch store ({exc})") from None
    found: dict[str, zarr.Array] = {}
    for key in PARTS:
        if key not in group:
            raise ValueError(f"{path}: patch store lacks {key}")
        arr = group[key]
        if not isinstance(arr, zarr.Array) or arr.dtype != np.uint16 or arr.ndim not in (3, 4):
            raise ValueError(f"{path}: {key} must be (N, h, w) or (N, d, h, w) uint16 patches, got "
                             f"{getattr(arr, 'dtype', type(arr).__name__)} "
                             f"{getattr(arr, 'shape', '')}")
        found[key] = arr
    small = sum(arr.nbytes for arr in found.values()) <= CACHE_BYTES
    return {key: LazyPatches(Path(path), key, arr.shape, (arr.shards or arr.chunks)[0],
                             cached=small) for key, arr in found.items()}


def read_patches(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every patch array into memory (small stores, tests)."""
    group = zarr.open_group(str(path), mode="r")
    return {key: np.asarray(group[key]) for key in open_patches(path)}
