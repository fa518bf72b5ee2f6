"""The stages chained on real data, as the workflow runs them (a 2D plane, a tiny network)."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from srbio.config import (
    ModelConfig,
    NormaliseConfig,
    PatchesConfig,
    PredictConfig,
    RegisterConfig,
    SplitConfig,
    TrainConfig,
)
from srbio.inference import load_model
from srbio.io import open_lazy, read_image, read_ome_zarr_attrs, write_tiff
from srbio.io.records import Prediction, RegisterFiles, Registration, Training
from srbio.stages.crop import run_crop
from srbio.stages.evaluate import run_evaluate
from srbio.stages.predict import run_predict
from srbio.stages.prepare import run_normalise, run_patches
from srbio.stages.register import run_register
from srbio.stages.report import run_report
from srbio.stages.train import run_train

SPLIT = SplitConfig(axis="y", val_fraction=0.2, test_fraction=0.2)
TRAIN = TrainConfig(epochs=3, batch_size=16, learning_rate=1e-3)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, pair2d):
    """Registered, cropped, normalised, patched: the inputs of training."""
    res = tmp_path_factory.mktemp("results")
    run_register(pair2d["hr"], pair2d["lr"], res / "register" / "p", RegisterConfig(),
                 truth=pair2d["truth"])
    run_crop(res / "register" / "p", pair2d["hr"], res / "crop" / "p")
    run_normalise([res / "crop" / "p"], res / "normalisation.json", NormaliseConfig(), SPLIT)
    run_patches([res / "crop" / "p"], res / "patches.zarr",
                PatchesConfig(size=16, n_train=256, n_val=32), SPLIT)
    return res


def test_register_writes_exactly_the_contract_files(prepared, pair2d):
    files = RegisterFiles(prepared / "register" / "p")
    assert sorted(p.name for p in files.root.iterdir()) == sorted(
        p.name for p in files.outputs().values())
    m = Registration.read(files.record)
    assert m.ncc_after > m.ncc_before and m.ncc_after > 0.95
    assert m.tre_mean_px < 0.35  # stated accuracy of this 2D pair (affine chain)
    t = sitk.ReadTransform(str(files.transform))
    truth = sitk.ReadTransform(str(pair2d["truth"]))
    p = (15.0, 12.0)  # HR physical point -> LR physical point, like the truth
    assert np.allclose(t.TransformPoint(p), truth.TransformPoint(p), atol=0.05)
    lr, sp = read_image(files.resampled)
    hr, hsp = read_image(pair2d["hr"])
    assert lr.shape == (hr.shape[0] // 2, hr.shape[1] // 2)
    assert sp == pytest.approx((hsp[0] * 2, hsp[1] * 2))


@pytest.mark.slow
def test_trained_network_beats_bicubic_on_the_held_out_band(prepared, pair2d):
    res = prepared
    files = run_train(res / "patches.zarr", res / "normalisation.json", res / "train",
                      ModelConfig(preset="tiny"), TRAIN, progress=False)
    _, header = load_model(files.model)
    _, lr_sp = read_image(res / "crop" / "p" / "lr.tif")
    assert header.spacing.lr == pytest.approx(list(lr_sp))  # pixel sizes wired from the pairs
    assert header.spacing.hr == pytest.approx([s / 2 for s in lr_sp])
    assert header.patch_size == 16 and header.network.scale == 2
    ev = run_evaluate(files.model, [res / "crop" / "p"], res / "evaluate", SPLIT,
                      PredictConfig(tile_shape=(64, 64), overlap=8))
    net, bicubic = ev.mean["network"], ev.mean["bicubic"]
    # measured: bicubic 30.4 dB / 0.72, network 33.5 dB / 0.84 after 3 epochs (~4 s)
    assert net.psnr > bicubic.psnr + 1.5, (net, bicubic)
    assert net.ssim > bicubic.ssim + 0.05 and net.nrmse < bicubic.nrmse
    report = run_report(res / "report.md", evaluation=res / "evaluate" / "evaluation.json",
                        training=files.record, normalisation=res / "normalisation.json",
                        registrations=[RegisterFiles(res / "register" / "p").record])
    text = report.read_text()
    assert f"| p | network | {net.psnr:.2f} |" in text and "comparison_p.png" in text

    rec = run_predict(files.model, pair2d["lr"], res / "pred.ome.zarr",
                      PredictConfig(tile_shape=(48, 48), overlap=8, chunk=64), progress=False)
    data, spacing = open_lazy(res / "pred.ome.zarr")
    src, src_sp = read_image(pair2d["lr"])
    assert data.shape == (src.shape[0] * 2, src.shape[1] * 2) and data.dtype == np.uint16
    assert spacing == pytest.approx((src_sp[0] / 2, src_sp[1] / 2)) and data.chunksize == (64, 64)
    assert Prediction.read(res / "pred.json") == rec
    assert read_ome_zarr_attrs(res / "pred.ome.zarr")["prediction"]["output_shape"] == list(
        data.shape)


@pytest.mark.slow
def test_resume_continues_at_the_global_step_of_the_interrupted_run(prepared, tmp_path):
    res = prepared
    args = (res / "patches.zarr", res / "normalisation.json")
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3)
    run_train(*args, tmp_path / "full", ModelConfig(preset="tiny"), cfg, progress=False)
    # an "interrupted" run: one epoch done, then the same command with --resume for two
    run_train(*args, tmp_path / "cut", ModelConfig(preset="tiny"),
              cfg.model_copy(update={"epochs": 1}), progress=False)
    resumed = run_train(*args, tmp_path / "cut", ModelConfig(preset="tiny"), cfg, resume=True,
                        progress=False)

    def state(folder):
        ckpt = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu",
                          weights_only=False)
        return ckpt["global_step"], ckpt["epoch"], ckpt["optimizer_states"][0]["state"][0]["step"]

    full_step, full_epoch, full_adam = state(tmp_path / "full")
    cut_step, cut_epoch, cut_adam = state(tmp_path / "cut")
    assert (cut_step, cut_epoch) == (full_step, full_epoch) and full_step == 2 * (256 // 32)
    assert float(cut_adam) == float(full_adam) == full_step  # Adam resumed, not restarted
    assert Training.read(resumed.record).resumed


def _tiny_model(path, spacing=None):
    from srbio.io.modelfile import save_model_file
    from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, Range
    from srbio.models import build_network

    net = build_network("rcan", scale=2, preset="tiny")
    header = ModelHeader(network=NetworkSpec.from_config(net.config), spacing=spacing,
                         normalisation=Normalisation(lr=Range(vmin=0, vmax=1),
                                                     hr=Range(vmin=0, vmax=1)))
    return save_model_file(path, header, net.state_dict())


def test_predict_warns_when_the_input_pixel_size_is_not_the_training_one(tmp_path, caplog):
    model = _tiny_model(tmp_path / "m.pt", spacing={"lr": [0.2, 0.2], "hr": [0.1, 0.1]})
    image = np.random.default_rng(0).integers(1, 900, (24, 24)).astype(np.uint16)
    write_tiff(tmp_path / "in.tif", image, spacing=(0.2, 0.2))
    cfg = PredictConfig(tile_shape=(16, 16), overlap=2)
    with caplog.at_level("WARNING"):
        run_predict(model, tmp_path / "in.tif", tmp_path / "a.ome.zarr", cfg, progress=False)
    assert "differs from" not in caplog.text
    write_tiff(tmp_path / "coarse.tif", image, spacing=(1.0, 1.0))
    with caplog.at_level("WARNING"):
        run_predict(model, tmp_path / "coarse.tif", tmp_path / "b.ome.zarr", cfg, progress=False)
    assert "coarse.tif: lateral pixel size [1.0, 1.0] µm differs from the [0.2, 0.2]" in caplog.text


def test_predict_refuses_nan_input_and_leaves_no_output(tmp_path):
    model = _tiny_model(tmp_path / "m.pt")
    bad = np.ones((32, 32), np.float32)
    bad[3, 4] = np.nan
    write_tiff(tmp_path / "nan.tif", bad, spacing=(0.2, 0.2))
    with pytest.raises(ValueError, match="nan.tif: the input holds NaN"):
        run_predict(model, tmp_path / "nan.tif", tmp_path / "out.ome.zarr", PredictConfig(),
                    progress=False)
    assert not (tmp_path / "out.ome.zarr").exists() and not (tmp_path / "out.json").exists()
