"""Crop boxes of valid pixels (bounding box, or largest all-valid box) and LR↔HR box scaling."""

from __future__ import annotations

import numpy as np

from srbio.core.grid import Box


def _nonempty(mask: np.ndarray) -> np.ndarray:
    """``mask`` as bool, or ValueError when it holds no valid pixel."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the valid-region mask is empty: the two images share no valid pixel")
    return mask


def _run_extents(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per True pixel: its column's run height, and the widest columns of that height.

    Parameters
    ----------
    mask : numpy.ndarray of bool
        2D mask of shape (rows, cols).

    Returns
    -------
    height, left, right : numpy.ndarray of int
        ``height[r, c]`` is the run of True pixels in column ``c`` ending at row ``r`` (0 on
        False pixels); ``[left, right)`` is the widest column range around ``c`` whose pixels
        are True on all of rows ``r - height + 1 .. r``. Every maximal all-True rectangle is
        ``height * (right - left)`` at one of its bottom-row pixels.
    """
    rows, cols = mask.shape
    row = np.arange(rows)[:, None]
    col = np.arange(cols)
    height = row - np.maximum.accumulate(np.where(mask, -1, row), axis=0)
    # horizontal run of True pixels through (r, c) within row r alone
    run_left = np.maximum.accumulate(np.where(mask, 0, col + 1), axis=1)
    run_right = np.minimum.accumulate(np.where(mask, cols, col)[:, ::-1], axis=1)[:, ::-1]
    # intersect those runs down each vertical run of True pixels: a running max/min that
    # restarts at every False pixel, via an offset that grows by (cols + 1) per segment
    offset = np.cumsum(~mask, axis=0) * (cols + 1)
    left = np.maximum.accumulate(np.where(mask, run_left, 0) + offset, axis=0) - offset
    right = np.minimum.accumulate(np.where(mask, run_right, cols) - offset, axis=0) + offset
    return height, left, right


def _merge_runs(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge runs of identical consecutive rows (``axis=0``) or columns (``axis=1``).

    Returns the merged mask and the edges of the runs: merged line ``i`` stands for the
    original lines ``edges[i]:edges[i + 1]``. A largest rectangle never splits such a run.
    """
    changed = np.any(np.diff(mask, axis=axis), axis=1 - axis)
    starts = np.flatnonzero(np.concatenate(([True], changed)))
    return mask.take(starts, axis=axis), np.append(starts, mask.shape[axis])


def _largest_rectangle(mask: np.ndarray) -> tuple[int, Box]:
    """Largest all-True rectangle in a 2D mask, and its area (0 for an all-False mask).

    Vectorised maximal-rectangle dynamic programme (:func:`_run_extents`) on the mask with
    identical neighbouring rows and columns merged (deskew wedges leave few distinct
    columns). Ties go to the lowest bottom row, then the leftmost right edge, then the
    tallest rectangle.
    """
    merged, row_edges = _merge_runs(mask, 0)
    merged, col_edges = _merge_runs(merged, 1)
    height, left, right = _run_extents(merged)
    top = row_edges[np.arange(merged.shape[0])[:, None] + 1 - height]
    bottom = row_edges[1:, None]
    x0, x1 = col_edges[left], col_edges[right]
    area = (bottom - top) * (x1 - x0)
    best_area = int(area.max(initial=0))
    if best_area == 0:
        return 0, ((0, 0), (0, 0))
    r, c = np.nonzero(area == best_area)
    i = np.lexsort((top[r, c], x1[r, c], r))[0]
    r, c = r[i], c[i]
    box = ((int(top[r, c]), int(bottom[r, 0])), (int(x0[r, c]), int(x1[r, c])))
    return best_area, box


def _largest_box_3d(mask: np.ndarray) -> Box:
    """Largest all-True box of a 3D mask: the best z-range and the rectangle of its AND.

    Start planes ``z0`` are visited from the last to the first, so that every z-range
    ``[z0, z1)`` has the upper bound ``area(z0 + 1, z1)`` (the AND of fewer planes holds a
    rectangle at least as large). A row of ranges stops as soon as neither it nor any
    longer range can reach the best volume; the bounds of the ranges it skips are kept for
    the next row. Ties go to the full depth, then to the smallest ``(z0, z1)``.
    """
    nz = mask.shape[0]
    depth = np.arange(nz + 1)
    bound = np.full((nz + 1, nz + 1), np.inf)  # bound[z0, z1] >= area of planes z0..z1-1
    full_area, full_rect = _largest_rectangle(np.logical_and.reduce(mask, axis=0))
    best_vol, best_key, best_box = full_area * nz, (0, 0, nz), ((0, nz), *full_rect)
    for z0 in range(nz - 1, -1, -1):
        acc = np.ones(mask.shape[1:], bool)
        count, area = -1, np.inf
        for z1 in range(z0 + 1, nz + 1):
            reach = np.minimum(area, bound[z0 + 1, z1:])
            if (reach * (depth[z1:] - z0)).max() < best_vol:
                bound[z0, z1:] = reach  # no range [z0, z1') with z1' >= z1 can win
                break
            acc &= mask[z1 - 1]
            new_count = int(np.count_nonzero(acc))
            if new_count != count:  # the AND changed: recompute its rectangle
                count = new_count
                area, rect = _largest_rectangle(acc)
            bound[z0, z1] = area
            vol, key = area * (z1 - z0), (1, z0, z1)
            if vol > best_vol or (vol == best_vol and key < best_key):
                best_vol, best_key, best_box = vol, key, ((z0, z1), *rect)
    return best_box


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
    return _largest_box_3d(mask)


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


