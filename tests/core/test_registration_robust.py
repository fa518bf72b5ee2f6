"""Registration that survives large offsets, non-integer pixel-size ratios, and reports QC."""

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


def _register(hr, spacing, sim, **kw):
    fixed_mask = valid_mask(hr)
    result = reg.register(hr, sim.lr, fixed_spacing=spacing, moving_spacing=sim.spacing,
                          fixed_mask=fixed_mask, moving_mask=grid.erode(valid_mask(sim.lr), 1),
                          **kw)
    pts = tf.grid_points(grid.erode(fixed_mask, 10), spacing, n=2000)
    return result, tf.point_error_px(result.transform, sim.transform, pts, spacing)


@pytest.mark.parametrize("sign", [1, -1])
def test_phase_start_survives_a_20_percent_shift_and_a_10_degree_rotation(plane, sign):
    """Exactly 20 % of the field of view on both axes plus 10° (measured ~0.04 px)."""
    hr, spacing = plane
    fov = np.asarray(hr.shape) * np.asarray(spacing)
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=4, affine_strength=0.0,
                      deformation_um=0.0, rotation_deg=10.0 * sign,
                      shift_um=tuple(0.2 * fov * sign), border_fraction=0.02)
    result, err = _register(hr, spacing, sim, transform="rigid", metric="correlation")
    assert err.mean() <= 0.15, err.mean()
    assert result.stages[0]["transform"] == "init-phase"
    assert abs(result.stages[0]["rotation_deg"] - 10.0 * sign) <= 2.0


def test_phase_start_finds_the_offset_the_centred_start_misses(plane):
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=11, affine_strength=0.0,
                      deformation_um=0.0, max_rotation_deg=10.0, max_shift_um=(0, 7.0))
    start, summary = reg.coarse_alignment(
        hr, sim.lr, fixed_spacing=spacing, moving_spacing=sim.spacing,
        fixed_mask=valid_mask(hr), moving_mask=valid_mask(sim.lr))
    pts = tf.grid_points(grid.erode(valid_mask(hr), 20), spacing, n=500)
    err_um = tf.point_error_px(start, sim.transform, pts, (1.0, 1.0))
    centred = tf.point_error_px(sitk.Transform(2, sitk.sitkIdentity), sim.transform, pts,
                                 (1.0, 1.0))
    # within about one coarse pixel (0.6 µm) of the truth, from several µm away
    assert err_um.mean() < 1.0 < centred.mean(), (err_um.mean(), centred.mean())
    assert abs(summary["rotation_deg"] - sim.parameters["rotation_deg"]) <= 2.0


def test_non_integer_pixel_size_ratio_is_registered(plane):
    """LR pixels 3.25x the HR's (0.65 vs 0.2 µm-like): scale chosen 3, error stays small."""
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=3.25, seed=2, affine_strength=0.0,
                      deformation_um=0.0)
    assert reg.choose_scale(spacing, sim.spacing) == 3
    _, err = _register(hr, spacing, sim, transform="rigid", metric="correlation")
    assert err.mean() <= 0.25, err.mean()


def test_choose_scale_rounds_the_lateral_ratio():
    assert reg.choose_scale((0.2, 0.2), (0.65, 0.65)) == 3
    assert reg.choose_scale((0.157, 0.1015, 0.1015), (0.157, 0.203, 0.203)) == 2
    assert reg.choose_scale((0.1, 0.1), (0.1, 0.1)) == 1


def test_metric_value_improves_after_registration_and_per_stage_metrics(plane):
    hr, spacing = plane
    sim = simulate_lr(hr, spacing=spacing, factor=2, seed=3, deformation_um=0.0)
    result, _ = _register(hr, spacing, sim, transform="rigid")
    args = {"fixed_spacing": spacing, "moving_spacing": sim.spacing, "metric": "mattes",
            "fixed_mask": valid_mask(hr), "moving_mask": valid_mask(sim.lr)}
    before = reg.metric_value(hr, sim.lr, sitk.Transform(2, sitk.sitkIdentity), **args)
    after = reg.metric_value(hr, sim.lr, result.transform, **args)
    assert after < before - 0.1
    assert reg.stage_metrics("correlation") == dict.fromkeys(reg.TRANSFORMS, "correlation")
    assert reg.stage_metrics({"bspline": "mattes"})["rigid"] == "mattes"
    with pytest.raises(ValueError, match="unknown registration metric"):
        reg.stage_metrics("ssd")
    with pytest.raises(ValueError, match="unknown stages"):
        reg.stage_metrics({"elastic": "mattes"})
