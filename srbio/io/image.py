"""Format-independent entry points: read / open / write an image by its path's suffix."""

from __future__ import annotations

import os
from pathlib import Path

import dask.array as da
import numpy as np

from srbio.io.axes import SeriesAxis
from srbio.io.tiff import open_tiff_series, write_tiff
from srbio.io.zarr import open_zarr_series, zarr_origin

SUPPORTED_DTYPES = (np.dtype("uint8"), np.dtype("uint16"), np.dtype("float32"))
_TIFF_SUFFIXES = (".tif", ".tiff")


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or path.name.endswith(".ome.zarr") or (
        path.is_dir() and ((path / "zarr.json").exists() or (path / ".zgroup").exists()
                           or (path / ".zarray").exists())
    )


def check_image(image: np.ndarray | da.Array, *, source: str, check_values: bool = True) -> None:
    """Validate that an array is a usable single-channel 2D/3D microscopy image.

    Parameters
    ----------
    image : numpy.ndarray or dask.array.Array
        The pixel data.
    source : str
        Name used in error messages (usually the file path).
    check_values : bool
        Also scan the values for NaN/inf and emptiness (loads a dask array).

    Raises
    ------
    TypeError
        For an unsupported dtype.
    ValueError
        For a wrong number of dimensions, an empty array, non-finite or constant values.
    """
    if image.dtype not in SUPPORTED_DTYPES:
        allowed = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"{source}: dtype {image.dtype} is not supported (expected one of {allowed})")
    if image.ndim not in (2, 3):
        raise ValueError(
            f"{source}: expected a single-channel 2D (yx) or 3D (zyx) image, got shape {image.shape}"
        )
    if min(image.shape) < 2:
        raise ValueError(f"{source}: image of shape {image.shape} is empty or degenerate")
    if not check_values:
        return
    lo, hi = (float(v) for v in da.compute(image.min(), image.max())) if isinstance(
        image, da.Array) else (float(np.min(image)), float(np.max(image)))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{source}: image contains NaN or infinite values")
    if lo == hi:
        raise ValueError(f"{source}: image is constant (every pixel is {lo}); nothing to learn from")


