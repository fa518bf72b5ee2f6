"""CUDA: mixed-precision training and prediction agree with the CPU (skipped without a GPU).

Run on a GPU machine with ``pytest -m gpu``.
"""

import numpy as np
import pytest
import torch

from srbio.config import ModelConfig, TrainConfig
from srbio.inference import TiledPredictor, load_model
from srbio.io.records import Training
from srbio.stages.train import run_train

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "32"])
def test_training_on_the_gpu_in_each_precision(prepared, tmp_path, precision):
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3, accelerator="gpu",
                      precision=precision)
    out = run_train(prepared / "patches.zarr", prepared / "normalisation.json",
                    tmp_path / precision, ModelConfig(preset="small"), cfg, progress=False)
    record = Training.read(out.record)
    assert record.best_val_psnr > record.bicubic_val_psnr - 3  # learnt, in any precision
    net, _ = load_model(out.model)
    assert all(p.dtype == torch.float32 for p in net.parameters())  # weights saved in fp32


def test_gpu_prediction_matches_the_cpu(prepared, tmp_path, pair2d):
    cfg = TrainConfig(epochs=1, batch_size=32, accelerator="gpu")
    out = run_train(prepared / "patches.zarr", prepared / "normalisation.json", tmp_path / "t",
                    ModelConfig(preset="small"), cfg, progress=False)
    from srbio.io import read_image

    lr, _ = read_image(pair2d["lr"])
    results = {}
    for device in ("cpu", "cuda"):
        net, header = load_model(out.model, device=device)
        norm = header.normalisation
        predictor = TiledPredictor(net, scale=2, lr_range=norm.lr.pair, hr_range=norm.hr.pair,
                                   tile_shape=(64, 64), overlap=8, batch_size=4,
                                   device=torch.device(device))
        results[device] = predictor.predict_image(lr.astype(np.float32))
    span = float(np.ptp(results["cpu"]))
    assert np.abs(results["cpu"] - results["cuda"]).max() < 1e-3 * span
