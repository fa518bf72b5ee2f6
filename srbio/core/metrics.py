"""Image-quality metrics and upsampling baselines."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.metrics import structural_similarity


def psnr(pred: np.ndarray, target: np.ndarray, *, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB."""
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root-mean-square error divided by the target's standard deviation."""
    t = np.asarray(target, np.float64)
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - t) ** 2)) / t.std())


def ssim(pred: np.ndarray, target: np.ndarray, *, data_range: float) -> float:
    """Mean 2D SSIM (plane by plane for stacks)."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(target, np.float64)
    if p.ndim == 2:
        p, t = p[None], t[None]
    return float(np.mean([structural_similarity(a, b, data_range=data_range)
                          for a, b in zip(p, t, strict=True)]))


def upsample(image: np.ndarray, scale: int, *, order: int) -> np.ndarray:
    """Upsample the lateral axes by ``scale`` (order 0 nearest, 3 cubic), pixel-area aligned."""
    zoom = (1,) * (image.ndim - 2) + (scale, scale)
    return ndi.zoom(np.asarray(image, np.float32), zoom, order=order, mode="reflect",
                    grid_mode=True, prefilter=order > 1)
