"""The stages chained on real data, as the workflow runs them (a 2D plane, a tiny network)."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from srbio.config import (
    ModelConfig,
    PredictConfig,
    SplitConfig,
    TrainConfig,
)
from srbio.inference import load_model
from srbio.io import open_lazy, read_image, read_ome_zarr_attrs, write_tiff
from srbio.io.outputs import MARKER
from srbio.io.records import Prediction, RegisterFiles, Registration, Training
from srbio.stages.evaluate import run_evaluate
from srbio.stages.predict import run_predict
from srbio.stages.report import run_report
from srbio.stages.train import run_train

SPLIT = SplitConfig(axis="y", val_fraction=0.2, test_fraction=0.2)
TRAIN = TrainConfig(epochs=3, batch_size=16, learning_rate=1e-3)




def test_register_writes_exactly_the_contract_files(prepared, pair2d):
    files = RegisterFiles(prepared / "register" / "p")
    assert sorted(p.name for p in files.root.iterdir()) == sorted(
        [MARKER, *(p.name for p in files.outputs().values())])
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
    pe = ev.pairs["p"]
    region = f"| p | {' × '.join(map(str, pe.test_shape_hr))} ({pe.test_valid_pixels:,}) |"
    assert f"{region} network | {net.psnr:.2f} |" in text and "comparison_p.png" in text
    assert f"| **train** | rcan tiny ×2 | 35,433 | {net.psnr:.2f} |" in text
    # the linear fit can only help a method: it minimises the squared error. Measured: bicubic
    # 29.98 → 35.12 dB after its fit, this 3-epoch tiny network 33.60 → 33.83 dB (it learnt
    # the intensity mapping, not yet enough structure to beat a fitted bicubic)
    for m in ("nearest", "bicubic", "network"):
        assert ev.mean_fitted[m].psnr >= ev.mean[m].psnr - 1e-9
    assert ev.network_megapixels_per_second > 0 and ev.near_duplicates == []

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
@pytest.mark.parametrize("name", ["edsr", "rlfn"])
def test_other_networks_train_and_predict_through_the_same_stages(prepared, tmp_path, name,
                                                                   pair2d):
    params = {"edsr": {"n_blocks": 2, "n_feats": 16, "res_scale": 1.0},
              "rlfn": {"n_blocks": 2, "n_feats": 16, "mid_feats": 16, "esa_feats": 8}}[name]
    files = run_train(prepared / "patches.zarr", prepared / "normalisation.json",
                      tmp_path / "train", ModelConfig(name=name, params=params),
                      TrainConfig(epochs=2, batch_size=32, loss={"charbonnier": 1, "ssim": 0.2},
                                  grad_clip=1.0, warmup_epochs=1), progress=False)
    _, header = load_model(files.model)
    assert header.network.name == name and header.network.params == params
    rec = run_predict(files.model, pair2d["lr"], tmp_path / "p.ome.zarr",
                      PredictConfig(tile_shape=(48, 48), overlap=8), progress=False)
    src, _ = read_image(pair2d["lr"])
    assert rec.output_shape == [src.shape[0] * 2, src.shape[1] * 2]


@pytest.mark.slow
def test_same_seed_same_weights_early_stopping_and_the_bicubic_line(prepared, tmp_path):
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3)
    runs = [run_train(*args, tmp_path / f"r{i}", ModelConfig(preset="tiny"), cfg,
                      progress=False) for i in (1, 2)]
    a, b = (load_model(r.model)[0].state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical on CPU
    rec = Training.read(runs[0].record)
    assert 20 < rec.bicubic_val_psnr < 40 and not rec.stopped_early
    # a rate too small to change any weight: no improvement after the first epoch
    still = cfg.model_copy(update={"epochs": 6, "learning_rate": 1e-12, "patience": 2})
    stopped = Training.read(run_train(*args, tmp_path / "still", ModelConfig(preset="tiny"),
                                      still, progress=False).record)
    assert stopped.stopped_early and len(stopped.epochs) == 3


def _train_command(args, out, cfg: TrainConfig, *flags: str) -> list:
    """`srbio train` of the tiny RCAN with ``cfg``, as the workflow runs it."""
    settings = json.dumps({"model": {"preset": "tiny"}, "train": cfg.model_dump(mode="json")})
    return [sys.executable, "-m", "srbio", "train", *flags, "--patches", args[0],
            "--normalisation", args[1], "--out", out, "--settings", settings, "--quiet"]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_weights(prepared, tmp_path):
    """Kill `srbio train` after its first epoch; the same command with --resume finishes it."""
    res = prepared
    args = (res / "patches.zarr", res / "normalisation.json")
    cfg = TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3)
    full = run_train(*args, tmp_path / "full", ModelConfig(preset="tiny"), cfg, progress=False)
    cmd = _train_command(args, tmp_path / "cut", cfg)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    while not last.exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # as the OOM killer or a pre-empting scheduler would
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert 0 < killed_at < 3 * 32 and not (tmp_path / "cut" / "model.pt").exists()
    cut = run_train(*args, tmp_path / "cut", ModelConfig(preset="tiny"), cfg, resume=True,
                    progress=False)

    def state(folder):
        ckpt = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu",
                          weights_only=True)
        return ckpt["global_step"], ckpt["epoch"], ckpt["optimizer_states"][0]["state"][0]["step"]

    assert state(cut.root) == state(full.root) == (3 * 32, 2, 3 * 32)  # last.ckpt: every epoch
    a, b = load_model(full.model)[0].state_dict(), load_model(cut.model)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical on CPU
    resumed = Training.read(cut.record)
    assert resumed.resumed and [e["epoch"] for e in resumed.epochs] == [0, 1, 2]  # none lost
    assert [e["val_psnr"] for e in resumed.epochs] == [
        e["val_psnr"] for e in Training.read(full.record).epochs]
    # --resume of a finished run: nothing to do, nothing lost
    again = run_train(*args, tmp_path / "cut", ModelConfig(preset="tiny"), cfg, resume=True,
                      progress=False)
    assert [e["epoch"] for e in Training.read(again.record).epochs] == [0, 1, 2]
    c = load_model(again.model)[0].state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)


def _tiny_model(path, spacing=None):
    from srbio.io.modelfile import save_model_file
    from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, Range
    from srbio.models import build_network

    net = build_network("rcan", scale=2, preset="tiny")
    header = ModelHeader(network=NetworkSpec.from_config(net.config), spacing=spacing,
                         normalisation=Normalisation(lr=Range(vmin=0, vmax=1),
                                                     hr=Range(vmin=0, vmax=1)))
    return save_model_file(path, header, net.state_dict())


def test_an_input_at_another_pixel_size_is_resampled_onto_the_training_one(tmp_path):
    model = _tiny_model(tmp_path / "m.pt", spacing={"lr": [0.2, 0.2], "hr": [0.1, 0.1]})
    image = np.random.default_rng(0).integers(1, 900, (2, 24, 24)).astype(np.uint16)
    write_tiff(tmp_path / "in.tif", image, spacing=(0.5, 0.2, 0.2))
    cfg = PredictConfig(tile_shape=(16, 16), overlap=2)
    same = run_predict(model, tmp_path / "in.tif", tmp_path / "a.ome.zarr", cfg, progress=False)
    assert same.resampled_from is None and same.output_shape == [2, 48, 48]
    write_tiff(tmp_path / "coarse.tif", image, spacing=(0.5, 0.25, 0.25))
    rec = run_predict(model, tmp_path / "coarse.tif", tmp_path / "b.ome.zarr", cfg,
                      progress=False)
    # 24 px of 0.25 µm = 30 px of 0.2 µm: the network sees its training pixel size
    assert rec.resampled_from == [0.5, 0.25, 0.25] and rec.input_spacing == [0.5, 0.2, 0.2]
    assert rec.output_shape == [2, 60, 60] and rec.output_spacing == pytest.approx([0.5, 0.1, 0.1])
    data, spacing = open_lazy(tmp_path / "b.ome.zarr")
    assert data.shape == (2, 60, 60) and spacing == pytest.approx((0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match=r"coarse.tif: lateral pixel size \[0.25, 0.25\] µm is "
                                         r"not the \[0.2, 0.2\] µm the model was trained at"):
        run_predict(model, tmp_path / "coarse.tif", tmp_path / "c.ome.zarr",
                    cfg.model_copy(update={"resample": False}), progress=False)
    assert not (tmp_path / "c.ome.zarr").exists()


def test_predict_refuses_nan_input_and_leaves_no_output(tmp_path):
    model = _tiny_model(tmp_path / "m.pt")
    bad = np.ones((32, 32), np.float32)
    bad[3, 4] = np.nan
    write_tiff(tmp_path / "nan.tif", bad, spacing=(0.2, 0.2))
    with pytest.raises(ValueError, match="nan.tif: the input holds NaN"):
        run_predict(model, tmp_path / "nan.tif", tmp_path / "out.ome.zarr", PredictConfig(),
                    progress=False)
    assert not (tmp_path / "out.ome.zarr").exists() and not (tmp_path / "out.json").exists()


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_there_with_the_uninterrupted_batches(prepared, tmp_path):
    """Checkpoints every 10 steps: SIGKILL at step 40 (epoch 1 of 32-step epochs) loses
    nothing, and the resumed run skips exactly the batches epoch 1 had trained on."""
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    cfg = TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3, checkpoint_every_steps=10)
    full = run_train(*args, tmp_path / "full", ModelConfig(preset="tiny"), cfg, progress=False)
    cmd = _train_command(args, tmp_path / "cut", cfg)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    step = 0
    while step < 40 and proc.poll() is None:
        try:
            step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
        except Exception:  # noqa: BLE001 - not written yet, or being replaced
            time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert killed_at % 10 == 0 and 32 < killed_at < 64  # inside epoch 1, not at its end
    cut = run_train(*args, tmp_path / "cut", ModelConfig(preset="tiny"), cfg, resume=True,
                    progress=False)
    for name in ("last.ckpt", "best.ckpt"):
        a, b = (torch.load(r.root / "checkpoints" / name, map_location="cpu",
                           weights_only=True) for r in (full, cut))
        assert a["global_step"] == b["global_step"] == 3 * 32 or name == "best.ckpt"
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert [e["val_psnr"] for e in Training.read(cut.record).epochs] == [
        e["val_psnr"] for e in Training.read(full.record).epochs]


@pytest.mark.slow
def test_auto_resume_continues_the_same_run_and_restarts_a_changed_one(prepared, tmp_path,
                                                                      caplog):
    from srbio.stages.train import fingerprint

    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    cfg = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3)
    out = tmp_path / "t"
    first = run_train(*args, out, ModelConfig(preset="tiny"), cfg, progress=False,
                      auto_resume=True)
    assert not Training.read(first.record).resumed
    # a retried or requeued job: the same settings and data continue (here: nothing left)
    again = run_train(*args, out, ModelConfig(preset="tiny"), cfg, progress=False,
                      auto_resume=True)
    assert Training.read(again.record).resumed
    a, b = (load_model(r.model)[0].state_dict() for r in (first, again))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # other settings: started afresh, and the log says why
    with caplog.at_level(logging.WARNING, logger="srbio"):
        changed = run_train(*args, out, ModelConfig(preset="tiny"),
                            cfg.model_copy(update={"learning_rate": 5e-4}), progress=False,
                            auto_resume=True)
    assert "the settings or the data changed" in caplog.text
    assert not Training.read(changed.record).resumed
    # what the fingerprint sees: settings that change the result and the input files' content
    base = fingerprint(*args, ModelConfig(preset="tiny"), cfg)
    neutral = cfg.model_copy(update={"num_workers": 2, "checkpoint_every_steps": 5})
    assert fingerprint(*args, ModelConfig(preset="tiny"), neutral) == base
    assert fingerprint(*args, ModelConfig(preset="small"), cfg) != base
    norm = tmp_path / "normalisation.json"
    norm.write_text(args[1].read_text().replace('"vmax": ', '"vmax": 1'))
    same_name = tmp_path / "same" / "normalisation.json"  # only the content differs
    same_name.parent.mkdir()
    same_name.write_text(args[1].read_text())
    assert fingerprint(args[0], same_name, ModelConfig(preset="tiny"), cfg) == base
    assert fingerprint(args[0], norm, ModelConfig(preset="tiny"), cfg) != base
    # the normalisation made again to the same values, at another time by another version
    record = json.loads(args[1].read_text())
    assert "provenance" in record
    record["provenance"] = {**record["provenance"], "created": "2030-01-01T00:00:00+0000",
                            "srbio": "9.9"}
    same_name.write_text(json.dumps(record, indent=1))
    assert fingerprint(args[0], same_name, ModelConfig(preset="tiny"), cfg) == base


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_a_signal_checkpoints_the_step_and_auto_resume_finishes_the_same_run(prepared, tmp_path,
                                                                            sig):
    """A scheduler's warning (SIGUSR1) or pre-emption (SIGTERM) with no step checkpoints due:
    the step just finished is saved, the exit says so, and the retried job continues there."""
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    cfg = TrainConfig(epochs=6, batch_size=8, learning_rate=1e-3, checkpoint_every_steps=None)
    full = run_train(*args, tmp_path / "full", ModelConfig(preset="tiny"), cfg, progress=False)
    cmd = _train_command(args, tmp_path / "cut", cfg, "--auto-resume")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    while not last.exists() and proc.poll() is None:  # the end of epoch 0 (step 32)
        time.sleep(0.01)
    time.sleep(0.3)  # into epoch 1
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err[-2000:]
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert f"training checkpointed at step {step}" in err and "Traceback" not in err
    assert 32 < step < 6 * 32 and not (tmp_path / "cut" / "model.pt").exists()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "resuming from" in again.stderr
    a = load_model(full.model)[0].state_dict()
    b = load_model(tmp_path / "cut" / "model.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical on CPU


@pytest.mark.slow
def test_a_signal_to_one_ddp_process_stops_both_at_one_checkpointed_step(prepared, tmp_path):
    """SLURM signals each task of a DDP run on its own: a SIGUSR1 to the second process alone
    stops both processes at the same step, checkpointed (none waits for ever for the other),
    and --auto-resume finishes the run with the weights of an uninterrupted DDP run."""
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    cfg = TrainConfig(epochs=4, batch_size=8, learning_rate=1e-3, checkpoint_every_steps=None,
                      devices=2, strategy="ddp", accelerator="cpu")
    full = subprocess.run(_train_command(args, tmp_path / "full", cfg), capture_output=True,
                          text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]
    cmd = _train_command(args, tmp_path / "cut", cfg, "--auto-resume")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    while not last.exists() and proc.poll() is None:  # the end of epoch 0
        time.sleep(0.01)
    time.sleep(0.3)  # into epoch 1
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    ranks = [pid for pid in children if "srbio" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(ranks) == 1, children  # Lightning's launcher starts rank 1 as a new process
    os.kill(int(ranks[0]), signal.SIGUSR1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGUSR1, err[-2000:]
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert f"training checkpointed at step {step}" in err and 32 < step < 4 * 32
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "resuming from" in again.stderr, again.stderr[-2000:]
    a = load_model(tmp_path / "full" / "model.pt")[0].state_dict()
    b = load_model(tmp_path / "cut" / "model.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
