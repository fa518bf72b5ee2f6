"""TIFF reading and writing with physical pixel sizes (ImageJ metadata and resolution tags)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dask.array as da
import numpy as np
import tifffile
import zarr

from srbio.io.atomic import atomic_path
from srbio.io.axes import Arrangement, SeriesAxis, arrange_axes
from srbio.io.zarr import UnitError, is_uncalibrated, to_micrometres

log = logging.getLogger(__name__)

_RESUNIT_INCH, _RESUNIT_CENTIMETER = 2, 3


def _lateral_spacing(page: tifffile.TiffPage, unit: str | None, path: Path) -> tuple[float, float] | None:
    """(y, x) pixel size in µm from the resolution tags; ``unit`` is ImageJ's unit (None: none)."""
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return None
    unit_tag = tags.get("ResolutionUnit")
    res_unit = int(unit_tag.value) if unit_tag is not None else 1
    source = f"{path}: TIFF ResolutionUnit"
    if res_unit == _RESUNIT_INCH:
        length_unit = "inch"
    elif res_unit == _RESUNIT_CENTIMETER:
        length_unit = "centimeter"
    elif unit is not None:  # ImageJ writes RESUNIT NONE and keeps the unit in its metadata
        length_unit, source = unit, f"{path}: ImageJ unit"
    else:
        return None
    per_pixel = []
    for name in ("YResolution", "XResolution"):
        num, den = tags[name].value
        if num == 0 or den == 0:
            return None
        per_pixel.append(den / num)
    y, x = (to_micrometres(v, length_unit, source=source) for v in per_pixel)
    return y, x


_Z_AXES = "ZQI"  # tifffile: Z depth, Q unknown (a plain stack), I image sequence
# tifffile's axis letters → srbio's names (R tile / M mosaic: positions); others keep their letter
_TIFF_NAMES = {"Y": "y", "X": "x", "T": "t", "C": "c", "S": "rgb", "R": "p", "M": "p"}


def _planes(tif: tifffile.TiffFile, path: Path, *, series: bool = False
            ) -> tuple[Arrangement, SeriesAxis | None]:
    """How to read the first series of a TIFF in srbio's axis order.

    Axes come from the file's metadata (tifffile's series axes). Length-1 axes are dropped; a
    channel or sample (RGB) axis longer than 1 is refused, and so is a time / position axis
    unless ``series`` (then it is kept in front). A file holding fewer planes than its ImageJ
    metadata announces (a truncated file) is refused.
    """
    if len(tif.series) > 1:
        shapes = ", ".join(f"{s.name or i}: {s.axes} {tuple(s.shape)}"
                           for i, s in enumerate(tif.series))
        raise ValueError(f"{path}: holds {len(tif.series)} image series ({shapes}); srbio reads "
                         f"one image per file: save the series you want as its own file")
    s0 = tif.series[0]
    axes, shape = s0.axes, tuple(s0.shape)
    ij = tif.imagej_metadata or {}
    announced = int(ij.get("images", 1) or 1)
    planes = int(np.prod([n for a, n in zip(axes, shape, strict=True) if a not in "YXS"]))
    if announced > planes:
        raise ValueError(f"{path}: holds {planes} of the {announced} planes its ImageJ metadata "
                         f"announces; the file is truncated or corrupt")
    if tif.is_imagej and len(tif.pages) > planes:
        raise ValueError(f"{path}: holds {len(tif.pages)} pages but its ImageJ metadata "
                         f"announces {planes} planes ({ij.get('images')} images, axes {axes}); "
                         f"reading it either way could be wrong: fix its metadata (e.g. Fiji: "
                         f"Image > Properties) and save it again")
    stacks = [a for a, n in zip(axes, shape, strict=True) if a in _Z_AXES and n > 1]
    if len(stacks) > 1:
        raise ValueError(f"{path}: axes {axes} (shape {shape}) hold more than one stack axis")
    # letters without a meaning here (P phase, A angle, E lambda, ...) get a name srbio never
    # takes for a space, time or position axis: refused when longer than 1
    names = [("z" if n > 1 else f"{a.lower()}_") if a in _Z_AXES
             else _TIFF_NAMES.get(a, f"tifffile axis {a}") for a, n in zip(axes, shape,
                                                                          strict=True)]
    arranged = arrange_axes(names, shape, source=str(path), series=series)
    lead = None
    if arranged.series is not None:
        name = names[arranged.series]
        interval = ij.get("finterval")
        lead = SeriesAxis(name=name, size=shape[arranged.series],
                          kind="time" if name == "t" else "position",
                          step=float(interval) if name == "t" and interval else 1.0,
                          unit="second" if name == "t" and interval else None)
    return arranged, lead


