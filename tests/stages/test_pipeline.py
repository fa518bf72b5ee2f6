"""The stages chained on real data, as the workflow runs them (2D plane, tiny network)."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from srbio.config import (
    ModelConfig,
    NormaliseConfig,
    PatchesConfig,
    PredictConfig,
    RegisterConfig,
    SplitConfig,
    TrainConfig,
)
from srbio.io import open_lazy, read_image, read_ome_zarr_attrs
from srbio.stages.crop import run_crop
from srbio.stages.evaluate import run_evaluate, run_report
from srbio.stages.predict import run_predict
from srbio.stages.prepare import run_normalise, run_patches
from srbio.stages.register import OUTPUTS, run_register
from srbio.stages.train import run_train


@pytest.fixture(scope="module")
def registered(tmp_path_factory, pair2d):
    out = tmp_path_factory.mktemp("results")
    run_register(pair2d["hr"], pair2d["lr"], out / "register" / "p", RegisterConfig(),
                 truth=pair2d["truth"])
    return out


def test_register_writes_the_contract_files(registered, pair2d):
    d = registered / "register" / "p"
    assert sorted(p.name for p in d.iterdir()) == sorted(OUTPUTS)
    m = json.loads((d / "metrics.json").read_text())
    assert m["ncc_after"] > m["ncc_before"] and m["ncc_after"] > 0.95
    assert m["tre_mean_px"] < 0.35  # stated accuracy of this 2D pair (affine chain)
    t = sitk.ReadTransform(str(d / "transform.tfm"))
    truth = sitk.ReadTransform(str(pair2d["truth"]))
    # HR physical point -> LR physical point, like the truth
    p = (15.0, 12.0)
    assert np.allclose(t.TransformPoint(p), truth.TransformPoint(p), atol=0.05)
    lr, sp = read_image(d / "moving_resampled.tif")
    hr, hsp = read_image(pair2d["hr"])
    assert lr.shape == (hr.shape[0] // 2, hr.shape[1] // 2)
    assert sp == pytest.approx((hsp[0] * 2, hsp[1] * 2))


@pytest.mark.slow
def test_one_epoch_train_then_predict_gives_a_readable_ome_zarr(registered, pair2d):
    res = registered
    crop = run_crop(res / "register" / "p", pair2d["hr"], res / "crop" / "p")
    lr, _ = read_image(crop["lr"])
    hr, _ = read_image(crop["hr"])
    assert hr.shape == (lr.shape[0] * 2, lr.shape[1] * 2)
    split = SplitConfig(axis="y", val_fraction=0.2, test_fraction=0.2)
    norm = run_normalise([res / "crop" / "p"], res / "normalisation.json", NormaliseConfig(),
                         split)
    assert norm["lr"][0] < norm["lr"][1] and norm["hr"][0] < norm["hr"][1]
    counts = run_patches([res / "crop" / "p"], res / "patches.zarr",
                         PatchesConfig(size=16, n_train=64, n_val=16), split)
    assert counts == {"train/lr": 64, "train/hr": 64, "val/lr": 16, "val/hr": 16}
    paths = run_train(res / "patches.zarr", res / "normalisation.json", res / "train",
                      ModelConfig(preset="tiny"), TrainConfig(epochs=1, batch_size=8),
                      progress=False)
    assert paths["model"].exists() and paths["curve"].stat().st_size > 1000
    cfg = PredictConfig(tile_shape=(48, 48), overlap=8, chunk=64)
    stats = run_predict(paths["model"], pair2d["lr"], res / "pred.ome.zarr", cfg,
                        progress=False)
    data, spacing = open_lazy(res / "pred.ome.zarr")
    src, src_sp = read_image(pair2d["lr"])
    assert data.shape == (src.shape[0] * 2, src.shape[1] * 2) and data.dtype == np.uint16
    assert spacing == pytest.approx((src_sp[0] / 2, src_sp[1] / 2))
    assert data.chunksize == (64, 64)
    assert stats["megapixels_per_second"] > 0
    assert read_ome_zarr_attrs(res / "pred.ome.zarr")["prediction"]["output_shape"] == list(
        data.shape)
    ev = run_evaluate(paths["model"], [res / "crop" / "p"], res / "evaluate", split, cfg)
    assert set(ev["mean"]) == {"nearest", "bicubic", "network"}
    assert (res / "evaluate" / "comparison_p.png").exists()
    report = run_report(res / "report.md", pairs=["p"], results_dir=res,
                        predictions=[res / "pred.ome.zarr"])
    text = report.read_text()
    assert "| p | network |" in text and "pred.ome.zarr" in text


def test_predict_refuses_nan_input_and_leaves_no_output(tmp_path, registered):
    from srbio.io import write_tiff
    from srbio.models import build_model
    from srbio.models.checkpoint import save_model

    model = save_model(tmp_path / "m.pt", build_model(scale=2, preset="tiny"),
                       normalisation={"lr": [0, 1], "hr": [0, 1]}, spacing=None, provenance={})
    bad = np.ones((32, 32), np.float32)
    bad[3, 4] = np.nan
    write_tiff(tmp_path / "nan.tif", bad, spacing=(0.2, 0.2))
    with pytest.raises(ValueError, match="nan.tif: the input holds NaN"):
        run_predict(model, tmp_path / "nan.tif", tmp_path / "out.ome.zarr", PredictConfig(),
                    progress=False)
    assert not (tmp_path / "out.ome.zarr").exists()
