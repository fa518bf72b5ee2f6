"""Zarr v3 / OME-Zarr (NGFF 0.5) reading and writing, with physical pixel sizes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.writer import write_multiscales_metadata
from zarr.codecs import BloscCodec

from srbio.io.axes import SERIES_NAMES, SPATIAL, SeriesAxis, arrange_axes

_SPATIAL = SPATIAL

# Micrometres per unit, exact where the unit is defined exactly. Keys are lower case.
_NGFF_SPACE_UNITS: dict[str, Fraction] = {
    "angstrom": Fraction(1, 10**4), "attometer": Fraction(1, 10**12),
    "centimeter": Fraction(10**4), "decimeter": Fraction(10**5), "exameter": Fraction(10**24),
    "femtometer": Fraction(1, 10**9), "foot": Fraction(304800), "gigameter": Fraction(10**15),
    "hectometer": Fraction(10**8), "inch": Fraction(25400), "kilometer": Fraction(10**9),
    "megameter": Fraction(10**12), "meter": Fraction(10**6), "micrometer": Fraction(1),
    "mile": Fraction(1609344000), "millimeter": Fraction(10**3), "nanometer": Fraction(1, 10**3),
    "parsec": Fraction(30856775814913673) * 10**6, "petameter": Fraction(10**21),
    "picometer": Fraction(1, 10**6), "terameter": Fraction(10**18), "yard": Fraction(914400),
    "yoctometer": Fraction(1, 10**18), "yottameter": Fraction(10**30),
    "zeptometer": Fraction(1, 10**15), "zettameter": Fraction(10**27),
}
# Abbreviations and the spellings ImageJ / Fiji / Bio-Formats write (ImageJ may escape µ as "\\u00B5").
_UNIT_ALIASES = {
    "um": "micrometer", "\\u00b5m": "micrometer", "\\u03bcm": "micrometer",
    "\N{MICRO SIGN}m": "micrometer", "\N{GREEK SMALL LETTER MU}m": "micrometer",
    "micron": "micrometer", "microns": "micrometer",
    "nm": "nanometer", "mm": "millimeter", "cm": "centimeter", "dm": "decimeter", "m": "meter",
    "km": "kilometer", "pm": "picometer", "\N{LATIN SMALL LETTER A WITH RING ABOVE}": "angstrom",
}
_UM_PER_UNIT: dict[str, Fraction] = {
    **_NGFF_SPACE_UNITS,
    **{name.replace("meter", "metre"): f for name, f in _NGFF_SPACE_UNITS.items()},
    **{name + "s": f for name, f in _NGFF_SPACE_UNITS.items() if name not in ("foot", "inch")},
    **{name.replace("meter", "metres"): f for name, f in _NGFF_SPACE_UNITS.items() if "meter" in name},
    **{alias: _NGFF_SPACE_UNITS[name] for alias, name in _UNIT_ALIASES.items()},
    "feet": _NGFF_SPACE_UNITS["foot"], "inches": _NGFF_SPACE_UNITS["inch"],
}
# Units that mean "not calibrated" (ImageJ writes "pixel" for an image without a pixel size).
_UNCALIBRATED = ("pixel", "pixels", "px", "")


class UnitError(ValueError):
    """A file records a length unit that srbio cannot convert to µm."""


def _unit_key(unit: object) -> str:
    return str(unit).strip().lower()


def is_uncalibrated(unit: object) -> bool:
    """Whether a recorded unit means "no pixel size" (``"pixel"``, ``"px"`` or empty)."""
    return _unit_key(unit) in _UNCALIBRATED


def to_micrometres(value: float, unit: object, *, source: str) -> float:
    """Convert a length recorded in a file to µm, the one length unit used inside srbio.

    Parameters
    ----------
    value : float
        The length in ``unit``.
    unit : str or None
        An OME-NGFF space unit (``"nanometer"``, ...) or a common abbreviation / ImageJ
        spelling (``"nm"``, ``"um"``, ``"µm"``, ``"micron"``, ...), case-insensitive.
        None means µm.
    source : str
        Where the value comes from (file, axis), for the error message.

    Returns
    -------
    float
        The length in µm.

    Raises
    ------
    UnitError
        If the unit is not a known length unit (a ``ValueError``).
    """
    if unit is None:
        return float(value)
    factor = _UM_PER_UNIT.get(_unit_key(unit))
    if factor is None:
        accepted = ", ".join([*_NGFF_SPACE_UNITS, *_UNIT_ALIASES])
        raise UnitError(
            f"{source}: unknown length unit {unit!r}; accepted (case-insensitive): {accepted}"
        )
    return float(Fraction(float(value)) * factor)


def _is_space_axis(axis: object) -> bool:
    if isinstance(axis, dict):
        kind = axis.get("type")
        return kind == "space" if kind is not None else axis.get("name") in _SPATIAL
    return str(axis) in _SPATIAL


def _scale_to_um(
    scale: tuple[float, ...], names: Sequence[str], spaces: Sequence[bool],
    units: Sequence[object], source: str,
) -> tuple[float, ...] | None:
    """Convert the space entries of a per-axis scale to µm; None when a space axis is in pixels."""
    out = []
    for value, name, space, unit in zip(scale, names, spaces, units, strict=True):
        if space and unit is not None and is_uncalibrated(unit):
            return None
        out.append(to_micrometres(value, unit, source=f"{source}: axis {name!r}") if space else value)
    return tuple(out)


def _store_name(group: zarr.Group) -> str:
    root = getattr(group.store, "root", None)
    if root is None:
        return str(group.store)
    return str(Path(root) / group.path) if group.path else str(root)


def _multiscales(attrs: dict) -> list | None:
    if "ome" in attrs and "multiscales" in attrs["ome"]:
        return attrs["ome"]["multiscales"]
    return attrs.get("multiscales")


def _transforms(items: list) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    scale = translation = None
    for tr in items or []:
        if tr.get("type") == "scale":
            scale = tuple(float(v) for v in tr["scale"])
        elif tr.get("type") == "translation":
            translation = tuple(float(v) for v in tr["translation"])
    return scale, translation


def _dataset_transform(first: dict, dataset: dict, source: str
                       ) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Scale and translation of one dataset (level) of a multiscale, in µm for space axes."""
    raw_axes = list(first.get("axes", []))
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in raw_axes]
    scale, translation = _transforms(dataset.get("coordinateTransformations", []))
    ms_scale, ms_translation = _transforms(first.get("coordinateTransformations", []))
    lengths = {len(v) for v in (scale, translation, ms_scale, ms_translation) if v is not None}
    if len(lengths | ({len(axes)} if axes else set())) > 1:
        raise ValueError(f"{source}: its coordinateTransformations ({scale}, {translation}, "
                         f"multiscale {ms_scale}, {ms_translation}) do not all have one value "
                         f"per axis ({axes})")
    if ms_scale is not None:
        scale = ms_scale if scale is None else tuple(a * b for a, b in zip(scale, ms_scale,
                                                                          strict=True))
        if translation is not None:
            translation = tuple(t * b for t, b in zip(translation, ms_scale, strict=True))
    if ms_translation is not None:
        translation = ms_translation if translation is None else tuple(
            a + b for a, b in zip(translation, ms_translation, strict=True))
    if len(raw_axes) == len(scale or translation or ()):
        units = [a.get("unit") if isinstance(a, dict) else None for a in raw_axes]
        spaces = [_is_space_axis(a) for a in raw_axes]
        if scale is not None:
            scale = _scale_to_um(scale, axes, spaces, units, source)
        if translation is not None:
            translation = tuple(
                to_micrometres(v, u, source=f"{source}: axis {n!r}") if sp and not (
                    u is not None and is_uncalibrated(u)) else v
                for v, n, sp, u in zip(translation, axes, spaces, units, strict=True))
    return scale, translation


