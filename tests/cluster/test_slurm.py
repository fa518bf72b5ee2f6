"""The workflow on a real SLURM: the one-node cluster of scripts/slurm-local.sh (root, Debian).

Every rule runs as a SLURM job through profiles/slurm-local; a training job signalled as a
scheduler does before a time limit (SIGUSR1) checkpoints, fails, is retried by Snakemake and
continues from its checkpoint with --auto-resume, ending with the weights of an uninterrupted
local run.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest
import torch

from srbio.inference import load_model
from tests.test_workflow import ROOT, job_env

pytestmark = pytest.mark.slow

SETTINGS = ('model={"name": "rcan", "preset": "tiny"}',
            'train={"epochs": 6, "batch_size": 16, "checkpoint_every_steps": null}',
            'patches={"size": 16, "n_train": 512, "n_val": 64, "min_foreground": 0.05}')


@pytest.fixture(scope="module")
def slurm():
    """A running one-node SLURM (started here when this machine allows it, else skipped)."""
    if os.geteuid() != 0 and shutil.which("sinfo") is None:
        pytest.skip("no SLURM here and not root: scripts/slurm-local.sh needs root")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "slurm-local.sh"), "start"],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.skip(f"no local SLURM: {(r.stderr or r.stdout)[-500:]}")


def _job_ids(log: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for m in re.finditer(r"slurm_logs/rule_(\w+)/\S*?(\d+)\.log", log):
        ids = found.setdefault(m[1], [])
        if int(m[2]) not in ids:  # an error report names a job's log again
            ids.append(int(m[2]))
    return found


def _state(job: int) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", str(job), "-o", "%T"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def test_the_workflow_runs_as_slurm_jobs_and_a_signalled_training_continues(slurm, workdir):
    target = ["results/train/rcan/model.pt", "--config", *SETTINGS]
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile",
                             "profiles/slurm-local", *target], cwd=workdir, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=job_env())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    signalled = False
    ckpt = workdir / "results" / "train" / "rcan" / "checkpoints" / "last.ckpt"
    start = time.time()
    while proc.poll() is None and time.time() - start < 900:
        time.sleep(0.2)
        train = _job_ids("".join(lines)).get("train_model")
        if train and not signalled and ckpt.exists():  # epoch 0 done: into epoch 1
            time.sleep(1.0)  # as SLURM does before a time limit (--signal=USR1@300)
            subprocess.run(["scancel", "--signal=USR1", "--full", str(train[0])], check=True)
            signalled = True
    assert proc.wait(timeout=60) == 0, "".join(lines)[-4000:]
    reader.join(timeout=10)
    log = "".join(lines)
    ids = _job_ids(log)
    assert {"simulate", "register", "crop", "normalise", "patches", "train_model"} <= set(ids)
    assert signalled and len(ids["train_model"]) == 2, log[-3000:]  # the retry
    first, retry = ids["train_model"]
    assert _state(first) == "FAILED" and _state(retry) == "COMPLETED"
    train_log = (workdir / "results" / "logs" / "train" / "rcan.log").read_text()
    assert "resuming from" in train_log  # the retry continued the checkpoint
    # the same command, uninterrupted and outside SLURM, gives the same weights
    command = re.findall(r"^Shell command: (OMP_NUM_THREADS=\S+ python -m srbio train .*?) >",
                         log, re.M)[-1]
    local = command.replace("--out results/train/rcan", "--out local")
    r = subprocess.run(local, shell=True, cwd=workdir, capture_output=True, text=True,
                       env=job_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    a = load_model(workdir / "local" / "model.pt")[0].state_dict()
    b = load_model(workdir / "results" / "train" / "rcan" / "model.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    print(json.dumps({"jobs": ids, "seconds": round(time.time() - start)}))
