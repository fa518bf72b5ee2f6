"""The workflow on a real SLURM: the one-node cluster of scripts/slurm-local.sh (root, Debian).

Every rule runs as a SLURM job through profiles/slurm-local; a training job signalled as a
scheduler does before a time limit (SIGUSR1) checkpoints, fails, is retried by Snakemake and
continues from its checkpoint with --auto-resume, ending with the weights of an uninterrupted
local run. Then two volumes are predicted in parts, the parts submitted as SLURM array jobs;
one part's job is cancelled while it runs, and only that part runs again.
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
from srbio.io.records import Training
from tests.conftest import copy_workflow
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


def _wait_for(ready, timeout: float = 60) -> None:
    start = time.time()
    while not ready():
        assert time.time() - start < timeout
        time.sleep(0.2)


def _state(job: int | str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", str(job), "-o", "%T"],
                         capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory):
    """One copy of the workflow for this module: prediction uses the model trained first."""
    return copy_workflow(tmp_path_factory.mktemp("cluster"))


def _snakemake(cwd, *args: str) -> tuple[subprocess.Popen, list[str]]:
    """Start `snakemake --profile profiles/slurm-local ARGS`; its output collects in the list."""
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm-local",
                             *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=job_env())
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    return proc, lines


def test_the_workflow_runs_as_slurm_jobs_and_a_signalled_training_continues(slurm, cluster_dir):
    """Signalled (SIGUSR1, as before a time limit), training checkpoints and fails; Snakemake's
    retry continues the checkpoint. That job is then requeued by SLURM (`scontrol requeue`, as
    pre-emption does: SIGTERM, then the same job id runs again) and continues again."""
    workdir = cluster_dir
    target = ["results/train/rcan/model.pt", "--config", *SETTINGS]
    proc, lines = _snakemake(workdir, *target)
    signalled = requeued = False
    seen = None  # the checkpoint's time when the retry was first seen running
    ckpt = workdir / "results" / "train" / "rcan" / "checkpoints" / "last.ckpt"
    start = time.time()
    while proc.poll() is None and time.time() - start < 900:
        time.sleep(0.2)
        train = _job_ids("".join(lines)).get("train_model")
        if train and not signalled and ckpt.exists():  # epoch 0 done: into epoch 1
            time.sleep(1.0)  # as SLURM does before a time limit (--signal=USR1@300)
            subprocess.run(["scancel", "--signal=USR1", "--full", str(train[0])], check=True)
            signalled = True
        elif train and len(train) == 2 and not requeued and _state(train[1]) == "RUNNING":
            seen = seen or ckpt.stat().st_mtime
            if ckpt.stat().st_mtime > seen:  # the retry finished an epoch
                subprocess.run(["scontrol", "requeue", str(train[1])], check=True)
                # SLURM holds a requeued job for two minutes: let it start when it can
                _wait_for(lambda job=train[1]: _state(job) == "PENDING")
                subprocess.run(["scontrol", "update", f"JobId={train[1]}", "StartTime=now"],
                               check=True)
                requeued = True
    assert proc.wait(timeout=60) == 0, "".join(lines)[-4000:]
    time.sleep(0.5)  # the reader thread takes the last lines
    log = "".join(lines)
    ids = _job_ids(log)
    assert {"simulate", "register", "crop", "normalise", "patches", "train_model"} <= set(ids)
    assert signalled and len(ids["train_model"]) == 2, log[-3000:]  # the retry
    first, retry = ids["train_model"]
    assert _state(first) == "FAILED" and _state(retry) == "COMPLETED"
    assert requeued and "Restarts=1 " in subprocess.run(
        ["scontrol", "show", "job", str(retry)], capture_output=True, text=True).stdout
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


PREDICT = ('predict={"parts": 2, "tile_shape": [64, 64], "volumes": ['
           '{"name": "a", "path": "results/simulated/lls/lr.tif"}, '
           '{"name": "b", "path": "results/simulated/lls/lr.tif"}]}')


def test_parts_run_as_array_jobs_and_a_cancelled_part_alone_runs_again(slurm, cluster_dir):
    """Two volumes in two parts each: the parts go to SLURM as array jobs (one array per
    volume, or one for all); one running part is cancelled (`scancel`, as a node failure or
    an admin would) and Snakemake's retry runs that part alone. Each store equals a one-job
    prediction's."""
    import numpy as np
    import zarr

    workdir = cluster_dir
    proc, lines = _snakemake(workdir, "predict", "--slurm-array-jobs", "predict_part",
                             "--config", *SETTINGS, PREDICT)
    cancelled = None
    start = time.time()
    while proc.poll() is None and time.time() - start < 900:
        time.sleep(0.2)
        # one array per volume, or one for both when their init jobs end together
        arrays = re.findall(r"SLURM job ID (\d+)\. The individual task IDs are 1-", "".join(lines))
        # the second task: cancelling a first task before the second starts makes the plugin
        # (2.8.0) run the first task's job in the second (it takes SLURM_ARRAY_TASK_MIN for it)
        if arrays and cancelled is None and _state(f"{arrays[0]}_2") == "RUNNING":
            cancelled = f"{arrays[0]}_2"
            subprocess.run(["scancel", cancelled], check=True)
    assert proc.wait(timeout=60) == 0, "".join(lines)[-4000:]
    time.sleep(0.5)
    log = "".join(lines)
    assert cancelled and _state(cancelled) == "CANCELLED", log[-3000:]
    arrays = dict(re.findall(r"Snakemake IDs ([\d,]+) and SLURM job ID (\d+)\.", log))
    ids = {slurm: jobs.split(",") for jobs, slurm in arrays.items()}
    assert sum(map(len, ids.values())) == 4, log[-3000:]  # every part in an array
    again = re.findall(r"Job (\d+) has been submitted with SLURM jobid \d+ \(log: \S+/rule_"
                       r"predict_part/", log)
    assert again == [ids[cancelled.split("_")[0]][1]], log[-3000:]  # the cancelled part alone
    assert len(re.findall(r"^Finished jobid: \d+ \(Rule: predict_part\)", log, re.M)) == 4
    # a one-job prediction with the same settings, outside SLURM
    init = re.findall(r"^Shell command: (OMP_NUM_THREADS=\S+ python -m srbio predict --init .*?) >",
                      log, re.M)[0]
    local = re.sub(r"--output \S+", "--output one.ome.zarr", init.replace("--init ", ""))
    r = subprocess.run(local, shell=True, cwd=workdir, capture_output=True, text=True,
                       env=job_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    one = zarr.open_group(workdir / "one.ome.zarr", mode="r")["0"][...]
    for name in "ab":
        assert (workdir / "results" / "predict" / f"{name}.json").is_file()
        store = zarr.open_group(workdir / "results" / "predict" / f"{name}.ome.zarr", mode="r")
        assert np.array_equal(store["0"][...], one)
    print(json.dumps({"cancelled": cancelled, "arrays": ids, "retried": again,
                      "seconds": round(time.time() - start)}))


def test_training_runs_as_ddp_over_two_slurm_tasks(slurm, cluster_dir):
    """`tasks: 2` and `mpi: srun` for the training rule: the job starts two processes with
    srun, which train as one DDP run (devices from SLURM) sharing each step's batch, and agree
    with a one-process run of the same command (gradients of half batches, averaged, are the
    gradient of the whole batch): the same steps and losses epoch by epoch, and weights apart
    by float rounding only, which 192 steps amplify (ReLUs that switch) to about 0.1 %."""
    workdir = cluster_dir
    # without the first test's checkpoints, which --auto-resume would continue (to the end)
    shutil.rmtree(workdir / "results" / "train" / "rcan" / "checkpoints", ignore_errors=True)
    proc, lines = _snakemake(workdir, "results/train/rcan/model.pt", "--forcerun", "train_model",
                             "--set-resources", "train_model:tasks=2", "train_model:mpi=srun",
                             "train_model:cpus_per_task=1", "--set-threads", "train_model=1",
                             "--config", *SETTINGS)
    assert proc.wait(timeout=900) == 0, "".join(lines)[-4000:]
    time.sleep(0.5)
    log = "".join(lines)
    assert re.search(r"^Shell command: OMP_NUM_THREADS=1 srun --ntasks-per-node=2 ", log, re.M)
    train_log = (workdir / "results" / "logs" / "train" / "rcan.log").read_text()
    assert "Starting with 2 processes" in train_log
    one = workdir / "local" / "model.pt"  # the first test's run outside SLURM
    if not one.exists():  # the same command, one process, outside SLURM
        command = re.findall(r"^Shell command: OMP_NUM_THREADS=\S+ srun .*? (python -m srbio "
                             r"train .*?) >", log, re.M)[-1]
        r = subprocess.run(command.replace("--out results/train/rcan", "--out local"), shell=True,
                           cwd=workdir, capture_output=True, text=True, env=job_env(), timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
    runs = [one.parent, workdir / "results" / "train" / "rcan"]
    a, b = (load_model(run / "model.pt")[0].state_dict() for run in runs)
    apart = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5
    size = sum(float((a[k] ** 2).sum()) for k in a) ** 0.5
    assert 0 < apart / size < 1e-2, apart / size  # 0: not two processes; 1e-2: another training
    (t1, t2) = (Training.read(run / "training.json") for run in runs)
    assert (t1.steps, t2.processes) == (t2.steps, 2)
    for e1, e2 in zip(t1.epochs, t2.epochs, strict=True):
        assert e1["train_loss"] == pytest.approx(e2["train_loss"], rel=1e-3), (e1, e2)
    print(json.dumps({"ddp_relative_weight_difference": apart / size}))
