"""Tile grids and blending weights for tiled inference (pure numpy)."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``.

    The last tile is shifted back to end at ``length``; a tile larger than the axis is
    clamped to it (one tile at 0).
    """
    tile = min(tile, length)
    if tile >= length:
        return [0]
    stride = tile - overlap
    if stride <= 0:
        raise ValueError(f"overlap {overlap} must be smaller than the tile size {tile}")
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def balanced_tile(length: int, tile: int, overlap: int) -> int:
    """Smallest tile size that covers ``length`` with as many tiles as ``tile`` would need.

    ``tile`` is an upper bound: e.g. 160 pixels with tiles of 128 overlapping by 16 need two
    tiles; two tiles of 88 cover them too, with 1.45x less computation.
    """
    if tile >= length:
        return length
    n_tiles = int(np.ceil((length - overlap) / (tile - overlap)))
    return min(tile, int(np.ceil((length + (n_tiles - 1) * overlap) / n_tiles)))


def ramp(length: int, width: int, *, floor: float = 1e-3) -> np.ndarray:
    """1D blending weight: a raised-cosine rise over ``width`` pixels at both ends, 1 inside."""
    d = np.minimum(np.arange(length), np.arange(length)[::-1]).astype(np.float64)
    if width <= 0:
        return np.ones(length, np.float32)
    w = np.where(d < width, np.sin(0.5 * np.pi * (d + 0.5) / width) ** 2, 1.0)
    return np.maximum(w, floor).astype(np.float32)


def blend_weight(shape: tuple[int, int], width: int) -> np.ndarray:
    """2D separable blending weight of a tile of ``shape`` with ramps of ``width`` pixels."""
    return np.outer(ramp(shape[0], width), ramp(shape[1], width))


def intersecting(starts: list[int], tile: int, scale: int, lo: int, hi: int) -> list[int]:
    """Indices of tiles (LR starts, LR size ``tile``) whose upsampled extent meets ``[lo, hi)``."""
    return [i for i, s in enumerate(starts) if s * scale < hi and (s + tile) * scale > lo]
