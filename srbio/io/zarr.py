"""Zarr v3 / OME-Zarr (NGFF 0.5) reading and writing, with physical pixel sizes."""

from __future__ import annotations

import os
from pathlib import Path

import dask.array as da
import numpy as np
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.writer import write_multiscales_metadata
from zarr.codecs import BloscCodec

_SPATIAL = ("z", "y", "x")


def _multiscales(attrs: dict) -> list | None:
    if "ome" in attrs and "multiscales" in attrs["ome"]:
        return attrs["ome"]["multiscales"]
    return attrs.get("multiscales")


def read_ome_zarr_spacing(group: zarr.Group) -> tuple[str, tuple[float, ...] | None, list[str]]:
    """Return the full-resolution dataset path, its scale and its axis names of an OME-Zarr group."""
    ms = _multiscales(dict(group.attrs))
    if not ms:
        raise ValueError(f"{group.store}: zarr group without OME-Zarr 'multiscales' metadata")
    first = ms[0]
    dataset = first["datasets"][0]
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in first.get("axes", [])]
    scale = None
    for tr in dataset.get("coordinateTransformations", []):
        if tr.get("type") == "scale":
            scale = tuple(float(s) for s in tr["scale"])
    return dataset["path"], scale, axes


def open_zarr(path: str | os.PathLike) -> tuple[da.Array, tuple[float, ...] | None]:
    """Open a zarr array or an OME-Zarr image lazily.

    Non-spatial axes (``c``, ``t``) of length 1 are dropped; others are an error.

    Parameters
    ----------
    path : path-like
        A zarr array, or an OME-Zarr group whose first multiscale level is read.

    Returns
    -------
    data : dask.array.Array
        Axes ``yx`` or ``zyx``.
    spacing : tuple of float or None
        Pixel size per axis in µm when the store records it.
    """
    path = Path(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types for unreadable stores
        raise ValueError(f"{path}: cannot open as zarr ({exc})") from exc
    if isinstance(node, zarr.Group):
        sub, scale, axes = read_ome_zarr_spacing(node)
        arr = node[sub]
    else:
        arr = node
        raw = arr.attrs.get("spacing")
        scale = tuple(float(s) for s in raw) if raw is not None else None
        axes = list(arr.attrs.get("axes", []))
    data = da.from_zarr(arr)
    if axes and len(axes) == data.ndim:
        keep = [i for i, a in enumerate(axes) if a in _SPATIAL]
        drop = [i for i, a in enumerate(axes) if a not in _SPATIAL]
        for i in drop:
            if data.shape[i] != 1:
                raise ValueError(
                    f"{path}: axis {axes[i]!r} has length {data.shape[i]}; srbio reads "
                    f"single-channel, single-timepoint images (select one first)"
                )
        if drop:
            data = data[tuple(0 if i in drop else slice(None) for i in range(data.ndim))]
            scale = tuple(scale[i] for i in keep) if scale is not None else None
    return data, scale


def create_ome_zarr(
    path: str | os.PathLike,
    *,
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    chunks: tuple[int, ...],
    spacing: tuple[float, ...],
    name: str | None = None,
    metadata: dict | None = None,
) -> zarr.Array:
    """Create an empty single-scale OME-Zarr (NGFF 0.5, zarr v3) image and return its array.

    Parameters
    ----------
    path : path-like
        Group location; must not exist.
    shape, dtype, chunks
        Of the full-resolution array (axes ``yx`` or ``zyx``).
    spacing : tuple of float
        Pixel size per axis in µm.
    name : str, optional
        Image name stored in the metadata.
    metadata : dict, optional
        Extra JSON attributes stored under ``srbio`` (provenance).

    Returns
    -------
    zarr.Array
        The writable full-resolution array ``0``.
    """
    if len(shape) not in (2, 3) or len(spacing) != len(shape) or len(chunks) != len(shape):
        raise ValueError(f"{path}: shape {shape}, chunks {chunks}, spacing {spacing} disagree")
    group = zarr.open_group(str(path), mode="w-", zarr_format=3)
    arr = group.create_array(
        "0", shape=shape, dtype=dtype, chunks=chunks,
        compressors=BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"), fill_value=0,
    )
    names = _SPATIAL[-len(shape):]
    axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in names]
    datasets = [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [float(s) for s in spacing]}]}]
    write_multiscales_metadata(group, datasets, fmt=FormatV05(), axes=axes, name=name)
    if metadata:
        group.attrs["srbio"] = metadata
    return arr


def set_ome_zarr_attrs(path: str | os.PathLike, values: dict) -> None:
    """Merge ``values`` into the ``srbio`` attributes of an OME-Zarr group."""
    group = zarr.open_group(str(path), mode="r+")
    current = dict(group.attrs.get("srbio", {}))
    current.update(values)
    group.attrs["srbio"] = current


def read_ome_zarr_attrs(path: str | os.PathLike) -> dict:
    """The ``srbio`` attributes of an OME-Zarr group (empty when absent)."""
    return dict(zarr.open_group(str(path), mode="r").attrs.get("srbio", {}))