def read_image(
    path: str | os.PathLike, *, spacing: tuple[float, ...] | None = None
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Read a TIFF or (OME-)Zarr image into memory with its pixel sizes.

    Parameters
    ----------
    path : path-like
        ``.tif``/``.tiff`` file or ``.zarr`` store.
    spacing : tuple of float, optional
        Pixel size per axis in µm; overrides what the file says.

    Returns
    -------
    image : numpy.ndarray
    spacing : tuple of float

    Raises
    ------
    FileNotFoundError, ValueError, TypeError
        When the file is missing, unreadable, of a wrong shape/dtype or has no pixel size.
    """
    data, spacing = open_lazy(path, spacing=spacing)
    image = load_pixels(data, source=str(path))
    check_image(image, source=str(path))
    return image, spacing


def load_pixels(data: da.Array | np.ndarray, *, source: str) -> np.ndarray:
    """Read (part of) a lazily opened image into memory; unreadable pixels are a ValueError.

    A truncated or corrupt file is only noticed when its pixels are decoded (zlib, blosc,
    tifffile and zarr raise their own exception types): the error names ``source``.
    """
    try:
        return np.asarray(data)
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise many unrelated types
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise ValueError(f"{source}: cannot read its pixel data, the file is corrupt or "
                         f"truncated ({reason})") from None


def _open(path: Path, allow_missing_chunks: bool = False, series: bool = False
          ) -> tuple[da.Array, tuple[float, ...] | None, SeriesAxis | None]:
    """Open a TIFF or zarr lazily by its path: the data, its pixel size (or None), its series."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if _is_zarr(path):
        return open_zarr_series(path, allow_missing_chunks=allow_missing_chunks, series=series)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        return open_tiff_series(path, series=series)
    raise ValueError(f"{path}: unknown image format (expected .tif, .tiff or .zarr)")


def open_series(
    path: str | os.PathLike, *, spacing: tuple[float, ...] | None = None,
    allow_missing_chunks: bool = False,
) -> tuple[da.Array, tuple[float, ...], SeriesAxis | None]:
    """Open an image lazily, keeping a leading time or position axis (``srbio predict``).

    As :func:`open_lazy`, but one time (``t``) or position (``p``) axis longer than 1 is kept
    in front of the space axes instead of refused.

    Returns
    -------
    data : dask.array.Array
        Axes ``[series,] [z,] y, x``.
    spacing : tuple of float
        Pixel size (µm) of the space axes only.
    series : SeriesAxis or None
        The leading axis, when the file has one.
    """
    path = Path(path)
    data, file_spacing, lead = _open(path, allow_missing_chunks, series=True)
    spatial = data[0] if lead is not None else data
    check_image(spatial, source=str(path), check_values=False)
    return data, _chosen_spacing(path, spatial, spacing, file_spacing), lead


def open_lazy(
    path: str | os.PathLike, *, spacing: tuple[float, ...] | None = None,
    allow_missing_chunks: bool = False,
) -> tuple[da.Array, tuple[float, ...]]:
    """Open an image lazily as a dask array, with its pixel sizes (µm, array axis order).

    Axes are read by the names the file declares and put in ``yx`` / ``zyx`` order.

    Parameters
    ----------
    path : path-like
        ``.tif``/``.tiff`` file or ``.zarr`` store.
    spacing : tuple of float, optional
        Overrides the file's pixel sizes (required when the file has none).
    allow_missing_chunks : bool
        A zarr store whose writer skipped chunks (they read as its fill value) is an error
        unless this is set.

    Returns
    -------
    data : dask.array.Array
    spacing : tuple of float
    """
    path = Path(path)
    data, file_spacing, _ = _open(path, allow_missing_chunks)
    check_image(data, source=str(path), check_values=False)
    return data, _chosen_spacing(path, data, spacing, file_spacing)


def _chosen_spacing(path: Path, data, spacing, file_spacing) -> tuple[float, ...]:
    """The pixel size given (else the file's), checked against the image's space axes."""
    chosen = spacing if spacing is not None else file_spacing
    if chosen is None:
        raise ValueError(
            f"{path}: the file holds no pixel size; give it in config.yaml "
            f"(e.g. `lr_spacing`/`hr_spacing` of the pair, or `spacing` of the predict volume), "
            f"as {data.ndim} values in µm in {'zyx' if data.ndim == 3 else 'yx'} order"
        )
    chosen = tuple(float(s) for s in chosen)
    if len(chosen) != data.ndim or not all(np.isfinite(s) and s > 0 for s in chosen):
        raise ValueError(
            f"{path}: pixel size {chosen} is invalid for an image of shape {data.shape} "
            f"(expected {data.ndim} positive values in µm)"
        )
    return chosen


def image_origin(path: str | os.PathLike, ndim: int) -> tuple[float, ...]:
    """Position (µm, array axis order) of the centre of an image's first pixel.

    OME-Zarr translations (with multiscale-level transforms) are honoured; TIFF files and
    stores without a position start at 0.
    """
    path = Path(path)
    origin = zarr_origin(path) if _is_zarr(path) else None
    if origin is None:
        return (0.0,) * ndim
    if len(origin) != ndim:
        raise ValueError(f"{path}: translation {list(origin)} does not match its {ndim} axes")
    return tuple(float(v) for v in origin)


def write_image(path: str | os.PathLike, image: np.ndarray, *, spacing: tuple[float, ...]) -> Path:
    """Write an in-memory image as TIFF (the only in-memory output format of the stages)."""
    path = Path(path)
    if path.suffix.lower() not in _TIFF_SUFFIXES:
        raise ValueError(f"{path}: write_image writes TIFF only (.tif/.tiff)")
    return write_tiff(path, image, spacing=spacing)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a binary mask image (TIFF or zarr); any nonzero pixel is True."""
    path = Path(path)
    data = np.asarray(_open(path)[0])
    if data.ndim not in (2, 3):
        raise ValueError(f"{path}: expected a 2D or 3D mask, got shape {data.shape}")
    return data != 0
