"""Crop boxes of valid pixels (bounding box, or largest all-valid box) and LR↔HR box scaling."""

from __future__ import annotations

import numpy as np

Box = tuple[tuple[int, int], ...]  # per axis (start, stop), stop exclusive


def _nonempty(mask: np.ndarray) -> np.ndarray:
    """``mask`` as bool, or ValueError when it holds no valid pixel."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the valid-region mask is empty: the two images share no valid pixel")
    return mask


def _largest_rectangle(mask: np.ndarray) -> tuple[int, Box]:
    """Largest all-True rectangle in a 2D mask (row histograms + a monotonic stack)."""
    rows, cols = mask.shape
    heights = np.zeros(cols, dtype=np.int64)
    best_area, best = 0, ((0, 0), (0, 0))
    for r in range(rows):
        heights = np.where(mask[r], heights + 1, 0)
        if heights.max(initial=0) * cols <= best_area:
            continue
        stack: list[int] = []  # column indices with increasing heights
        h = heights.tolist() + [0]
        for c in range(cols + 1):
            start = c
            while stack and h[stack[-1]] >= h[c]:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = h[top] * (c - left)
                if area > best_area:
                    best_area = area
                    best = ((r - h[top] + 1, r + 1), (left, c))
                start = left
            del start
            stack.append(c)
    return best_area, best


def largest_valid_box(mask: np.ndarray) -> Box:
    """Largest axis-aligned box whose pixels are all True.

    2D: exact maximum-area rectangle. 3D: exact maximum volume over every contiguous
    z-range (the yx rectangle of each range comes from the AND of its planes; ranges are
    pruned once they cannot beat the best volume found).

    Parameters
    ----------
    mask : numpy.ndarray of bool
        2D (yx) or 3D (zyx) validity mask.

    Returns
    -------
    tuple of (start, stop) per axis

    Raises
    ------
    ValueError
        If the mask holds no valid pixel.
    """
    mask = _nonempty(mask)
    if mask.ndim == 2:
        return _largest_rectangle(mask)[1]
    if mask.ndim != 3:
        raise ValueError(f"mask must be 2D or 3D, got shape {mask.shape}")
    nz = mask.shape[0]
    full_area, full_rect = _largest_rectangle(np.logical_and.reduce(mask, axis=0))
    best_vol, best_box = full_area * nz, ((0, nz), *full_rect)
    for z0 in range(nz):
        acc = mask[z0].copy()
        count, area, rect = -1, 0, full_rect
        for z1 in range(z0 + 1, nz + 1):
            acc &= mask[z1 - 1]
            new_count = int(acc.sum())
            if new_count * (nz - z0) <= best_vol:
                break  # no longer range starting at z0 can beat the best box
            if new_count != count:  # the AND changed: recompute its rectangle
                count = new_count
                area, rect = _largest_rectangle(acc)
                if area * (nz - z0) <= best_vol:
                    break
            if area * (z1 - z0) > best_vol:
                best_vol, best_box = area * (z1 - z0), ((z0, z1), *rect)
    return best_box


def valid_bbox(mask: np.ndarray) -> Box:
    """Smallest axis-aligned box holding every True pixel of ``mask`` (the valid field of view).

    Raises
    ------
    ValueError
        If the mask holds no valid pixel.
    """
    mask = _nonempty(mask)
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append((int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def expand_mask(mask: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Mask of the fine grid: every coarse pixel repeated ``factors`` times per axis."""
    out = np.asarray(mask, bool)
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return out


def scale_box(box: Box, scale: tuple[int, ...]) -> Box:
    """Map a box on the LR grid to the HR grid: every bound multiplied by the axis' scale."""
    return tuple((a * s, b * s) for (a, b), s in zip(box, scale, strict=True))


def box_slices(box: Box) -> tuple[slice, ...]:
    """Convert a box to a tuple of slices."""
    return tuple(slice(a, b) for a, b in box)
