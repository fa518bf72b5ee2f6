"""Training inputs checked against what made them (issue 22, class 5)."""

import json
import subprocess
import sys

from srbio.config import ModelConfig, TrainConfig
from srbio.stages.train import run_train


def test_resuming_with_another_network_is_refused_naming_it(prepared, tmp_path):
    args = (prepared / "patches.zarr", prepared / "normalisation.json")
    out = tmp_path / "t"
    run_train(*args, out, ModelConfig(preset="tiny"), TrainConfig(epochs=1, batch_size=32),
              progress=False)
    before = (out / "checkpoints" / "last.ckpt").read_bytes()
    settings = {"model": {"name": "edsr", "preset": "baseline"}, "train": {"epochs": 2}}
    r = subprocess.run([sys.executable, "-m", "srbio", "train", "--patches", str(args[0]),
                        "--normalisation", str(args[1]), "--out", str(out), "--settings",
                        json.dumps(settings), "--resume", "--quiet"], capture_output=True,
                       text=True)
    err = r.stderr
    assert r.returncode == 2, err
    assert "last.ckpt: holds the weights of another network than the configured edsr" in err
    assert "Traceback" not in err
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == before
