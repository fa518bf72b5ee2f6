"""Register QC (pass / stop / skip), valid-FOV crop, and the enhance stage on real data."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from srbio.config import (
    Background,
    Deconvolve,
    Denoise,
    EnhanceConfig,
    QCConfig,
    RegisterConfig,
)
from srbio.core.simulate import simulate_lr
from srbio.core.transforms import bspline_displacement_um
from srbio.io import read_image, read_mask, write_tiff
from srbio.io.records import Crop, CropFiles, Enhancement, RegisterFiles, Registration
from srbio.stages.common import load_pairs
from srbio.stages.crop import run_crop
from srbio.stages.enhance import run_enhance
from srbio.stages.register import run_register

RIGID = {"transform": "rigid", "metric": "correlation"}


@pytest.fixture(scope="module")
def good(tmp_path_factory, pair2d):
    """A pair that passes QC, registered and cropped."""
    out = tmp_path_factory.mktemp("good")
    run_register(pair2d["hr"], pair2d["lr"], out / "register", RegisterConfig(**RIGID))
    run_crop(out / "register", pair2d["hr"], out / "crop")
    return out


def test_passing_pair_reports_both_metrics_and_its_verdict(good):
    m = Registration.read(RegisterFiles(good / "register").record)
    assert m.qc.passed and m.qc.failures == []
    assert m.mattes_after < m.mattes_before - 0.1  # lower is better
    assert m.ncc_after > 0.95 > m.ncc_before
    assert m.iterations > 0 and m.stages[0]["transform"] == "init-phase"


def test_crop_keeps_the_whole_valid_field_of_view_with_its_mask(good):
    box = Crop.read(CropFiles(good / "crop").record)
    assert box.valid_fraction_kept == 1.0 and box.qc.passed
    mask = read_mask(good / "crop" / "mask.tif")
    full = read_mask(good / "register" / "mask.tif")
    assert mask.sum() == full.sum()
    lr, _ = read_image(good / "crop" / "lr.tif")
    hr, _ = read_image(good / "crop" / "hr.tif")
    assert mask.shape == lr.shape and hr.shape == (lr.shape[0] * 2, lr.shape[1] * 2)
    assert [c.name for c in load_pairs([good / "crop"])] == ["crop"]


def test_failing_pair_stops_with_its_reasons_and_leaves_no_outputs_not_even_old_ones(tmp_path, pair2d):
    cfg = RegisterConfig(**RIGID, qc=QCConfig(min_ncc=0.999), on_failure="stop")
    out = tmp_path / "reg"
    run_register(pair2d["hr"], pair2d["lr"], out, RegisterConfig(**RIGID))  # an earlier success
    assert RegisterFiles(out).transform.exists()
    with pytest.raises(ValueError, match=r"failed QC: NCC after 0\.9\d+ < qc.min_ncc 0.999"):
        run_register(pair2d["hr"], pair2d["lr"], out, cfg, overwrite=True)
    files = RegisterFiles(out)
    assert not any(p.exists() for p in files.outputs().values())
    assert files.failed_qc.stat().st_size > 0
    assert Registration.read(files.failed_record).qc.passed is False


def test_skipped_pair_is_written_flagged_and_left_out_of_training(tmp_path, pair2d, good):
    cfg = RegisterConfig(**RIGID, qc=QCConfig(min_valid_fraction=0.99), on_failure="skip")
    run_register(pair2d["hr"], pair2d["lr"], tmp_path / "register", cfg)
    m = Registration.read(RegisterFiles(tmp_path / "register").record)
    assert m.qc.passed is False and "valid fraction" in m.qc.failures[0]
    run_crop(tmp_path / "register", pair2d["hr"], tmp_path / "bad")
    assert Crop.read(CropFiles(tmp_path / "bad").record).qc.passed is False
    assert [c.name for c in load_pairs([good / "crop", tmp_path / "bad"])] == ["crop"]
    with pytest.raises(ValueError, match="every pair failed registration QC"):
        load_pairs([tmp_path / "bad"])


def test_scale_auto_resamples_a_non_integer_ratio_onto_hr_times_scale(tmp_path, hr2d_path,
                                                                      caplog):
    hr, spacing = read_image(hr2d_path)
    sim = simulate_lr(hr, spacing=spacing, factor=3.25, seed=2, affine_strength=0.0,
                      deformation_um=0.0)
    write_tiff(tmp_path / "lr.tif", sim.lr, spacing=sim.spacing)
    sitk.WriteTransform(sim.transform, str(tmp_path / "truth.tfm"))
    run_register(hr2d_path, tmp_path / "lr.tif", tmp_path / "reg",
                 RegisterConfig(**RIGID, scale="auto"), truth=tmp_path / "truth.tfm")
    m = Registration.read(RegisterFiles(tmp_path / "reg").record)
    assert m.scale == 3 and m.pixel_size_ratio == pytest.approx(3.25)
    assert any(r.levelname == "WARNING" and "ratio LR/HR is 3.250, scale is 3" in r.getMessage()
               for r in caplog.records)  # said out loud, not at INFO
    assert m.grid_spacing == pytest.approx([s * 3 for s in spacing])
    assert m.tre_mean_px < 0.3
    _, sp = read_image(tmp_path / "reg" / "moving_resampled.tif")
    assert sp == pytest.approx(tuple(s * 3 for s in spacing))


def test_bspline_displacement_magnitude_is_measured():
    grid = sitk.Image([20, 20], sitk.sitkFloat32)
    bsp = sitk.BSplineTransformInitializer(grid, [2, 2], order=3)
    params = np.zeros(len(bsp.GetParameters()))
    params[: len(params) // 2] = 0.5  # every control point moves 0.5 µm along x
    bsp.SetParameters(tuple(params))
    comp = sitk.CompositeTransform([sitk.Euler2DTransform(), bsp])
    disp = bspline_displacement_um(comp, (10, 10), (2.0, 2.0), (0.0, 0.0))
    np.testing.assert_allclose(disp, 0.5, atol=1e-6)
    assert bspline_displacement_um(sitk.Euler2DTransform(), (10, 10), (2.0, 2.0), (0.0, 0.0)) is None


@pytest.fixture(scope="module")
def crop3d(tmp_path_factory, sample):
    """A crop folder holding a real 3D block (HR) and its 2x LR, all valid."""
    image, spacing = sample
    d = tmp_path_factory.mktemp("crop3d")
    hr = image[10:30, 100:196, 160:256]
    write_tiff(d / "hr.tif", hr, spacing=spacing)
    lr = hr.reshape(20, 48, 2, 48, 2).mean((2, 4)).astype(np.float32)
    write_tiff(d / "lr.tif", lr, spacing=(spacing[0], spacing[1] * 2, spacing[2] * 2))
    write_tiff(d / "mask.tif", np.ones(lr.shape, np.uint8), spacing=(1, 1, 1))
    Crop(registration="none", lr_box=[(0, 20), (0, 48), (0, 48)],
         hr_box=[(0, 20), (0, 96), (0, 96)], scale=2, box_mode="valid_bbox",
         lr_spacing=[spacing[0], spacing[1] * 2, spacing[2] * 2], hr_spacing=list(spacing),
         hr_origin_um=[0, 0, 0], valid_fraction_in_box=1.0, valid_fraction_kept=1.0,
         qc={"passed": True}).write(CropFiles(d).record)
    return d


def test_enhance_records_every_step_and_copies_the_lr_untouched(tmp_path, crop3d):
    cfg = EnhanceConfig(steps=[
        Deconvolve(kind="deconvolve", psf="data/sample/psf.tif", iterations=5),
        Denoise(kind="denoise"),
        Background(kind="background", method="gaussian", radius_um=3.0)])
    root = Path(__file__).resolve().parents[2]
    paths = run_enhance(crop3d, tmp_path / "enh", cfg, base=root)
    prov = Enhancement.read(paths.provenance)
    assert [s["kind"] for s in prov.steps] == ["deconvolve", "denoise", "background"]
    assert prov.steps[0]["psf"].endswith("psf.tif") and prov.steps[0]["iterations"] == 5
    assert "clipped_negative_fraction" in prov.steps[2]
    assert prov.output_gain == 1.0
    hr, sp = read_image(paths.hr)
    before, sp0 = read_image(crop3d / "hr.tif")
    assert hr.dtype == np.float32 and hr.shape == before.shape and sp == sp0
    assert not np.allclose(hr, before)
    assert paths.lr.read_bytes() == (crop3d / "lr.tif").read_bytes()
    assert Crop.read(paths.record).enhancement.steps[0]["kind"] == "deconvolve"
    assert load_pairs([tmp_path / "enh"])[0].hr.dtype == np.float32


def test_enhance_rescales_instead_of_clipping_above_16_bit(tmp_path, crop3d):
    d = tmp_path / "bright"
    d.mkdir()
    for name in ("lr.tif", "mask.tif", "crop.json"):
        (d / name).write_bytes((crop3d / name).read_bytes())
    hr, sp = read_image(crop3d / "hr.tif")
    bright = (hr.astype(np.float32) / hr.max() * 65000).astype(np.uint16)
    write_tiff(d / "hr.tif", bright, spacing=sp)
    cfg = EnhanceConfig(steps=[Deconvolve(kind="deconvolve", na=1.1, wavelength_nm=510,
                                          iterations=20)])
    paths = run_enhance(d, tmp_path / "out", cfg)
    prov = Enhancement.read(paths.provenance)
    assert prov.steps[0]["range_after"][1] > 65535  # deconvolution sharpened the peaks
    assert 0 < prov.output_gain < 1
    out, _ = read_image(paths.hr)
    assert out.max() == pytest.approx(65535, rel=1e-4)


def test_enhance_with_a_bad_psf_file_names_it(tmp_path, crop3d):
    bad = tmp_path / "psf.tif"
    bad.write_bytes(b"not a tiff")
    cfg = EnhanceConfig(steps=[Deconvolve(kind="deconvolve", psf=str(bad))])
    with pytest.raises(ValueError, match="psf.tif"):
        run_enhance(crop3d, tmp_path / "out", cfg)
    assert not (tmp_path / "out" / "hr.tif").exists()
