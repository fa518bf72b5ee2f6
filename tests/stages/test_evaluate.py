"""Evaluate and report: baselines, several models side by side, near-duplicate pairs."""

import numpy as np
import pytest

from srbio.config import ModelConfig, PredictConfig, TrainConfig
from srbio.io.records import NO_TTA, Evaluation, RegisterFiles, Training
from srbio.stages.crop import run_crop
from srbio.stages.evaluate import baselines, run_evaluate
from srbio.stages.report import run_report
from srbio.stages.train import run_train
from tests.conftest import SPLIT


def test_scale_one_has_one_identity_baseline():
    image = np.arange(12.0).reshape(3, 4)
    assert list(baselines(image, 1)) == ["identity"]
    assert list(baselines(image, 2)) == ["nearest", "bicubic"]


@pytest.mark.slow
def test_two_models_side_by_side_and_a_duplicated_pair_is_flagged(prepared, pair2d, tmp_path):
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    cfg = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3)
    models = {"rcan": ModelConfig(preset="tiny"),
              "edsr": ModelConfig(name="edsr", params={"n_blocks": 2, "n_feats": 16})}
    # the same pair cropped twice: one sample counted twice
    run_crop(prepared / "register" / "p", pair2d["hr"], tmp_path / "crop" / "again")
    crops = [prepared / "crop" / "p", tmp_path / "crop" / "again"]
    evaluations, trainings = [], []
    for label, model in models.items():
        files = run_train(*args, tmp_path / "train" / label, model, cfg, progress=False)
        run_evaluate(files.model, crops, tmp_path / "evaluate" / label, SPLIT,
                     PredictConfig(tile_shape=(64, 64), overlap=8))
        evaluations.append(tmp_path / "evaluate" / label / "evaluation.json")
        trainings.append(files.record)
    ev = Evaluation.read(evaluations[1])
    assert [d.pairs for d in ev.near_duplicates] == [("again", "p")]
    assert ev.near_duplicates[0].correlation == pytest.approx(1.0)
    text = run_report(tmp_path / "report.md", evaluation=evaluations, training=trainings,
                      normalisation=args[1],
                      registrations=[RegisterFiles(prepared / "register" / "p").record]
                      ).read_text()
    for label in models:
        net = Evaluation.read(tmp_path / "evaluate" / label / "evaluation.json").mean["network"]
        assert f"| **{label}** | " in text and f"| {net.psnr:.2f} |" in text
        assert f"## Training: {label}" in text and f"## Held-out evaluation: {label}" in text
    assert "pairs again and p are near-duplicates" in text
    with pytest.raises(ValueError, match="whose training.json is not among --training"):
        run_report(tmp_path / "r2.md", evaluation=evaluations, training=trainings[:1],
                   normalisation=args[1], registrations=[])


@pytest.mark.slow
def test_self_ensemble_is_scored_beside_the_plain_network_with_its_cost(prepared, tmp_path):
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    files = run_train(*args, tmp_path / "train", ModelConfig(preset="tiny"),
                      TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3), progress=False)
    crops = [prepared / "crop" / "p"]
    cfg = PredictConfig(tile_shape=(64, 64), overlap=8)
    plain = run_evaluate(files.model, crops, tmp_path / "plain", SPLIT, cfg)
    tta = run_evaluate(files.model, crops, tmp_path / "tta", SPLIT,
                       cfg.model_copy(update={"tta": 8}))
    # the "no TTA" method is exactly the plain network; the ensemble is another prediction
    assert tta.mean[NO_TTA] == plain.mean["network"] and plain.no_tta_megapixels_per_second is None
    assert tta.mean["network"] != plain.mean["network"]
    assert tta.no_tta_megapixels_per_second > 0 and tta.network_megapixels_per_second > 0
    text = run_report(tmp_path / "report.md", evaluation=[tmp_path / "tta" / "evaluation.json"],
                      training=[files.record], normalisation=args[1],
                      registrations=[RegisterFiles(prepared / "register" / "p").record]
                      ).read_text()
    assert f"| {tta.no_tta_megapixels_per_second:.3g} (cpu) | — |" in text and "(TTA ×8)" in text
    fit = Training.read(files.record).best_val_psnr_fit
    assert f"after a linear fit, the best {fit:.2f} dB" in text