def read_tiff(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Read a single-channel 2D or 3D TIFF and its pixel sizes.

    Parameters
    ----------
    path : path-like
        The TIFF file. It is opened read-only.

    Returns
    -------
    image : numpy.ndarray
        The pixel data, axes ``yx`` or ``zyx``.
    spacing : tuple of float or None
        Physical pixel size per axis in µm (array axis order), or None when the file holds
        no pixel size.

    Raises
    ------
    ValueError
        If the file is not a readable TIFF, is truncated, has a channel / RGB / time axis, or
        its ImageJ unit is not a known length unit (the message names the file and the unit).
        ImageJ's ``"pixel"`` means no pixel size.
    """
    data, spacing = open_tiff_lazy(path)
    try:
        return np.asarray(data), spacing
    except Exception as exc:  # decoders raise many unrelated types
        raise ValueError(f"{path}: cannot read its pixel data ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None


def open_tiff_lazy(path: str | os.PathLike) -> tuple[da.Array, tuple[float, ...] | None]:
    """Open a TIFF lazily (pages read on demand through tifffile's zarr store).

    Parameters
    ----------
    path : path-like
        The TIFF file. It is opened read-only.

    Returns
    -------
    data : dask.array.Array
        Axes ``yx`` or ``zyx``, one chunk per page or tile; memory use does not grow with the
        file size.
    spacing : tuple of float or None
        Pixel sizes in µm as :func:`read_tiff` returns them.

    Raises
    ------
    ValueError
        As :func:`read_tiff`.
    """
    data, spacing, _ = open_tiff_series(path)
    return data, spacing


def open_tiff_series(path: str | os.PathLike, *, series: bool = False
                     ) -> tuple[da.Array, tuple[float, ...] | None, SeriesAxis | None]:
    """Open a TIFF lazily, with a leading time / position axis kept when ``series``.

    Parameters
    ----------
    path : path-like
        The TIFF file. It is opened read-only.
    series : bool
        Keep one time (``T``) or position (``R``, ``M``) axis longer than 1 in front.

    Returns
    -------
    data : dask.array.Array
        Axes ``[series,] [z,] y, x``, one chunk per page or tile; memory use does not grow
        with the file size.
    spacing : tuple of float or None
        Pixel sizes (µm) of the space axes, as :func:`read_tiff` returns them.
    series : SeriesAxis or None
        The kept series axis (its step is ImageJ's ``finterval`` in seconds, when recorded).

    Raises
    ------
    ValueError
        As :func:`read_tiff`.
    """
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            arranged, lead = _planes(tif, path, series=series)
            spacing = _spacing(tif, len(arranged.kept) - (lead is not None), path)
        node = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
        if isinstance(node, zarr.Group):  # pyramidal file: the full-resolution level
            node = node["0"]
        data = da.from_zarr(node)[arranged.index]
        if not arranged.identity:
            data = data.transpose(arranged.order)
    except UnitError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot read TIFF ({exc})") from exc
    return data, spacing, lead


def _ome_spacing(tif: tifffile.TiffFile, ndim: int, path: Path) -> tuple[float, ...] | None:
    """Pixel sizes in µm (array axis order) from an OME-TIFF's OME-XML (None: not given)."""
    try:
        image = tifffile.xml2dict(tif.ome_metadata or "")["OME"]["Image"]
        pixels = (image[0] if isinstance(image, list) else image)["Pixels"]
    except (KeyError, TypeError, IndexError, ValueError):
        return None
    sizes = []
    for axis in "ZYX"[3 - ndim:]:
        value = pixels.get(f"PhysicalSize{axis}")
        if value is None:
            return None
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")  # OME's default unit
        sizes.append(to_micrometres(float(value), unit,
                                    source=f"{path}: OME-XML PhysicalSize{axis}Unit"))
    return tuple(sizes)


def _spacing(tif: tifffile.TiffFile, ndim: int, path: Path) -> tuple[float, ...] | None:
    """Pixel sizes in µm (array axis order): OME-XML, else resolution tags and ImageJ metadata."""
    if tif.is_ome:
        ome = _ome_spacing(tif, ndim, path)
        if ome is not None:
            return ome
    ij = tif.imagej_metadata or {}
    unit = ij.get("unit")
    if unit is not None and is_uncalibrated(unit):
        return None  # ImageJ's "pixel": the image is not calibrated
    unit = None if unit is None else str(unit)
    lateral = _lateral_spacing(tif.pages.first, unit, path)
    if lateral is not None:
        if ndim == 2:
            return lateral
        if ndim == 3 and "spacing" in ij:
            z = to_micrometres(float(ij["spacing"]), unit, source=f"{path}: ImageJ unit")
            return (z, *lateral)
    return None


def write_tiff(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    spacing: tuple[float, ...] | None,
    compression: str | None = "zlib",
) -> Path:
    """Write a 2D/3D single-channel image as an ImageJ-compatible TIFF with pixel sizes in µm.

    The file is written under a temporary name and renamed when complete.

    Parameters
    ----------
    path : path-like
        Destination.
    image : numpy.ndarray
        ``yx`` or ``zyx`` array of dtype uint8, uint16 or float32.
    spacing : tuple of float or None
        Pixel size per axis in µm.
    compression : str or None
        tifffile compression name.

    Returns
    -------
    Path
        The written path.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"{path}: expected a 2D or 3D image, got shape {image.shape}")
    if spacing is not None and len(spacing) != image.ndim:
        raise ValueError(f"{path}: spacing {spacing} does not match image shape {image.shape}")
    metadata: dict = {"axes": "ZYX" if image.ndim == 3 else "YX"}
    resolution = None
    if spacing is not None:
        metadata["unit"] = "um"
        resolution = (1.0 / spacing[-1], 1.0 / spacing[-2])
        if image.ndim == 3:
            metadata["spacing"] = float(spacing[0])
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, image, imagej=True, resolution=resolution, metadata=metadata,
                         compression=compression)
    return Path(path)
