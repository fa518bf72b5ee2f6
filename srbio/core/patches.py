"""Foreground-aware sampling of 16-bit LR/HR patch pairs inside a region."""

from __future__ import annotations

import numpy as np
from skimage.filters import threshold_otsu


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


def _all_planes(corners: np.ndarray, depth: int) -> np.ndarray:
    """Corners valid in ``depth`` consecutive planes: shape ``(z - depth + 1, y, x)``."""
    if corners.shape[0] < depth:
        return np.zeros((0, *corners.shape[1:]), bool)
    table = np.concatenate([np.zeros((1, *corners.shape[1:]), np.int64),
                            corners.cumsum(0, dtype=np.int64)])
    return (table[depth:] - table[:-depth]) == depth


def _allowed_corners(shape: tuple[int, ...], mask: np.ndarray | None, size: int, axis: int,
                     bounds: tuple[int, int], depth: int = 1
                     ) -> tuple[np.ndarray, tuple[int, ...]]:
    """Flat indices of the valid patch corners inside ``bounds``, and the corner grid's shape.

    ``shape`` and ``mask`` are ``zyx``; a corner is valid when its whole window (``depth``
    planes deep) lies in ``mask``.
    """
    if shape[0] < depth:
        raise ValueError(f"the LR crop has {shape[0]} planes, fewer than the patch depth "
                         f"{depth}: lower patches.depth")
    lo = [0, 0]
    hi = list(shape[-2:])
    lo[axis % 2], hi[axis % 2] = bounds
    if hi[0] - lo[0] < size or hi[1] - lo[1] < size:
        raise ValueError(f"region {tuple(zip(lo, hi, strict=True))} of the LR crop is smaller "
                         f"than the patch size {size}: lower patches.size or enlarge the split")
    corners = _all_planes(window_corners(mask if mask is not None else np.ones(shape, bool),
                                         size), depth)
    region = np.zeros(corners.shape, bool)
    region[:, lo[0]:hi[0] - size + 1, lo[1]:hi[1] - size + 1] = True
    allowed = np.flatnonzero(corners & region)
    if allowed.size == 0:
        raise ValueError(f"no {size}×{size} patch fits inside the valid region within "
                         f"{tuple(zip(lo, hi, strict=True))}: lower patches.size")
    return allowed, corners.shape


def _draw_one(hr: np.ndarray, allowed: np.ndarray, grid: tuple[int, ...],
              rng: np.random.Generator, *, size: int, scale: int, threshold: float,
              min_foreground: float, max_tries: int, depth: int = 1) -> tuple[int, int, int]:
    """LR corner ``(z, y, x)`` of one patch: the first candidate with enough foreground.

    Up to ``max_tries`` random corners are drawn from ``allowed`` (flat indices into ``grid``);
    when none reaches ``min_foreground``, the one with the most foreground is kept.
    """
    best, best_fg = (0, 0, 0), -1.0
    for _ in range(max_tries):
        z, y, x = (int(v) for v in np.unravel_index(allowed[rng.integers(allowed.size)], grid))
        hp = hr[z:z + depth, y * scale:(y + size) * scale, x * scale:(x + size) * scale]
        fg = float((hp > threshold).mean())
        if fg > best_fg:
            best, best_fg = (z, y, x), fg
        if fg >= min_foreground:
            break
    return best


def sample_patches(
    lr: np.ndarray, hr: np.ndarray, *, scale: int, size: int, n: int, axis: int,
    bounds: tuple[int, int], min_foreground: float = 0.05, threshold: float | None = None,
    rng: np.random.Generator, mask: np.ndarray | None = None, max_tries: int = 50,
    depth: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` random patch pairs (2D, or ``depth`` planes deep) inside ``bounds``.

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
    depth : int, optional
        3D patches of this many consecutive planes (LR and HR share the z grid); else 2D.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        uint16 arrays (n, size, size) and (n, size*scale, size*scale); with ``depth``,
        (n, depth, size, size) and (n, depth, size*scale, size*scale).
    """
    if lr.ndim == 2:
        lr, hr = lr[None], hr[None]
        mask = None if mask is None else mask[None]
    d = depth or 1
    allowed, grid = _allowed_corners(lr.shape, mask, size, axis, bounds, d)
    if threshold is None:
        threshold = float(threshold_otsu(hr[:, :: max(1, hr.shape[1] // 256),
                                            :: max(1, hr.shape[2] // 256)]))
    out_lr = np.empty((n, d, size, size), np.uint16)
    out_hr = np.empty((n, d, size * scale, size * scale), np.uint16)
    for k in range(n):
        z, y, x = _draw_one(hr, allowed, grid, rng, size=size, scale=scale, threshold=threshold,
                            min_foreground=min_foreground, max_tries=max_tries, depth=d)
        out_lr[k] = lr[z:z + d, y:y + size, x:x + size]
        out_hr[k] = hr[z:z + d, y * scale:(y + size) * scale, x * scale:(x + size) * scale]
    if depth is None:
        return out_lr[:, 0], out_hr[:, 0]
    return out_lr, out_hr
