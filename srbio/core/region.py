"""Regions and lines given in physical (world) coordinates, as pixel boxes and profiles.

A viewer shows images of different sampling in one physical frame: pixel ``i`` of an axis with
pixel size ``scale`` and first-pixel centre ``translate`` sits at ``translate + i · scale``.
These functions turn what a user sees or draws there into pixel indices of one image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

Box = tuple[tuple[int, int], ...]


def to_pixels(points: npt.ArrayLike, scale: Sequence[float], translate: Sequence[float]
              ) -> np.ndarray:
    """World points (…, ndim) as fractional pixel indices of an image."""
    return (np.asarray(points, np.float64) - np.asarray(translate)) / np.asarray(scale)


def world_box(low: Sequence[float], high: Sequence[float], *, scale: Sequence[float],
              translate: Sequence[float], shape: Sequence[int]) -> Box | None:
    """The pixels of an image whose centres lie in the world box ``[low, high]`` (per axis).

    Returns ``(start, stop)`` per axis, clipped to ``shape``; None when no pixel centre lies
    inside. An axis whose ``low`` equals ``high`` (a plane shown in 2D) picks its nearest
    pixel.
    """
    a = to_pixels(low, scale, translate)
    b = to_pixels(high, scale, translate)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    box = []
    for first, last, n in zip(lo, hi, shape, strict=True):
        if last - first < 1e-9:  # a plane: its nearest pixel
            start = int(np.clip(np.floor(first + 0.5), 0, n - 1))
            if not -0.5 <= first <= n - 0.5:
                return None
            box.append((start, start + 1))
            continue
        start, stop = max(0, int(np.ceil(first - 1e-9))), min(n, int(np.floor(last + 1e-9)) + 1)
        if stop <= start:
            return None
        box.append((start, stop))
    return tuple(box)


def box_slices(box: Box) -> tuple[slice, ...]:
    """A pixel box as slices."""
    return tuple(slice(a, b) for a, b in box)


def line_profile(image: np.ndarray, start: Sequence[float], end: Sequence[float], *,
                 scale: Sequence[float], translate: Sequence[float], num: int = 200
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``image`` along the world segment ``start`` → ``end`` (linear interpolation).

    Returns the distance of each sample from ``start`` (world units, µm) and the values (NaN
    outside the image), so profiles of images of different sampling share one abscissa.
    """
    if num < 2:
        raise ValueError(f"a line profile needs at least 2 samples, got {num}")
    p0, p1 = np.asarray(start, np.float64), np.asarray(end, np.float64)
    t = np.linspace(0.0, 1.0, int(num))
    world = p0 + t[:, None] * (p1 - p0)
    pix = to_pixels(world, scale, translate)
    values = ndi.map_coordinates(np.asarray(image, np.float32), pix.T, order=1, mode="nearest")
    inside = np.all((pix >= -0.5) & (pix <= np.asarray(image.shape) - 0.5), axis=1)
    return t * float(np.linalg.norm(p1 - p0)), np.where(inside, values, np.nan)
