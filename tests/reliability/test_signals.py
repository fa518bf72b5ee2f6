"""Signals (issue 22, class 4): SIGTERM / SIGINT end a stage with a non-zero exit and one clear
line, leave nothing that looks complete, and keep what a rerun continues."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import zarr

from srbio.config import ModelConfig, TrainConfig
from srbio.io import write_tiff
from srbio.io.locks import lock_file
from srbio.io.records import prediction_record_path
from srbio.stages.train import run_train


def _interruptible() -> None:
    """SIGINT as in a terminal: a shell's background job (a CI runner's, say) inherits it
    ignored, and Python then keeps it ignored, as srbio does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _srbio(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "srbio", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=_interruptible)


def _until(check, proc, timeout=120):
    end = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _volume_and_model(tmp_path, sample):
    """A 16-plane real LR volume (64 output blocks) and a tiny model."""
    from tests.reliability.conftest import tiny_model

    image, spacing = sample
    src = write_tiff(tmp_path / "lr.tif", image[:16, :160, :196],
                     spacing=(spacing[0], 2 * spacing[1], 2 * spacing[2]))
    return src, tiny_model(tmp_path / "m.pt")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_predict_cleanly_and_the_same_command_resumes(tmp_path, sample, sig):
    src, model = _volume_and_model(tmp_path, sample)
    out = tmp_path / "o.ome.zarr"
    args = ("predict", "--model", model, "--input", src, "--output", out, "--quiet",
            "--tile", "48", "48")
    proc = _srbio(*args)
    progress = tmp_path / f".{out.name}.progress"
    _until(lambda: any(p.stat().st_size for p in progress.rglob("*.log")), proc)
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + sig, err
    assert f"srbio predict: stopped by {signal.Signals(sig).name}" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert zarr.open_group(str(out), mode="r").attrs["srbio"]["status"] == "incomplete"
    assert not prediction_record_path(out).exists() and not lock_file(out).exists()
    again = _srbio(*args)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    rec = json.loads(prediction_record_path(out).read_text())
    assert 0 < rec["blocks_computed"] < rec["blocks"]  # finished blocks were kept


def test_sigterm_stops_training_without_a_model_keeping_its_checkpoints(prepared, tmp_path):
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    cfg = TrainConfig(epochs=40, batch_size=8, learning_rate=1e-3)
    out = tmp_path / "t"
    run_train(*args, out, ModelConfig(preset="tiny"), cfg.model_copy(update={"epochs": 1}),
              progress=False)  # an earlier, complete run that --overwrite replaces
    settings = json.dumps({"model": {"preset": "tiny"}, "train": cfg.model_dump(mode="json")})
    proc = _srbio("train", "--patches", args[0], "--normalisation", args[1], "--out", out,
                  "--settings", settings, "--quiet", "--overwrite")
    last = out / "checkpoints" / "last.ckpt"
    _until(lambda: last.exists() and not (out / "model.pt").exists(), proc)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "srbio train: stopped by SIGTERM" in err and "--resume" in err
    assert "Traceback" not in err
    # nothing that looks complete: neither this run's model nor the replaced run's
    assert not (out / "model.pt").exists() and not (out / "training.json").exists()
    assert last.exists() and not lock_file(out).exists()
    epoch = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    assert epoch < 39


def test_a_killed_worker_ends_predict_with_a_message_and_keeps_finished_blocks(tmp_path, sample):
    src, model = _volume_and_model(tmp_path, sample)
    out = tmp_path / "o.ome.zarr"
    args = ("predict", "--model", model, "--input", src, "--output", out, "--quiet",
            "--tile", "48", "48", "--workers", "2")
    proc = _srbio(*args)
    progress = tmp_path / f".{out.name}.progress"
    _until(lambda: any(p.stat().st_size for p in progress.rglob("*.log")), proc)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"],
                             capture_output=True, text=True).stdout.split()
    assert workers
    os.kill(int(workers[0]), signal.SIGKILL)  # as the out-of-memory killer would
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 2, err
    assert "a prediction worker process died" in err and "Traceback" not in err
    again = _srbio(*args)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    rec = json.loads(prediction_record_path(out).read_text())
    assert 0 < rec["blocks_computed"] < rec["blocks"]  # finished blocks were kept