def read_ome_zarr_levels(group: zarr.Group) -> list[tuple[str, tuple[float, ...] | None,
                                                        tuple[float, ...] | None]]:
    """Every level of an OME-Zarr image: its path, scale and translation (µm for space axes).

    As :func:`read_ome_zarr_transform` for level 0, for each dataset of the first multiscale.
    """
    source = _store_name(group)
    ms = _multiscales(dict(group.attrs))
    if not ms:
        raise ValueError(f"{source}: zarr group without OME-Zarr 'multiscales' metadata")
    return [(d["path"], *_dataset_transform(ms[0], d, source)) for d in ms[0]["datasets"]]


def read_ome_zarr_transform(group: zarr.Group) -> tuple[str, tuple[float, ...] | None,
                                                        tuple[float, ...] | None, list[str]]:
    """The full-resolution dataset of an OME-Zarr image and where its pixels lie.

    The dataset's ``coordinateTransformations`` are followed by the multiscale's own (applied
    to every level, NGFF 0.4/0.5): scale = s_dataset × s_multiscale, translation =
    t_dataset × s_multiscale + t_multiscale. Space axes are converted from their ``unit`` to
    µm; other axes (``c``, ``t``) are returned as stored.

    Returns
    -------
    path : str
        The full-resolution dataset inside the group.
    scale : tuple of float or None
        Per-axis pixel size, or None when absent or a space axis is in pixels.
    translation : tuple of float or None
        Per-axis position of pixel 0's centre, or None when absent.
    axes : list of str
        The axis names (empty when the metadata has none).

    Raises
    ------
    ValueError
        If the group holds no multiscales metadata, or a space axis has an unknown unit
        (the message names the store, the axis and the unit).
    """
    source = _store_name(group)
    ms = _multiscales(dict(group.attrs))
    if not ms:
        raise ValueError(f"{source}: zarr group without OME-Zarr 'multiscales' metadata")
    first = ms[0]
    dataset = first["datasets"][0]
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in first.get("axes", [])]
    scale, translation = _dataset_transform(first, dataset, source)
    return dataset["path"], scale, translation, axes


