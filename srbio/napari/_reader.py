"""napari readers: srbio results folders, OME-Zarr images (predictions) and srbio's images.

Each returns napari layer data ``(data, kwargs, layer_type)`` built from
:mod:`srbio.io.view`: lazily read, at physical scale and position, so the LR, registered LR,
HR and prediction of a pair overlay exactly whatever their sampling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from srbio.io.view import View, image_view, pairs, results_views, store_view

log = logging.getLogger(__name__)

LayerData = tuple[Any, dict[str, Any], str]


def _lazy(array: Any) -> Any:
    """A zarr array as a dask array, so napari reads only the plane it shows.

    napari's multiscale slicing indexes every non-displayed axis with ``slice(None)`` before it
    picks the plane, which a zarr array reads at once (every plane of the visible tile); dask
    defers the read to the one plane shown.
    """
    import dask.array as da
    import zarr

    return da.from_zarr(array) if isinstance(array, zarr.Array) else array


def layer_data(view: View) -> LayerData:
    """A view as napari layer data (``multiscale`` when it holds a pyramid), read lazily."""
    levels = [_lazy(level) for level in view.data]
    data = levels if view.multiscale else levels[0]
    kwargs: dict[str, Any] = {"name": view.name, "scale": list(view.scale),
                              "translate": list(view.translate),
                              "metadata": {"axes": list(view.axes), **view.metadata}}
    if view.kind == "image":
        kwargs["multiscale"] = view.multiscale
        if view.multiscale and "contrast_limits" not in view.metadata:
            # napari would read the whole smallest level for them (all its planes)
            kwargs["contrast_limits"] = _plane_range(view.data[-1])
        kwargs["blending"] = "additive"
        if "contrast_limits" in view.metadata:  # the fixed normalisation of the results
            kwargs["contrast_limits"] = list(view.metadata["contrast_limits"])
    else:
        kwargs["opacity"] = 0.3
    return data, kwargs, view.kind


def _plane_range(level: Any) -> list[float]:
    """Min and max of the middle plane of a (small) pyramid level."""
    plane = np.asarray(level[tuple(n // 2 for n in level.shape[:-2])])
    low, high = float(plane.min()), float(plane.max())
    return [low, high if high > low else low + 1.0]


def _one(path: str | list[str]) -> Path | None:
    paths = [path] if isinstance(path, str) else list(path)
    return Path(paths[0]) if len(paths) == 1 else None


def _single(path: str | list[str]) -> Path:
    one = _one(path)
    if one is None:
        raise ValueError(f"srbio opens one path at a time, got {path!r}")
    return one


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The reader for ``path`` (npe2 ``reader`` contribution), or None if srbio cannot read it."""
    one = _one(path)
    if one is None:
        return None
    if one.is_dir() and pairs(one):
        return read_results
    if one.is_dir() and (one / "zarr.json").is_file() and "multiscales" in \
            (one / "zarr.json").read_text():
        return read_store
    if one.suffix.lower() in (".tif", ".tiff") or one.suffix == ".zarr":
        return read_image
    return None


# how a results folder's layers start: the registration overlay (LR green, HR magenta) shown,
# the rest ready to be switched on
_LOOK = {"LR (as acquired)": {"visible": False}, "LR (registered)": {"colormap": "green"},
         "HR": {"colormap": "magenta"}, "valid": {"visible": False}}


def read_results(path: str | list[str]) -> list[LayerData]:
    """A results folder: its first pair in register, and every prediction (hidden at first)."""
    layers = []
    for view in results_views(_single(path)):
        data, kwargs, kind = layer_data(view)
        role = view.name.split(" ", 1)[-1]
        kwargs.update(_LOOK.get(role, {"visible": False} if view.name.startswith(
            "prediction") else {}))
        layers.append((data, kwargs, kind))
    return layers


def read_store(path: str | list[str]) -> list[LayerData]:
    """An OME-Zarr image, as a multiscale layer at its physical scale and position."""
    return [layer_data(store_view(_single(path)))]


def read_image(path: str | list[str]) -> list[LayerData]:
    """Any TIFF or zarr srbio reads, at its pixel size."""
    return [layer_data(image_view(_single(path)))]
