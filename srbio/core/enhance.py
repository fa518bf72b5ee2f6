"""HR enhancement: Richardson–Lucy deconvolution, denoising, background subtraction.

Pure array functions (float32 in and out, never modifying the input). The stage
``srbio.stages.enhance`` chains them as configured and records what was done.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import fftconvolve
from skimage.restoration import denoise_nl_means, estimate_sigma, rolling_ball


def prepare_psf(psf: np.ndarray, psf_spacing: tuple[float, ...],
                spacing: tuple[float, ...]) -> np.ndarray:
    """Resample a measured PSF onto the image's pixel size, remove its offset, sum it to 1.

    Parameters
    ----------
    psf : numpy.ndarray
        Measured PSF (a bead image), same dimensionality as the image.
    psf_spacing, spacing : tuple of float
        Pixel sizes (µm, array axis order) of the PSF and of the image it will blur.
    """
    if psf.ndim != len(spacing) or len(psf_spacing) != psf.ndim:
        raise ValueError(f"the PSF is {psf.ndim}D (pixel size {psf_spacing}) but the image is "
                         f"{len(spacing)}D: they must match")
    zoom = [ps / s for ps, s in zip(psf_spacing, spacing, strict=True)]
    kernel = ndi.zoom(np.asarray(psf, np.float64), zoom, order=1)
    kernel = np.clip(kernel - np.median(kernel), 0, None)  # camera offset / background
    total = kernel.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the PSF holds no signal above its median (background)")
    return (kernel / total).astype(np.float32)


def gaussian_psf(spacing: tuple[float, ...], *, na: float, wavelength_nm: float,
                 refractive_index: float = 1.33) -> np.ndarray:
    """Gaussian approximation of a widefield PSF from the objective's NA and the wavelength.

    Lateral sigma ``0.21 λ/NA``, axial sigma ``0.66 λ n/NA²`` (Zhang et al., Appl. Opt. 2007),
    sampled at ``spacing`` over ±4 sigma and summed to 1.
    """
    if not 0 < na < refractive_index:
        raise ValueError(f"NA {na} must be positive and below the refractive index "
                         f"{refractive_index}")
    lam = wavelength_nm / 1000.0
    lateral = 0.21 * lam / na
    axial = 0.66 * lam * refractive_index / na ** 2
    sigmas = ((axial,) if len(spacing) == 3 else ()) + (lateral, lateral)
    axes = []
    for sig, sp in zip(sigmas, spacing, strict=True):
        half = max(1, int(np.ceil(4 * sig / sp)))
        x = np.arange(-half, half + 1) * sp
        axes.append(np.exp(-0.5 * (x / sig) ** 2))
    kernel = axes[0]
    for a in axes[1:]:
        kernel = np.multiply.outer(kernel, a)
    return (kernel / kernel.sum()).astype(np.float32)


def _tv_divergence(u: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """div(∇u / |∇u|), the curvature term of total-variation regularisation."""
    grads = np.gradient(u)
    norm = np.sqrt(sum(g * g for g in grads) + eps)
    return sum(np.gradient(g / norm, axis=i) for i, g in enumerate(grads))


def richardson_lucy(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10,
                    tv_weight: float = 0.0) -> np.ndarray:
    """Richardson–Lucy deconvolution, optionally with total-variation regularisation.

    ``u ← u · (K* ⋆ (d / (K ⋆ u))) / (1 − λ div(∇u/|∇u|))`` (Dey et al., Microsc. Res. Tech.
    2006); ``λ = tv_weight`` (0: plain RL; 0.001–0.01 damps noise amplification). Values are
    never clipped to a range: the result keeps the image's units and total intensity.

    Parameters
    ----------
    image : numpy.ndarray
        Non-negative image (negative values are treated as 0).
    psf : numpy.ndarray
        PSF at the image's pixel size, summing to 1 (:func:`prepare_psf`, :func:`gaussian_psf`).
    iterations : int
        RL iterations.
    tv_weight : float
        Total-variation weight λ.
    """
    if psf.ndim != image.ndim:
        raise ValueError(f"PSF is {psf.ndim}D but the image is {image.ndim}D")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    data = np.clip(np.asarray(image, np.float32), 0, None)
    pad = [(k // 2, k // 2) for k in psf.shape]
    padded = np.pad(data, pad, mode="reflect")
    mirror = psf[tuple(slice(None, None, -1) for _ in range(psf.ndim))]
    estimate = np.full_like(padded, max(float(padded.mean()), 1e-6))
    tiny = np.float32(1e-6 * max(float(padded.max()), 1.0))
    for _ in range(iterations):
        blurred = fftconvolve(estimate, psf, mode="same")
        ratio = padded / np.maximum(blurred, tiny)
        estimate = estimate * fftconvolve(ratio, mirror, mode="same")
        if tv_weight > 0:
            estimate = estimate / np.maximum(1 - tv_weight * _tv_divergence(estimate), 0.1)
        estimate = np.clip(estimate, 0, None).astype(np.float32)
    return estimate[tuple(slice(a, a + n) for (a, _), n in zip(pad, data.shape, strict=True))]


def denoise(image: np.ndarray, *, strength: float = 0.8, patch_size: int = 5,
            patch_distance: int = 6) -> np.ndarray:
    """Non-local means denoising (scikit-image), plane by plane for stacks.

    The noise sigma is estimated per plane; ``h = strength × sigma``.
    """
    img = np.asarray(image, np.float32)
    planes = img[None] if img.ndim == 2 else img
    out = np.empty_like(planes)
    for i, plane in enumerate(planes):
        sigma = float(estimate_sigma(plane))
        out[i] = denoise_nl_means(plane, h=strength * sigma, sigma=sigma, fast_mode=True,
                                  patch_size=patch_size, patch_distance=patch_distance,
                                  preserve_range=True)
    return out[0] if img.ndim == 2 else out


def subtract_background(image: np.ndarray, *, method: str, radius_um: float,
                        spacing: tuple[float, ...]) -> np.ndarray:
    """Remove a slowly varying background, plane by plane for stacks.

    ``rolling_ball`` (scikit-image; radius in µm) never goes below 0; ``gaussian`` subtracts a
    Gaussian blur of sigma ``radius_um`` and may leave negative values, which the caller
    must handle (the stage clips them to 0 and records how many).
    """
    img = np.asarray(image, np.float32)
    planes = img[None] if img.ndim == 2 else img
    lateral = float(np.mean(spacing[-2:]))
    if method == "rolling_ball":
        radius = max(1.0, radius_um / lateral)
        bg = np.stack([rolling_ball(p, radius=radius) for p in planes])
    elif method == "gaussian":
        bg = np.stack([ndi.gaussian_filter(p, radius_um / lateral, mode="reflect")
                       for p in planes])
    else:
        raise ValueError(f"unknown background method {method!r} (rolling_ball or gaussian)")
    out = planes - bg
    return out[0] if img.ndim == 2 else out
