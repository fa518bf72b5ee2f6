"""Known answers: a simulated acquisition with a known transform is recovered by registration."""

import numpy as np
import pytest
import SimpleITK as sitk

from srbio.core import grid
from srbio.core import registration as reg
from srbio.core import transforms as tf
from srbio.core.simulate import simulate_lr
from srbio.core.validity import valid_mask


@pytest.fixture(scope="module")
def plane(sample):
    image, spacing = sample
    return image[20], spacing[1:]


def _kwargs(hr, spacing, sim):
    """Registration arguments for a simulated pair: spacings and validity masks."""
    return {"fixed_spacing": spacing, "moving_spacing": sim.spacing,
            "fixed_mask": valid_mask(hr), "moving_mask": grid.erode(valid_mask(sim.lr), 1)}


def _samples_of(image, spacing, points):
    """Linear interpolation of ``image`` at physical points (array axis order)."""
    idx = (points / np.asarray(spacing)).T
    from scipy.ndimage import map_coordinates

    return map_coordinates(image.astype(np.float64), idx, order=1)


def test_simulated_lr_has_the_expected_geometry_and_a_black_border(plane):
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=0)
    assert sim.lr.dtype == np.uint16
    assert sim.lr.shape == (hr.shape[0] // 2, hr.shape[1] // 2)
    assert sim.spacing == pytest.approx((spacing[0] * 2, spacing[1] * 2))
    w = round(0.04 * sim.lr.shape[1])
    assert np.all(sim.lr[:, :w] == 0) and np.all(sim.lr[:, -w:] == 0)
    inside = sim.lr[w:-w, w:-w]
    assert inside[inside > 0].min() >= 1 and inside.max() > 300


def test_truth_transform_maps_hr_points_onto_the_same_structures_in_lr(plane):
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=5, deformation_um=0.05)
    mask = valid_mask(hr) & (hr > np.percentile(hr, 90))
    pts = tf.grid_points(mask, spacing, n=3000, seed=1)
    lr_pts = tf.transform_points(sim.transform, pts)
    hr_vals = _samples_of(hr, spacing, pts)
    keep = np.all((lr_pts > 2 * np.asarray(sim.spacing)) &
                  (lr_pts < (np.asarray(sim.lr.shape) - 3) * np.asarray(sim.spacing)), axis=1)
    lr_true = _samples_of(sim.lr, sim.spacing, lr_pts[keep])
    lr_identity = _samples_of(sim.lr, sim.spacing, pts[keep])
    r_true = np.corrcoef(hr_vals[keep], lr_true)[0, 1]
    r_identity = np.corrcoef(hr_vals[keep], lr_identity)[0, 1]
    assert r_true > 0.9 and r_true > r_identity + 0.15  # measured 0.97 vs 0.74


@pytest.mark.parametrize("kind", ["rigid", "affine"])
def test_registration_recovers_a_rigid_misalignment_2d(plane, kind):
    """Mean error stated: <= 0.25 HR px (2D plane, shot noise; measured ~0.08 rigid, ~0.14 affine)."""
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=3, affine_strength=0.0,
                      deformation_um=0.0, max_rotation_deg=3.0, max_shift_um=(0, 2.0))
    fixed_mask = valid_mask(hr)
    result = reg.register(hr, sim.lr, fixed_spacing=spacing, moving_spacing=sim.spacing,
                          transform=kind, fixed_mask=fixed_mask,
                          moving_mask=grid.erode(valid_mask(sim.lr), 1))
    pts = tf.grid_points(fixed_mask, spacing, n=2000)
    err = tf.point_error_px(result.transform, sim.transform, pts, spacing)
    before = tf.point_error_px(sitk.Transform(2, sitk.sitkIdentity), sim.transform, pts, spacing)
    assert before.mean() > 5  # the simulation really misaligned the pair
    assert err.mean() <= 0.25, err.mean()
    assert [s["transform"] for s in result.stages] == (
        ["init-phase", "rigid"] if kind == "rigid" else ["init-phase", "rigid", "affine"])


def test_affine_registration_recovers_scaling_and_shear_2d(plane):
    """Mean error stated: <= 0.35 HR px with a 2% random affine part (measured 0.26; rigid
    alone cannot fit it: 1.9)."""
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=5, affine_strength=0.02,
                      deformation_um=0.0)
    kwargs = _kwargs(hr, spacing, sim)
    fixed_mask = kwargs["fixed_mask"]
    pts = tf.grid_points(fixed_mask, spacing, n=2000)
    affine = reg.register(hr, sim.lr, transform="affine", **kwargs)
    rigid = reg.register(hr, sim.lr, transform="rigid", **kwargs)
    err_affine = tf.point_error_px(affine.transform, sim.transform, pts, spacing).mean()
    err_rigid = tf.point_error_px(rigid.transform, sim.transform, pts, spacing).mean()
    assert err_affine <= 0.35 and err_affine < err_rigid / 3


