"""Training options through the train stage on real patches: EMA, fine-tuning, perceptual and
adversarial losses, logs, DDP with two CPU processes."""

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from srbio.config import ModelConfig, TrainConfig
from srbio.inference import load_model
from srbio.io.records import Training
from srbio.stages.train import run_train
from srbio.train.module import FLOOR
from tests.reliability.conftest import tiny_model
from tests.train.test_perceptual import save_small_vgg

TINY = ModelConfig(preset="tiny")


def _args(prepared):
    return prepared / "patches.zarr", prepared / "normalisation.json"


@pytest.mark.slow
def test_ema_weights_are_what_is_saved_and_logs_include_tensorboard(prepared, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3, ema=0.9)
    out = run_train(*_args(prepared), tmp_path / "ema", TINY, cfg, progress=False)
    best = torch.load(out.checkpoints / "best.ckpt", map_location="cpu", weights_only=True)
    saved = load_model(out.model)[0].state_dict()
    average = {k.removeprefix("net."): v for k, v in best["state_dict"].items()}
    raw = {k.removeprefix("net."): v for k, v in best["current_model_state"].items()}
    assert all(torch.equal(saved[k], average[k]) for k in saved)
    assert not all(torch.equal(saved[k], raw[k]) for k in saved)  # the average, not the raw
    record = Training.read(out.record)
    assert 0 <= record.data_wait_share < 1
    assert all("data_wait_share" in e for e in record.epochs)
    assert list((out.logs / "version_0").glob("events.out.tfevents.*"))  # TensorBoard


@pytest.mark.slow
def test_fine_tuning_a_pruned_model_starts_from_the_larger_one(prepared, tmp_path, caplog):
    big = ModelConfig(params={"n_groups": 2, "n_blocks": 3, "n_feats": 16, "reduction": 8})
    pruned = ModelConfig(params={"n_groups": 2, "n_blocks": 1, "n_feats": 16, "reduction": 8})
    cfg = TrainConfig(epochs=3, batch_size=32, learning_rate=1e-3)
    parent = run_train(*_args(prepared), tmp_path / "big", big, cfg, progress=False)
    one = cfg.model_copy(update={"epochs": 1})
    scratch = run_train(*_args(prepared), tmp_path / "scratch", pruned, one, progress=False)
    with caplog.at_level(logging.INFO, logger="srbio.stages.train"):
        tuned = run_train(*_args(prepared), tmp_path / "tuned", pruned,
                          one.model_copy(update={"init_from": str(parent.model)}),
                          progress=False)
    assert "copied 28 tensors, left 0 new" in caplog.text  # all of the pruned network
    psnr = {k: Training.read(r.record).epochs[0]["val_psnr"]
            for k, r in (("scratch", scratch), ("tuned", tuned))}
    assert psnr["tuned"] > psnr["scratch"] + 1, psnr  # measured: ~4 dB ahead after one epoch
    assert str(parent.model) in Training.read(tuned.record).provenance["inputs"]


