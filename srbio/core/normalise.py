"""Fixed min/max normalisation: one pair of numbers per modality for a whole dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def estimate_range(
    arrays: Sequence[np.ndarray],
    *,
    percentiles: tuple[float, float] = (0.1, 99.9),
    masks: Sequence[np.ndarray] | None = None,
    max_samples: int = 5_000_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Estimate (vmin, vmax) once from a set of images, as percentiles of all their pixels.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        The images of one modality (e.g. every training pair's LR).
    percentiles : (float, float)
        Lower and upper percentile.
    masks : sequence of numpy.ndarray, optional
        Valid-pixel masks; pixels outside are ignored.
    max_samples : int
        Pixels are subsampled uniformly at random beyond this count.
    seed : int
        Random seed of the subsampling.

    Returns
    -------
    (float, float)
        vmin < vmax.
    """
    if not arrays:
        raise ValueError("estimate_range needs at least one image")
    values = []
    for i, a in enumerate(arrays):
        v = np.asarray(a)
        values.append(v[np.asarray(masks[i], bool)] if masks is not None else v.ravel())
    flat = np.concatenate([v.astype(np.float64, copy=False) for v in values])
    if flat.size > max_samples:
        flat = np.random.default_rng(seed).choice(flat, max_samples, replace=False)
    lo, hi = np.percentile(flat, percentiles)
    if not hi > lo:
        raise ValueError(f"cannot normalise: percentiles {percentiles} give vmin={lo} >= vmax={hi}")
    return float(lo), float(hi)


def normalise(x: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Return ``(x - vmin) / (vmax - vmin)`` as float32 (no clipping; input untouched)."""
    if not vmax > vmin:
        raise ValueError(f"vmax ({vmax}) must be greater than vmin ({vmin})")
    return ((np.asarray(x, np.float32) - np.float32(vmin)) / np.float32(vmax - vmin)).astype(
        np.float32, copy=False)


def denormalise(y: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Inverse of :func:`normalise`: ``y * (vmax - vmin) + vmin`` as float32."""
    if not vmax > vmin:
        raise ValueError(f"vmax ({vmax}) must be greater than vmin ({vmin})")
    return (np.asarray(y, np.float32) * np.float32(vmax - vmin) + np.float32(vmin)).astype(
        np.float32, copy=False)