def read_ome_zarr_spacing(group: zarr.Group) -> tuple[str, tuple[float, ...] | None, list[str]]:
    """The full-resolution dataset path, its pixel size (µm) and axis names of an OME-Zarr.

    See :func:`read_ome_zarr_transform` (this is it without the translation).
    """
    path, scale, _, axes = read_ome_zarr_transform(group)
    return path, scale, axes


def zarr_origin(path: str | os.PathLike) -> tuple[float, ...] | None:
    """Position (µm) of pixel 0's centre of a zarr image's space axes (``zyx`` order), if any.

    OME-Zarr images give it by their ``translation`` (multiscale transforms included); a plain
    array by an ``origin`` attribute (µm, one value per axis).
    """
    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Group):
        _, _, translation, _ = read_ome_zarr_transform(node)
    else:
        attrs: dict[str, Any] = dict(node.attrs)
        raw = attrs.get("origin")
        translation = tuple(float(v) for v in raw) if raw is not None else None
    if translation is None:
        return None
    names, kinds, _ = _axes_of(node)
    space = [n.lower() for n, k in zip(names, kinds, strict=True)
             if n.lower() in SPATIAL and k in (None, "space")]
    if names and len(names) == len(translation):
        by_name = {n.lower(): t for n, t in zip(names, translation, strict=True)}
        translation = tuple(by_name[a] for a in SPATIAL if a in space)
    elif space and len(space) == len(translation):  # given for the space axes only
        by_name = dict(zip(space, translation, strict=True))
        translation = tuple(by_name[a] for a in SPATIAL if a in by_name)
    return translation


def _plain_array_spacing(arr: zarr.Array, source: str) -> tuple[tuple[float, ...] | None, list[str]]:
    """Spacing (µm) and axis names of a plain zarr array.

    The ``spacing``/``unit`` attributes; axes from ``axes`` or ``dimension_names``.
    """
    attrs: dict[str, Any] = dict(arr.attrs)
    raw = attrs.get("spacing")
    axes, kinds, _ = _axes_of(arr)
    axes = [a.lower() for a in axes]
    if raw is None:
        return None, axes
    scale = tuple(float(s) for s in raw)
    unit = attrs.get("unit")
    units = list(unit) if isinstance(unit, list) else [unit] * len(scale)
    if len(units) != len(scale):
        raise ValueError(f"{source}: attrs 'unit' {unit!r} does not match 'spacing' {list(raw)}")
    if len(axes) == len(scale):  # the unit applies to the space axes only
        names = axes
        spaces = [a in _SPATIAL and k in (None, "space") for a, k in zip(axes, kinds, strict=True)]
    else:
        names, spaces = [str(i) for i in range(len(scale))], [True] * len(scale)
    return _scale_to_um(scale, names, spaces, units, source), axes


def _check_chunks(arr: zarr.Array, path: Path, allow_missing: bool) -> None:
    """A chunk that was never written reads as the fill value: refuse that unless allowed."""
    missing = arr.nchunks - arr.nchunks_initialized
    fill = getattr(arr.fill_value, "item", lambda: arr.fill_value)()
    if missing and not allow_missing:
        raise ValueError(f"{path}: {missing} of its {arr.nchunks} chunks are missing and would "
                         f"read as the fill value {fill!r}; if its writer skipped empty "
                         f"chunks on purpose, allow it (--allow-missing-chunks, or "
                         f"allow_missing_chunks: true for the volume)")


def axis_names(node: zarr.Group | zarr.Array) -> list[str]:
    """The axis names a zarr image declares (empty when it declares none)."""
    return _axes_of(node)[0]


def _axes_of(node: zarr.Group | zarr.Array) -> tuple[list[str], list[str | None], list]:
    """Axis names, NGFF types and units a zarr image declares (empty when it declares none)."""
    if isinstance(node, zarr.Group):
        ms = _multiscales(dict(node.attrs)) or [{}]
        raw = list(ms[0].get("axes", []))
    else:
        attrs: dict[str, Any] = dict(node.attrs)
        raw = list(attrs.get("axes", []))
        dims = getattr(node.metadata, "dimension_names", None)  # zarr v3 arrays name them
        if not raw and dims and all(d is not None for d in dims):
            raw = [str(d) for d in dims]
    names = [str(a.get("name", "")) if isinstance(a, dict) else str(a) for a in raw]
    kinds = [a.get("type") if isinstance(a, dict) else None for a in raw]
    units = [a.get("unit") if isinstance(a, dict) else None for a in raw]
    return names, kinds, units