@pytest.mark.slow
def test_srgan_phase_trains_a_discriminator_and_saves_only_the_generator(prepared, tmp_path):
    vgg = tmp_path / "vgg.pth"
    save_small_vgg(vgg)
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3,
                      perceptual={"weights": str(vgg), "layer": 6, "weight": 0.1},
                      adversarial={"start_epoch": 1, "discriminator_feats": 8})
    model = ModelConfig(name="srresnet", params={"n_blocks": 2, "n_feats": 16})
    out = run_train(*_args(prepared), tmp_path / "gan", model, cfg, progress=False)
    epochs = Training.read(out.record).epochs
    assert "d_loss" not in epochs[0] and epochs[1]["d_loss"] > 0  # pre-training, then GAN
    net, header = load_model(out.model)
    assert header.network.name == "srresnet"
    assert not any(k.startswith("discriminator") for k in net.state_dict())
    last = torch.load(out.checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert len(last["optimizer_states"]) == 2
    assert any(k.startswith("discriminator.") for k in last["state_dict"])
    assert not any("perceptual" in k or "_features" in k for k in last["state_dict"])


def test_missing_vgg_or_init_files_fail_before_training(prepared, tmp_path):
    for update, key in (({"init_from": str(tmp_path / "none.pt")}, "train.init_from"),
                        ({"perceptual": {"weights": str(tmp_path / "vgg.pth")}},
                         "train.perceptual.weights")):
        cfg = TrainConfig(epochs=1, **update)
        with pytest.raises(FileNotFoundError, match=f"not found|{key}"):
            run_train(*_args(prepared), tmp_path / "out", TINY, cfg, progress=False)
        assert not (tmp_path / "out" / "model.pt").exists()


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_takes_the_steps_and_weights_of_one(prepared, tmp_path):
    """batch_size is a step's batch, shared by the processes: two DDP processes take the
    steps of one process over the same batches, to the same weights up to float rounding."""
    models = {}
    for devices in (2, 1):
        settings = {"model": {"preset": "tiny"},
                    "train": {"epochs": 2, "batch_size": 16, "devices": devices,
                              "strategy": "ddp" if devices > 1 else "auto",
                              "accelerator": "cpu"}}
        out = tmp_path / f"d{devices}"
        r = subprocess.run([sys.executable, "-m", "srbio", "train", "--patches",
                            prepared / "patches.zarr", "--normalisation",
                            prepared / "normalisation.json", "--out", out,
                            "--settings", json.dumps(settings), "--quiet"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu",
                          weights_only=True)
        assert ckpt["global_step"] == 2 * 16  # 256 patches / 16 per step, 2 epochs
        assert Training.read(out / "training.json").epochs[-1]["epoch"] == 1
        models[devices] = load_model(out / "model.pt")[0].state_dict()
    diff = max(float((models[1][k] - models[2][k]).abs().max()) for k in models[1])
    assert 0 < diff < 1e-4, diff


@pytest.mark.slow
def test_loader_workers_read_the_lazy_store_and_change_nothing(prepared, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3)
    runs = [run_train(*_args(prepared), tmp_path / f"w{n}", TINY,
                      cfg.model_copy(update={"num_workers": n}), progress=False)
            for n in (0, 2)]
    a, b = (load_model(r.model)[0].state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)  # same batches, same augmentations


def test_a_warm_up_longer_than_the_step_budget_is_refused_before_training(prepared, tmp_path):
    cfg = TrainConfig(epochs=10, warmup_epochs=5, max_steps=3, batch_size=4)
    with pytest.raises(ValueError, match=r"train.warmup_epochs 5 is \d+ steps .* not fewer than "
                                         "train.max_steps 3"):
        run_train(*_args(prepared), tmp_path / "out", TINY, cfg, progress=False)
    assert not (tmp_path / "out" / "model.pt").exists()
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_init_from_a_model_of_another_scale_is_refused(prepared, tmp_path):
    cfg = TrainConfig(epochs=1, init_from=str(tiny_model(tmp_path / "x3.pt", scale=3)))
    with pytest.raises(ValueError, match=r"x3.pt: train.init_from is a scale 3 model; the "
                                         "patches are scale 2"):
        run_train(*_args(prepared), tmp_path / "out", TINY, cfg, progress=False)


def test_init_from_a_model_of_other_image_channels_is_refused(prepared, tmp_path):
    from srbio.io.modelfile import save_model_file
    from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, Range
    from srbio.models import build_network

    two = build_network("rcan", scale=2, in_channels=2, preset="tiny")  # its head fits 2 images
    unit = Range(vmin=0, vmax=1000)
    path = save_model_file(tmp_path / "two.pt", ModelHeader(
        network=NetworkSpec.from_config(two.config),
        normalisation=Normalisation(lr=unit, hr=unit)), two.state_dict())
    cfg = TrainConfig(epochs=1, init_from=str(path))
    with pytest.raises(ValueError, match=r"two.pt: train.init_from reads 2 image channels; "
                                         "the network to train reads 1"):
        run_train(*_args(prepared), tmp_path / "out", TINY, cfg, progress=False)
    assert not (tmp_path / "out" / "model.pt").exists()


def _last_rate(out) -> float:
    ckpt = torch.load(out.checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["optimizer_states"][0]["param_groups"][0]["lr"]


@pytest.mark.slow
def test_a_time_budget_stops_training_at_the_end_of_its_cosine(prepared, tmp_path):
    cfg = TrainConfig(epochs=1000, batch_size=8, learning_rate=1e-3, max_minutes=0.05)
    out = run_train(*_args(prepared), tmp_path / "budget", TINY, cfg, progress=False)
    record = Training.read(out.record)
    assert record.stopped_early and 1 <= len(record.epochs) < 1000 and record.seconds < 30
    # the cosine decayed over the 3 s, not over the 1000 epochs: the rate ends at its floor
    assert _last_rate(out) == pytest.approx(FLOOR * 1e-3)
    assert "val_psnr_fit" in record.epochs[-1]  # the stop was validated
    load_model(out.model)


@pytest.mark.slow
def test_a_step_budget_ends_mid_epoch_validated_at_the_floor_rate(prepared, tmp_path):
    cfg = TrainConfig(epochs=1000, batch_size=8, learning_rate=1e-3, max_steps=7,
                      checkpoint_every_steps=None)
    out = run_train(*_args(prepared), tmp_path / "steps", TINY, cfg, progress=False)
    record = Training.read(out.record)
    assert record.steps == 7 and len(record.epochs) == 1 and record.stopped_early
    assert record.best_val_psnr_fit == record.epochs[0]["val_psnr_fit"]
    assert _last_rate(out) == pytest.approx(FLOOR * 1e-3)
    again = run_train(*_args(prepared), tmp_path / "steps", TINY, cfg, resume=True,
                      progress=False)  # a finished budget, resumed: no step more
    assert Training.read(again.record).steps == 7
    half = run_train(*_args(prepared), tmp_path / "half", TINY,
                     cfg.model_copy(update={"max_steps": 100, "epochs": 1}), progress=False)
    # the epoch ends first (256 patches, 8 a step): the cosine follows it instead
    assert Training.read(half.record).steps == 256 // 8
    assert _last_rate(half) == pytest.approx(FLOOR * 1e-3)


@pytest.mark.slow
def test_the_kept_weights_are_those_of_the_best_fitted_validation_psnr(prepared, tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=32, learning_rate=3e-3)
    out = run_train(*_args(prepared), tmp_path / "select", TINY, cfg, progress=False)
    record = Training.read(out.record)
    fitted = [e["val_psnr_fit"] for e in record.epochs]
    best = torch.load(out.checkpoints / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["epoch"] == int(np.argmax(fitted)) and record.best_val_psnr_fit == max(fitted)
    saved = load_model(out.model)[0].state_dict()
    assert all(torch.equal(saved[k], best["state_dict"][f"net.{k}"]) for k in saved)
    assert record.bicubic_val_psnr_fit > record.bicubic_val_psnr - 3  # measured, both near 26


@pytest.mark.slow
def test_bf16_mixed_precision_trains_on_the_cpu(prepared, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3, precision="bf16-mixed")
    out = run_train(*_args(prepared), tmp_path / "bf16", TINY, cfg, progress=False)
    net, _ = load_model(out.model)
    assert all(p.dtype == torch.float32 for p in net.parameters())  # weights stay fp32
    assert Training.read(out.record).epochs[0]["val_psnr"] > 10


@pytest.mark.slow
def test_torch_compile_trains_the_same_network(prepared, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3, compile=True)
    out = run_train(*_args(prepared), tmp_path / "compiled", TINY, cfg, progress=False)
    net, header = load_model(out.model)  # plain weight names: loads into an uncompiled network
    assert header.network.name == "rcan" and Training.read(out.record).epochs[0]["val_psnr"] > 10
