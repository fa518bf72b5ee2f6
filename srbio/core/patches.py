"""Foreground-aware sampling of 16-bit LR/HR patch pairs inside a region."""

from __future__ import annotations

import numpy as np
from skimage.filters import threshold_otsu


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


def to_uint16(image: np.ndarray, *, source: str) -> np.ndarray:
    """Convert to uint16 without silent loss: integers are cast, floats must be in range."""
    if image.dtype == np.uint16:
        return image
    if image.dtype == np.uint8:
        return image.astype(np.uint16)
    lo, hi = float(np.min(image)), float(np.max(image))
    if lo < 0 or hi > 65535:
        raise ValueError(f"{source}: values {lo}..{hi} do not fit 16-bit patches (0..65535); "
                         f"rescale the data first")
    return np.rint(image).astype(np.uint16)


def window_corners(mask: np.ndarray, size: int) -> np.ndarray:
    """Top-left corners ``(z, y, x)`` whose ``size × size`` window of ``mask`` is all True.

    ``mask`` is ``zyx``; the result has shape ``(z, y - size + 1, x - size + 1)`` (summed-area
    table per plane).
    """
    m = np.asarray(mask, bool)
    if m.shape[-2] < size or m.shape[-1] < size:
        return np.zeros((m.shape[0], 0, 0), bool)
    table = np.zeros((m.shape[0], m.shape[1] + 1, m.shape[2] + 1), np.int64)
    table[:, 1:, 1:] = m.cumsum(1).cumsum(2)
    sums = (table[:, size:, size:] - table[:, :-size, size:] - table[:, size:, :-size]
            + table[:, :-size, :-size])
    return sums == size * size


def sample_patches(
    lr: np.ndarray,
    hr: np.ndarray,
    *,
    scale: int,
    size: int,
    n: int,
    axis: int,
    bounds: tuple[int, int],
    min_foreground: float = 0.05,
    threshold: float | None = None,
    rng: np.random.Generator,
    mask: np.ndarray | None = None,
    max_tries: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` random 2D patch pairs lying entirely inside ``bounds`` along ``axis``.

    Parameters
    ----------
    lr, hr : numpy.ndarray
        Registered, cropped LR (LR grid) and HR, ``yx`` or ``zyx``; HR lateral = LR × scale.
    scale : int
        Lateral factor.
    size : int
        LR patch size; HR patches are ``size * scale``.
    n : int
        Patches wanted.
    axis : int
        Lateral axis (-2 = y, -1 = x) along which ``bounds`` (LR pixels) apply.
    bounds : (int, int)
        Region of that axis the patches must stay in.
    min_foreground : float
        Minimum fraction of HR patch pixels above ``threshold``; background patches are
        rejected (up to ``max_tries`` times per patch, then the best candidate is kept).
    threshold : float, optional
        Foreground threshold of HR; Otsu's of ``hr`` when omitted.
    rng : numpy.random.Generator
        Random source.
    mask : numpy.ndarray of bool, optional
        Valid pixels of the LR grid (same shape as ``lr``): every patch lies entirely inside.
    max_tries : int
        Candidates tried per patch.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        uint16 arrays (n, size, size) and (n, size*scale, size*scale).
    """
    if lr.ndim == 2:
        lr, hr = lr[None], hr[None]
        mask = None if mask is None else mask[None]
    ly, lx = lr.shape[-2:]
    lo = [0, 0]
    hi = [ly, lx]
    ax = axis % 2
    lo[ax], hi[ax] = bounds
    if hi[0] - lo[0] < size or hi[1] - lo[1] < size:
        raise ValueError(f"region {tuple(zip(lo, hi, strict=True))} of the LR crop is smaller "
                         f"than the patch size {size}: lower patches.size or enlarge the split")
    corners = window_corners(mask if mask is not None else np.ones(lr.shape, bool), size)
    region = np.zeros(corners.shape, bool)
    region[:, lo[0]:hi[0] - size + 1, lo[1]:hi[1] - size + 1] = True
    allowed = np.flatnonzero(corners & region)
    if allowed.size == 0:
        raise ValueError(f"no {size}×{size} patch fits inside the valid region within "
                         f"{tuple(zip(lo, hi, strict=True))}: lower patches.size")
    if threshold is None:
        threshold = float(threshold_otsu(hr[:, :: max(1, hr.shape[1] // 256),
                                            :: max(1, hr.shape[2] // 256)]))
    out_lr = np.empty((n, size, size), np.uint16)
    out_hr = np.empty((n, size * scale, size * scale), np.uint16)
    for k in range(n):
        best, best_fg = None, -1.0
        for _ in range(max_tries):
            z, y, x = (int(v) for v in np.unravel_index(allowed[rng.integers(allowed.size)],
                                                         corners.shape))
            hp = hr[z, y * scale:(y + size) * scale, x * scale:(x + size) * scale]
            fg = float((hp > threshold).mean())
            if fg > best_fg:
                best, best_fg = (z, y, x), fg
            if fg >= min_foreground:
                break
        z, y, x = best
        out_lr[k] = lr[z, y:y + size, x:x + size]
        out_hr[k] = hr[z, y * scale:(y + size) * scale, x * scale:(x + size) * scale]
    return out_lr, out_hr