def open_zarr_series(path: str | os.PathLike, *, allow_missing_chunks: bool = False,
                     series: bool = False
                     ) -> tuple[da.Array, tuple[float, ...] | None, SeriesAxis | None]:
    """Open a zarr array or an OME-Zarr image lazily, its axes in srbio's order.

    Axes are honoured by name (OME-Zarr ``axes``, a plain array's ``axes`` attribute): an
    array stored ``x, y`` or ``y, x, z`` is transposed to ``yx`` / ``zyx``. Non-spatial axes
    of length 1 are dropped; with ``series``, one time or position axis longer than 1 is kept
    in front (see :func:`srbio.io.axes.arrange_axes`). An array that declares no axes is read
    as ``yx`` / ``zyx``.

    Returns
    -------
    data : dask.array.Array
        Axes ``[series,] [z,] y, x``.
    spacing : tuple of float or None
        Pixel size (µm) of the space axes, in ``zyx`` order, when the store records one.
    series : SeriesAxis or None
        The kept series axis.
    """
    path = Path(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several unrelated types for unreadable stores
        raise ValueError(f"{path}: cannot open as zarr ({exc})") from exc
    translation = None
    if isinstance(node, zarr.Group):
        sub, scale, translation, _ = read_ome_zarr_transform(node)
        level = node[sub]
        if not isinstance(level, zarr.Array):
            raise ValueError(f"{path}: multiscale level {sub!r} is not an array")
        arr = level
    else:
        arr = node
        scale, _ = _plain_array_spacing(arr, str(path))
    _check_chunks(arr, path, allow_missing_chunks)
    data = da.from_zarr(arr)
    names, kinds, units = _axes_of(node)
    if not names:
        return data, scale, None
    ax = arrange_axes(names, data.shape, source=str(path), kinds=kinds, series=series)
    data = data[ax.index]
    if not ax.identity:
        data = data.transpose(ax.order)
    lead = None
    if ax.series is not None:
        i = ax.series
        lead = SeriesAxis(
            name="t" if _axis_kind(names[i], kinds[i]) == "time" else "p",
            size=int(arr.shape[i]), kind=_axis_kind(names[i], kinds[i]),
            step=float(scale[i]) if scale is not None and len(scale) == len(names) else 1.0,
            origin=float(translation[i]) if translation is not None
            and len(translation) == len(names) else 0.0,
            unit=str(units[i]) if units[i] else None)
    spatial = [i for i in ax.kept if i != ax.series]
    if scale is not None and len(scale) == len(names):
        scale = tuple(scale[i] for i in spatial)
    elif scale is not None and len(scale) == len(spatial):  # given for the space axes only
        scale = tuple(scale[sorted(spatial).index(i)] for i in spatial)
    return data, scale, lead


def _axis_kind(name: str, kind: str | None):
    return "time" if kind == "time" or SERIES_NAMES.get(name.lower()) == "time" else "position"


def open_zarr(path: str | os.PathLike, *, allow_missing_chunks: bool = False
              ) -> tuple[da.Array, tuple[float, ...] | None]:
    """Open a zarr array or an OME-Zarr image lazily (axes ``yx`` or ``zyx``).

    Axes are honoured by name; non-spatial axes (``c``, ``t``) of length 1 are dropped and
    longer ones are an error (:func:`open_zarr_series` keeps a time or position axis).

    Parameters
    ----------
    path : path-like
        A zarr array, or an OME-Zarr group whose first multiscale level is read.
    allow_missing_chunks : bool
        Read never-written chunks as the fill value instead of refusing the store.

    Returns
    -------
    data : dask.array.Array
        Axes ``yx`` or ``zyx``.
    spacing : tuple of float or None
        Pixel size per axis in µm when the store records it. OME-Zarr scales are converted
        from each space axis' ``unit``; a plain array's ``attrs["spacing"]`` is in
        ``attrs["unit"]`` (one unit, or one per axis; default µm).

    Raises
    ------
    ValueError
        If the store cannot be opened, holds more than one channel/timepoint, or records a
        length unit srbio does not know (the message names the store, axis and unit).
    """
    data, scale, _ = open_zarr_series(path, allow_missing_chunks=allow_missing_chunks)
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
        config={"write_empty_chunks": True},  # every chunk on disk: a missing one is an error
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
    attrs: dict[str, Any] = group.attrs.asdict()
    current = dict(attrs.get("srbio", {}))
    current.update(values)
    group.attrs["srbio"] = current


def read_ome_zarr_attrs(path: str | os.PathLike) -> dict:
    """The ``srbio`` attributes of an OME-Zarr group (empty when absent)."""
    attrs: dict[str, Any] = zarr.open_group(str(path), mode="r").attrs.asdict()
    return dict(attrs.get("srbio", {}))
