"""Known answers for HR enhancement, with the bundled real PSF and real sample planes."""

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from srbio.core import enhance
from srbio.core.metrics import nrmse
from srbio.io import read_image

PSF = Path(__file__).resolve().parents[2] / "data" / "sample" / "psf.tif"


@pytest.fixture(scope="module")
def psf_volume():
    return read_image(PSF)


@pytest.fixture(scope="module")
def clean_patch(sample):
    """A real, fully valid 24 x 128 x 128 block of the sample, background removed."""
    image, spacing = sample
    block = image[8:32, 100:228, 160:288].astype(np.float32)
    return np.clip(block - np.percentile(block, 5), 0, None), spacing


def test_prepared_real_psf_sums_to_one_and_peaks_near_the_centre(psf_volume, sample):
    psf, psf_sp = psf_volume
    kernel = enhance.prepare_psf(psf, psf_sp, sample[1])
    assert kernel.sum() == pytest.approx(1.0, rel=1e-5)
    assert kernel.min() >= 0
    peak = np.unravel_index(np.argmax(kernel), kernel.shape)
    assert all(abs(p - n // 2) <= 3 for p, n in zip(peak, kernel.shape, strict=True))


def test_richardson_lucy_with_the_real_psf_undoes_its_blur(psf_volume, clean_patch):
    """Blur a real block with the measured PSF; 20 RL iterations bring it back closer."""
    block, spacing = clean_patch
    kernel = enhance.prepare_psf(*psf_volume, spacing)
    blurred = fftconvolve(np.pad(block, [(k // 2, k // 2) for k in kernel.shape], mode="reflect"),
                          kernel, mode="valid")[:block.shape[0], :block.shape[1], :block.shape[2]]
    restored = enhance.richardson_lucy(blurred, kernel, iterations=20)
    inner = (slice(4, -4), slice(8, -8), slice(8, -8))
    before = nrmse(blurred[inner], block[inner])
    after = nrmse(restored[inner], block[inner])
    assert after < 0.85 * before, (before, after)
    # flux is kept up to what crosses the borders (no rescaling, no clipping to a range)
    assert restored.sum() == pytest.approx(blurred.sum(), rel=0.05)
    assert restored.max() > blurred.max()
    assert restored.dtype == np.float32 and restored.min() >= 0


def test_tv_regularisation_damps_noise_amplification(psf_volume, clean_patch):
    block, spacing = clean_patch
    kernel = enhance.prepare_psf(*psf_volume, spacing)
    noisy = np.random.default_rng(0).poisson(block + 5).astype(np.float32)
    plain = enhance.richardson_lucy(noisy, kernel, iterations=15)
    tv = enhance.richardson_lucy(noisy, kernel, iterations=15, tv_weight=0.01)
    rough = lambda x: float(np.abs(np.diff(x, axis=-1)).mean())  # noqa: E731
    assert rough(tv) < rough(plain)


def test_gaussian_psf_from_optics_has_the_stated_width():
    spacing = (0.2, 0.05, 0.05)
    k = enhance.gaussian_psf(spacing, na=1.0, wavelength_nm=500)
    assert k.sum() == pytest.approx(1.0, rel=1e-5)
    lateral = k.sum(axis=(0, 1))
    x = (np.arange(lateral.size) - lateral.size // 2) * spacing[2]
    sigma = np.sqrt((lateral * x ** 2).sum() / lateral.sum())
    assert sigma == pytest.approx(0.21 * 0.5 / 1.0, rel=0.03)
    with pytest.raises(ValueError, match="NA 1.5"):
        enhance.gaussian_psf(spacing, na=1.5, wavelength_nm=500)


def test_denoise_lowers_the_error_on_a_noisy_real_plane(sample):
    image, _ = sample
    clean = image[20, 100:228, 160:288].astype(np.float32)
    noisy = clean + np.random.default_rng(1).normal(0, 20, clean.shape).astype(np.float32)
    out = enhance.denoise(noisy)
    assert nrmse(out, clean) < 0.8 * nrmse(noisy, clean)
    assert out.shape == clean.shape


def test_background_subtraction_removes_a_smooth_offset(sample):
    image, spacing = sample
    plane = image[20, 100:228, 160:288].astype(np.float32)
    yy, xx = np.mgrid[:128, :128]
    ramp = (200 + 2 * xx + yy).astype(np.float32)
    for method in ("rolling_ball", "gaussian"):
        out = enhance.subtract_background(plane + ramp, method=method, radius_um=3.0,
                                          spacing=spacing)
        # the ramp (slope 2 per pixel across x) is gone to within a quarter
        cols = out.mean(axis=0)
        assert abs(np.polyfit(np.arange(128), cols, 1)[0]) < 0.5, method
    with pytest.raises(ValueError, match="unknown background method"):
        enhance.subtract_background(plane, method="tophat", radius_um=3, spacing=spacing)


def test_richardson_lucy_rejects_mismatched_psf():
    with pytest.raises(ValueError, match="PSF is 2D but the image is 3D"):
        enhance.richardson_lucy(np.ones((4, 8, 8)), np.ones((3, 3)) / 9)
    with pytest.raises(ValueError, match="no signal"):
        enhance.prepare_psf(np.full((5, 5), 3.0), (0.1, 0.1), (0.1, 0.1))
    with pytest.raises(ValueError, match="3D"):
        enhance.prepare_psf(np.ones((5, 5)), (0.1, 0.1), (0.1, 0.1, 0.1))
