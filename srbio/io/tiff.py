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

log = logging.getLogger(__name__)

_UNIT_TO_UM = {"um": 1.0, "µm": 1.0, "\\u00B5m": 1.0, "micron": 1.0, "microns": 1.0,
               "micrometer": 1.0, "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3}


def _lateral_spacing(page: tifffile.TiffPage, unit_um: float | None) -> tuple[float, float] | None:
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return None
    unit_tag = tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 1
    if unit == 2:  # inch
        per_unit_um = 25400.0
    elif unit == 3:  # centimetre
        per_unit_um = 1e4
    elif unit_um is not None:  # ImageJ writes RESUNIT NONE and keeps the unit in its metadata
        per_unit_um = unit_um
    else:
        return None
    values = []
    for name in ("YResolution", "XResolution"):
        num, den = tags[name].value
        if num == 0 or den == 0:
            return None
        values.append(per_unit_um * den / num)
    if values == [per_unit_um, per_unit_um] and unit == 1:
        return None  # tifffile's default resolution of 1 pixel per unit: not a measurement
    return values[0], values[1]


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
        If the file is not a readable TIFF.
    """
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            image = tif.asarray()
            spacing = _spacing(tif, image.ndim, path)
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"{path}: cannot read TIFF ({exc})") from exc
    return image, spacing


def open_tiff_lazy(path: str | os.PathLike) -> tuple[da.Array, tuple[float, ...] | None]:
    """Open a TIFF lazily (pages read on demand through tifffile's zarr store).

    Returns the data as a dask array (one chunk per page or tile) and the pixel sizes as
    :func:`read_tiff` does; memory use does not grow with the file size.
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
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"{path}: cannot read TIFF ({exc})") from exc
    return data, spacing


def _spacing(tif: tifffile.TiffFile, ndim: int, path: Path) -> tuple[float, ...] | None:
    page = tif.pages.first
    ij = tif.imagej_metadata or {}
    unit = ij.get("unit")
    unit_um = _UNIT_TO_UM.get(str(unit).strip().lower()) if unit is not None else None
    if unit is not None and unit_um is None:
        log.warning("%s: unknown ImageJ unit %r, pixel sizes ignored", path, unit)
    lateral = _lateral_spacing(page, unit_um)
    if lateral is not None:
        if ndim == 2:
            return lateral
        if ndim == 3 and "spacing" in ij:
            return (float(ij["spacing"]) * (unit_um or 1.0), *lateral)
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
    metadata: dict = {"axes": "ZYX" if image.ndim == 3 else "YX", "unit": "um"}
    resolution = None
    if spacing is not None:
        resolution = (1.0 / spacing[-1], 1.0 / spacing[-2])
        if image.ndim == 3:
            metadata["spacing"] = float(spacing[0])
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, image, imagej=True, resolution=resolution, metadata=metadata,
                         compression=compression)
    return Path(path)
