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
_AXIS_NAMES = {"C": "channel", "S": "sample (RGB)", "T": "time", "R": "tile"}


def _planes(tif: tifffile.TiffFile, path: Path) -> tuple[tuple[int | slice, ...], str]:
    """Index keeping the spatial axes of the first series, and their names (``yx``/``zyx``).

    Axes come from the file's metadata (tifffile's series axes). Length-1 axes are dropped;
    a channel, sample (RGB) or time axis longer than 1 is refused, and so is a file holding
    fewer planes than its ImageJ metadata announces (a truncated file).
    """
    series = tif.series[0]
    axes, shape = series.axes, series.shape
    ij = tif.imagej_metadata or {}
    announced = int(ij.get("images", 1) or 1)
    planes = int(np.prod([n for a, n in zip(axes, shape, strict=True) if a not in "YXS"]))
    if announced > planes:
        raise ValueError(f"{path}: holds {planes} of the {announced} planes its ImageJ metadata "
                         f"announces; the file is truncated or corrupt")
    keep: list[int | slice] = []
    names: list[str] = []
    for axis, n in zip(axes, shape, strict=True):
        if axis in "YX" or (axis in _Z_AXES and n > 1):
            keep.append(slice(None))
            names.append("z" if axis in _Z_AXES else axis.lower())
        elif n == 1:
            keep.append(0)
        else:
            what = _AXIS_NAMES.get(axis, f"{axis!r}")
            raise ValueError(f"{path}: its {what} axis has {n} entries (axes {axes}, shape "
                             f"{shape}); srbio reads single-channel 2D/3D images: save one "
                             f"channel / time point as its own file first")
    if names.count("z") > 1:
        raise ValueError(f"{path}: axes {axes} (shape {shape}) hold more than one stack axis")
    return tuple(keep), "".join(names)


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
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            index, _ = _planes(tif, path)
            spacing = _spacing(tif, sum(isinstance(i, slice) for i in index), path)
        node = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
        if isinstance(node, zarr.Group):  # pyramidal file: the full-resolution level
            node = node["0"]
        data = da.from_zarr(node)[index]
    except UnitError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot read TIFF ({exc})") from exc
    return data, spacing


def _spacing(tif: tifffile.TiffFile, ndim: int, path: Path) -> tuple[float, ...] | None:
    """Pixel sizes in µm (array axis order) from the resolution tags and ImageJ metadata."""
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
