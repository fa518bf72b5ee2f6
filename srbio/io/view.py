"""Images placed in physical space, for viewers: what to show, at which scale and position.

A :class:`View` is lazily read pixel data (one array, or the levels of a pyramid) with its
pixel size and the position of its first pixel's centre, per axis (µm for space axes). Views of
one results folder overlay exactly whatever their sampling: napari (``srbio.napari``) turns
them into layers, and any other viewer could. Nothing here reads pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr

from srbio.io.image import image_origin, open_series
from srbio.io.records import Normalisation, RegisterFiles, Registration
from srbio.io.zarr import axis_names, read_ome_zarr_levels


@dataclass
class View:
    """One image to show: lazily read data, its scale and translate (array axis order)."""

    name: str
    data: list[Any]  # one array, or the levels of a pyramid (finest first)
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    axes: tuple[str, ...]
    kind: str = "image"  # "image" or "labels" (a mask)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def multiscale(self) -> bool:
        """Whether ``data`` holds several pyramid levels."""
        return len(self.data) > 1


def store_view(path: str | os.PathLike, name: str | None = None) -> View:
    """An OME-Zarr image (an srbio prediction or any other) as a multiscale view.

    Every level is opened, not read; scale and translate are level 0's (each level's own
    transform places it, see :func:`srbio.io.zarr.read_ome_zarr_levels`).
    """
    path = Path(path)
    group = zarr.open_group(str(path), mode="r")
    levels = read_ome_zarr_levels(group)
    data = [zarr.open_array(str(path / p), mode="r") for p, _, _ in levels]
    _, scale, translation = levels[0]
    axes = axis_names(group)
    ndim = data[0].ndim
    attrs: dict[str, Any] = group.attrs.asdict()
    srbio = dict(attrs.get("srbio") or {})
    metadata: dict[str, Any] = {"srbio": srbio}
    header = (srbio.get("prediction") or {}).get("model_header") or {}
    hr = (header.get("normalisation") or {}).get("hr")
    if hr:  # a prediction: shown at the model's fixed HR range
        metadata["contrast_limits"] = (float(hr["vmin"]), float(hr["vmax"]))
    return View(name or path.name.removesuffix(".ome.zarr").removesuffix(".zarr"), list(data),
                tuple(scale or (1.0,) * ndim), tuple(translation or (0.0,) * ndim),
                tuple(axes) if len(axes) == ndim else tuple("tzyx"[-ndim:]),
                metadata=metadata)


def image_view(path: str | os.PathLike, *, spacing: tuple[float, ...] | None = None,
               origin: tuple[float, ...] | None = None, name: str | None = None,
               kind: str = "image") -> View:
    """Any TIFF or zarr srbio reads, at its pixel size (``spacing``, ``origin`` override)."""
    path = Path(path)
    data, sp, series = open_series(path, spacing=spacing)
    origin = origin if origin is not None else image_origin(path, len(sp))
    axes = ("z", "y", "x")[-len(sp):]
    scale, translate = tuple(sp), tuple(origin)
    if series is not None:
        axes, scale, translate = (series.name, *axes), (series.step, *scale), \
            (series.origin, *translate)
    return View(name or path.name.split(".")[0], [data], scale, translate, tuple(axes), kind)


def resolve_recorded(recorded: str, results: Path) -> Path:
    """A path a record holds: as given, else relative to the results folder's parent."""
    path = Path(recorded)
    if path.is_absolute() or path.exists():
        return path
    return results.parent / path


def pairs(results: str | os.PathLike) -> list[str]:
    """The pairs a results folder holds a registration of, by name."""
    folder = Path(results) / "register"
    return sorted(p.name for p in folder.iterdir() if (p / "registration.json").is_file()) \
        if folder.is_dir() else []


def results_views(results: str | os.PathLike, pair: str | None = None) -> list[View]:
    """One pair of a results folder in register, and every prediction.

    LR as acquired, LR registered, HR, valid mask and predictions, each at its pixel size and
    position (the HR frame, µm; predictions in their input's frame).

    Raises
    ------
    ValueError
        When the folder holds no registration (not a results folder), or not ``pair``.
    """
    results = Path(results)
    names = pairs(results)
    if not names:
        raise ValueError(f"{results}: holds no register/<pair>/registration.json; not an srbio "
                         f"results folder")
    pair = pair or names[0]
    if pair not in names:
        raise ValueError(f"{results}: has no pair {pair!r} (pairs: {', '.join(names)})")
    files = RegisterFiles(results / "register" / pair)
    rec = Registration.read(files.record)
    grid, origin = tuple(rec.grid_spacing), tuple(rec.grid_origin)
    views = [
        image_view(resolve_recorded(rec.moving, results), spacing=tuple(rec.moving_spacing),
                   origin=(0.0,) * len(rec.moving_spacing), name=f"{pair} LR (as acquired)"),
        image_view(files.resampled, spacing=grid, origin=origin,
                   name=f"{pair} LR (registered)"),
        image_view(resolve_recorded(rec.fixed, results), spacing=tuple(rec.fixed_spacing),
                   origin=(0.0,) * len(rec.fixed_spacing), name=f"{pair} HR"),
        image_view(files.mask, spacing=grid, origin=origin, name=f"{pair} valid",
                   kind="labels"),
    ]
    predictions = results / "predict"
    if predictions.is_dir():
        views += [store_view(p, name=f"prediction {p.name.removesuffix('.ome.zarr')}")
                  for p in sorted(predictions.glob("*.ome.zarr"))]
    norm = results / "normalisation.json"
    if norm.is_file():  # the fixed ranges training used: LR and HR shown alike
        ranges = Normalisation.read(norm)
        for view in views:
            if view.kind == "image":
                side = ranges.lr if " LR " in f" {view.name} " else ranges.hr
                view.metadata["contrast_limits"] = side.pair
    return views
