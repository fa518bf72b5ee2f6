"""Grid geometry: the LR grid aligned with HR, per-axis factors, boxes, bands and block reductions.

Conventions: arrays are ``yx``/``zyx``; ``scale`` is the integer lateral factor (HR pixels per
LR pixel); ``factors`` are per-axis factors (``scale`` on y and x, 1 on z); spacings are µm in
array axis order.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

Box = tuple[tuple[int, int], ...]  # per axis (start, stop), stop exclusive

# Sane limits, checked before any resampling. Paired microscope acquisitions differ in pixel
# size by 1-10x (objectives 10x-100x, binning); 16x leaves room and still catches a wrong
# pixel size (a 72-dpi screen resolution, an inch unit, a model header in metres) before it
# asks for a plane of tens of GiB. A resampled plane above 2^30 pixels (4 GiB in float32, a
# 32768^2 plane) is refused for the same reason.
MAX_RESAMPLE_FACTOR = 16.0
MAX_PLANE_PIXELS = 2**30


def check_resampling(source_spacing: tuple[float, ...], target_spacing: tuple[float, ...],
                     shape: tuple[int, ...], *, what: str, override: str) -> None:
    """Refuse a lateral resampling by an absurd factor or onto an absurd plane size.

    Parameters
    ----------
    source_spacing, target_spacing : tuple of float
        Pixel sizes (µm) before and after; only the lateral (last two) entries count.
    shape : tuple of int
        The image shape before resampling.
    what : str
        What is resampled onto what, for the message (with the file names).
    override : str
        How the user gives the right pixel sizes (e.g. ``--spacing``).

    Raises
    ------
    ValueError
        Naming both pixel sizes, the factor, the limit and ``override``.
    """
    src, dst = np.asarray(source_spacing[-2:], float), np.asarray(target_spacing[-2:], float)
    factors = src / dst
    worst = float(max(factors.max(), 1 / factors.min()))
    sizes = (f"{[float(f'{v:.6g}') for v in src]} µm onto "
             f"{[float(f'{v:.6g}') for v in dst]} µm")
    if worst > MAX_RESAMPLE_FACTOR:
        raise ValueError(f"{what}: resampling {sizes} is a factor of {worst:.4g}, beyond the "
                         f"{MAX_RESAMPLE_FACTOR:g}x srbio accepts (paired acquisitions differ "
                         f"by 1-10x): a pixel size is probably wrong (a 72-dpi screen "
                         f"resolution, a unit in inches or metres); give the right one with "
                         f"{override}")
    pixels = float(np.prod(np.asarray(shape[-2:], float) * factors))
    if pixels > MAX_PLANE_PIXELS:
        raise ValueError(f"{what}: resampling {sizes} would make planes of {pixels:.3g} "
                         f"pixels, beyond the {MAX_PLANE_PIXELS:.3g} srbio accepts (4 GiB in "
                         f"float32); check the pixel sizes, or give them with {override}")


def lr_grid(hr_shape: tuple[int, ...], hr_spacing: tuple[float, ...], factor: float
            ) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    """The LR grid aligned with HR: shape, spacing and origin (array axis order, HR frame).

    Lateral axes (the last two) are ``factor`` times coarser (the integer ``scale`` of a pair,
    or any factor ≥ 1 when simulating); z is unchanged. LR pixel ``i`` covers HR pixels
    ``i*factor … i*factor+factor-1``, so its centre sits at ``(i*factor + (factor-1)/2) *
    hr_spacing``.
    """
    factors = lateral_factors(len(hr_shape), factor)
    shape = tuple(int(n // f) for n, f in zip(hr_shape, factors, strict=True))
    spacing = tuple(s * f for s, f in zip(hr_spacing, factors, strict=True))
    origin = tuple((f - 1) / 2 * s for s, f in zip(hr_spacing, factors, strict=True))
    return shape, spacing, origin


def lateral_factors(ndim: int, factor: float) -> tuple[float, ...]:
    """Per-axis factors: ``factor`` on y and x, 1 on z."""
    return (1,) * (ndim - 2) + (factor, factor)


def _blocks(array: np.ndarray, factors: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """View ``array`` (trimmed to whole blocks) as (n0, f0, n1, f1, …); returns the block axes."""
    shape = tuple(n // f for n, f in zip(array.shape, factors, strict=True))
    trimmed = array[tuple(slice(0, n * f) for n, f in zip(shape, factors, strict=True))]
    paired = [d for n, f in zip(shape, factors, strict=True) for d in (n, f)]
    return trimmed.reshape(paired), tuple(range(1, 2 * len(shape), 2))


def block_all(mask: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Downsample a boolean mask: a coarse pixel is True when all its fine pixels are."""
    blocks, axes = _blocks(mask, factors)
    return np.asarray(blocks.all(axis=axes))


def block_mean(image: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Downsample by averaging non-overlapping blocks (float32)."""
    blocks, axes = _blocks(image.astype(np.float32), factors)
    return blocks.mean(axis=axes)


def erode(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Binary erosion that treats outside the array as invalid."""
    if iterations <= 0:
        return mask.copy()
    return ndi.binary_erosion(mask, iterations=iterations, border_value=0)


def expand_mask(mask: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Mask of the fine grid: every coarse pixel repeated ``factors`` times per axis."""
    out = np.asarray(mask, bool)
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return out


def scale_box(box: Box, factors: tuple[int, ...]) -> Box:
    """Map a box on the LR grid to the HR grid: every bound multiplied by the axis' factor."""
    return tuple((a * f, b * f) for (a, b), f in zip(box, factors, strict=True))


def box_slices(box: Box) -> tuple[slice, ...]:
    """Convert a box to a tuple of slices."""
    return tuple(slice(a, b) for a, b in box)


def split_bounds(length: int, val_fraction: float, test_fraction: float
                 ) -> dict[str, tuple[int, int]]:
    """Disjoint [start, stop) bounds of the train, val and test parts of an axis (in that order)."""
    n_test = int(round(length * test_fraction))
    n_val = int(round(length * val_fraction))
    n_train = length - n_val - n_test
    return {"train": (0, n_train), "val": (n_train, n_train + n_val),
            "test": (n_train + n_val, length)}


def band(array: np.ndarray, axis: int, bounds: tuple[int, int], factor: int = 1) -> np.ndarray:
    """The part of ``array`` between ``bounds`` (LR pixels, times ``factor``) along ``axis``."""
    idx = [slice(None)] * array.ndim
    idx[axis] = slice(bounds[0] * factor, bounds[1] * factor)
    return array[tuple(idx)]


def resample_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample a 2D plane onto ``shape`` pixels covering the same field of view (float32).

    Linear interpolation between pixel centres (the grids share their outer edges), with a
    Gaussian anti-aliasing prefilter when the plane shrinks.
    """
    from skimage.transform import resize

    plane = np.asarray(plane, np.float32)
    shrinking = shape[0] < plane.shape[0] or shape[1] < plane.shape[1]
    return resize(plane, shape, order=1, mode="edge", anti_aliasing=shrinking,
                  preserve_range=True).astype(np.float32)
