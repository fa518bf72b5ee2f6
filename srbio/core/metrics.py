"""Image-quality metrics and upsampling baselines."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.metrics import structural_similarity


def _pixels(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if mask is None:
        return p.ravel(), t.ravel()
    if not mask.any():
        raise ValueError("the evaluation mask holds no valid pixel")
    return p[mask], t[mask]


def psnr(pred: np.ndarray, target: np.ndarray, *, data_range: float,
         mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB (over ``mask`` when given)."""
    p, t = _pixels(pred, target, mask)
    mse = float(np.mean((p - t) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def nrmse(pred: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Root-mean-square error divided by the target's standard deviation (over ``mask``)."""
    p, t = _pixels(pred, target, mask)
    return float(np.sqrt(np.mean((p - t) ** 2)) / t.std())


def ssim(pred: np.ndarray, target: np.ndarray, *, data_range: float,
         mask: np.ndarray | None = None, win_size: int = 7) -> float:
    """Mean 2D SSIM (plane by plane for stacks).

    With ``mask``, the SSIM map is averaged over the pixels whose whole ``win_size`` window
    lies inside the mask, so invalid pixels never enter a window.
    """
    p = np.asarray(pred, np.float64)
    t = np.asarray(target, np.float64)
    m = None if mask is None else np.asarray(mask, bool)
    if p.ndim == 2:
        p, t = p[None], t[None]
        m = None if m is None else m[None]
    values, weights = [], []
    for i, (a, b) in enumerate(zip(p, t, strict=True)):
        if m is None:
            values.append(structural_similarity(a, b, data_range=data_range, win_size=win_size))
            weights.append(1.0)
            continue
        inner = ndi.binary_erosion(m[i], np.ones((win_size, win_size), bool), border_value=0)
        if inner.any():
            smap = structural_similarity(a, b, data_range=data_range, win_size=win_size,
                                         full=True)[1]
            values.append(float(smap[inner].mean()))
            weights.append(float(inner.sum()))
    if not values:
        raise ValueError(f"no {win_size}×{win_size} SSIM window fits inside the evaluation mask")
    return float(np.average(values, weights=weights))


def upsample(image: np.ndarray, scale: int, *, order: int) -> np.ndarray:
    """Upsample the lateral axes by ``scale`` (order 0 nearest, 3 cubic), pixel-area aligned."""
    zoom = (1,) * (image.ndim - 2) + (scale, scale)
    return ndi.zoom(np.asarray(image, np.float32), zoom, order=order, mode="reflect",
                    grid_mode=True, prefilter=order > 1)


def linear_fit(pred: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None
               ) -> tuple[float, float]:
    """Least-squares ``(a, b)`` minimising ``|a · pred + b − target|²`` over the masked pixels.

    The intensity match CARE-style evaluations apply to every method before scoring, so a
    method is not penalised (or flattered) for a gain or offset that one line undoes.
    """
    p, t = _pixels(pred, target, mask)
    p64, t64 = p.astype(np.float64), t.astype(np.float64)
    var = float(np.var(p64))
    if var == 0.0:
        return 0.0, float(t64.mean())
    a = float(np.mean((p64 - p64.mean()) * (t64 - t64.mean())) / var)
    return a, float(t64.mean() - a * p64.mean())


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images over their common top-left region."""
    common = tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape, strict=True))
    x = a[common].astype(np.float64).ravel()
    y = b[common].astype(np.float64).ravel()
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def near_duplicates(images: dict[str, np.ndarray], *, threshold: float = 0.99
                    ) -> list[tuple[str, str, float]]:
    """Pairs of named images whose correlation exceeds ``threshold``: ``(a, b, r)``.

    Two such images are one sample counted twice (the same acquisition listed twice, or two
    near-identical time points): they inflate training data and test statistics alike.
    """
    names = sorted(images)
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if images[a].ndim == images[b].ndim:
                r = correlation(images[a], images[b])
                if r > threshold:
                    found.append((a, b, r))
    return found