def test_registered_lr_is_resampled_on_the_hr_aligned_grid(plane):
    hr, spacing = plane
    shape, sp, origin = grid.lr_grid(hr.shape, spacing, 2)
    assert shape == (hr.shape[0] // 2, hr.shape[1] // 2)
    assert sp == pytest.approx((spacing[0] * 2, spacing[1] * 2))
    # LR pixel 0 covers HR pixels 0 and 1: its centre is half an HR pixel in
    assert origin == pytest.approx((spacing[0] / 2, spacing[1] / 2))
    # resampling HR itself through the identity onto that grid = the 2x2 block mean (linear)
    ident = sitk.Transform(2, sitk.sitkIdentity)
    out = reg.resample(hr, ident, moving_spacing=spacing, shape=shape, spacing=sp, origin=origin)
    np.testing.assert_allclose(out[1:-1, 1:-1], grid.block_mean(hr, (2, 2))[1:-1, 1:-1], rtol=1e-5)


def test_mismatched_dimensions_and_unknown_transform_are_errors(plane):
    hr, spacing = plane
    with pytest.raises(ValueError, match="2D but moving is 3D"):
        reg.register(hr, np.zeros((3, 4, 5)), fixed_spacing=spacing, moving_spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="unknown transform"):
        reg.register(hr, hr, fixed_spacing=spacing, moving_spacing=spacing, transform="elastic")


@pytest.mark.slow
def test_bspline_chain_recovers_a_smooth_deformation_and_writes_a_readable_transform(plane,
                                                                                   tmp_path):
    """Stated: on a 0.15 µm (1.5 HR px) smooth deformation the B-spline chain beats the affine
    one and stays <= 0.45 HR px mean (measured 0.38 vs 0.49; issue 3 targets 0.3)."""
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=2, deformation_um=0.15,
                      deformation_spacing_um=12.0)
    kwargs = _kwargs(hr, spacing, sim)
    fixed_mask = kwargs["fixed_mask"]
    pts = tf.grid_points(grid.erode(fixed_mask, 20), spacing, n=2000)
    bspline = reg.register(hr, sim.lr, transform="bspline", bspline_mesh_um=8.0, **kwargs)
    affine = reg.register(hr, sim.lr, transform="affine", **kwargs)
    err_b = tf.point_error_px(bspline.transform, sim.transform, pts, spacing).mean()
    err_a = tf.point_error_px(affine.transform, sim.transform, pts, spacing).mean()
    assert [s["transform"] for s in bspline.stages] == ["init-phase", "rigid", "affine", "bspline"]
    assert err_b <= 0.45 and err_b < err_a - 0.05, (err_b, err_a)
    sitk.WriteTransform(bspline.transform, str(tmp_path / "t.tfm"))
    back = sitk.ReadTransform(str(tmp_path / "t.tfm"))
    np.testing.assert_allclose(tf.transform_points(back, pts[:20]),
                               tf.transform_points(bspline.transform, pts[:20]), atol=1e-6)


def test_mattes_metric_also_registers(plane):
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=3, affine_strength=0.0,
                      deformation_um=0.0)
    fixed_mask = valid_mask(hr)
    result = reg.register(hr, sim.lr, fixed_spacing=spacing, moving_spacing=sim.spacing,
                          transform="rigid", metric="mattes", fixed_mask=fixed_mask,
                          moving_mask=grid.erode(valid_mask(sim.lr), 1))
    pts = tf.grid_points(fixed_mask, spacing, n=1000)
    assert tf.point_error_px(result.transform, sim.transform, pts, spacing).mean() <= 0.3


def test_a_measured_psf_blurs_like_the_microscope(sample):
    """The real bead PSF (stage-scan geometry) used as the simulation's optics."""
    from pathlib import Path

    from srbio.io import read_image

    psf, psf_spacing = read_image(Path(__file__).resolve().parents[2] / "data/sample/psf.tif")
    image, spacing = sample
    sharp = simulate_lr(image[10:30], spacing=spacing, factor=2, seed=0, psf_sigma_um=(0, 0),
                        read_noise=0, photons_per_count=1e4, border_fraction=0)
    blurred = simulate_lr(image[10:30], spacing=spacing, factor=2, seed=0, psf=psf,
                          psf_spacing=psf_spacing, read_noise=0, photons_per_count=1e4,
                          border_fraction=0)
    a, b = sharp.lr[10].astype(float), blurred.lr[10].astype(float)
    valid = (a > 0) & (b > 0)
    # same geometry and seed: only the optics differ; the PSF removes high frequencies
    assert np.corrcoef(a[valid], b[valid])[0, 1] > 0.8
    lap = lambda x: np.abs(np.diff(x, 2, axis=1))[valid[:, 1:-1]].mean()  # noqa: E731
    assert lap(b) < 0.7 * lap(a)


@pytest.mark.slow
def test_registration_in_3d_with_anisotropic_spacing(sample):
    """3D, z step 0.157 µm vs 0.1015 µm laterally. Stated: rigid mean error <= 1.0 HR px
    (measured ~0.8, mostly along z; lateral <= 0.35 px each). See the README's limitations."""
    image, spacing = sample
    sim = simulate_lr(image, spacing=spacing, factor=2, seed=1, affine_strength=0.0,
                      deformation_um=0.0, max_tilt_deg=0.0)
    mask = valid_mask(image)
    result = reg.register(image, sim.lr, fixed_spacing=spacing, moving_spacing=sim.spacing,
                          transform="rigid", fixed_mask=mask,
                          moving_mask=grid.erode(valid_mask(sim.lr), 1))
    pts = tf.grid_points(mask, spacing, n=3000)
    diff = (tf.transform_points(result.transform, pts)
            - tf.transform_points(sim.transform, pts)) / np.asarray(spacing)
    assert np.sqrt((diff ** 2).sum(1)).mean() <= 1.0
    assert np.all(np.abs(diff[:, 1:]).mean(0) <= 0.35)
