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
        If the file is not a readable TIFF, or its ImageJ unit is not a known length unit
        (the message names the file and the unit). ImageJ's ``"pixel"`` means no pixel size.
    """
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            image = tif.asarray()
            spacing = _spacing(tif, image.ndim, path)
    except UnitError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"{path}: cannot read TIFF ({exc})") from exc
    return image, spacing


def open_tiff_lazy(path: str | os.PathLike) -> tuple[da.Array, tuple[float, ...] | None]:
    """Open a TIFF lazily (pages read on demand through tifffile's zarr store).

    Parameters
    ----------
    path : path-like
        The TIFF file. It is opened read-only.

    Returns
    -------
    data : dask.array.Array
        One chunk per page or tile; memory use does not grow with the file size.
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
            series = tif.series[0]
            spacing = _spacing(tif, len(series.shape), path)
        node = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
        if isinstance(node, zarr.Group):  # pyramidal file: the full-resolution level
            node = node["0"]
        data = da.from_zarr(node)
    except UnitError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
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
