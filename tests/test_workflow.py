"""The Snakemake workflow: DAG, lint, profiles, exact re-run triggers, a user's own config and
paths with spaces, quotes and semicolons (dry runs, plus one real register + crop run)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def job_env() -> dict:
    """This Python's environment first on PATH (the workflow's jobs run `python`)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run(*args, cwd):
    """`snakemake ARGS` with this Python's environment first on PATH (its jobs run `python`)."""
    return subprocess.run([sys.executable, "-m", "snakemake", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=job_env())


def jobs(result) -> dict[str, int]:
    """The job counts of a dry run ({} when nothing is to be done)."""
    assert result.returncode == 0, result.stderr + result.stdout
    table = result.stdout.split("Job stats:")[1].split("Reasons")[0] if "Job stats:" in \
        result.stdout else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m[1] not in ("total", "all", "predict")}  # target rules run nothing


def mark_done(workdir, *args):
    """Create every output of the DAG and record it as up to date (no job runs)."""
    summary = run("--summary", *args, cwd=workdir)
    assert summary.returncode == 0, summary.stderr
    for line in summary.stdout.splitlines()[1:]:
        path = workdir / line.split("\t")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    r = run("--touch", "--cores", "1", *args, cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert jobs(run("-n", *args, cwd=workdir)) == {}


def test_dry_run_shows_the_whole_dag_and_writes_nothing(workdir):
    r = run("-n", cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    assert set(jobs(r)) == {"simulate", "register", "crop", "normalise", "patches", "train_model",
                            "evaluate_model", "predict_volume", "report"}
    assert set(jobs(run("-n", "predict", cwd=workdir))) == {
        "simulate", "register", "crop", "normalise", "patches", "train_model", "predict_volume"}
    assert run("--lint", cwd=workdir).returncode == 0
    assert not (workdir / "results").exists()  # nothing is written while the workflow parses


def test_lint_is_clean(workdir):
    r = run("--lint", cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("profile", ["slurm", "slurm-cpu", "slurm-local"])
def test_slurm_profile_dry_run(workdir, profile):
    r = run("--profile", f"profiles/{profile}", "-n", "train", cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    train = r.stdout[r.stdout.index("rule train_model"):].split("\n\n")[0]
    assert ("gpu=1" in train) == (profile == "slurm")  # a GPU only where one is asked for


def test_unknown_config_key_stops_the_workflow_naming_it(workdir):
    r = run("-n", "--config", "trian={}", cwd=workdir)
    assert r.returncode != 0 and "unknown key 'trian'" in (r.stdout + r.stderr)


def test_enhance_stage_joins_the_dag_only_when_configured(workdir):
    assert "enhance" not in jobs(run("-n", "patches", cwd=workdir))
    steps = 'enhance={"steps": [{"kind": "deconvolve", "psf": "data/sample/psf.tif"}]}'
    r = run("-n", "patches", "--config", steps, cwd=workdir)
    assert jobs(r)["enhance"] == 1 and "results/enhance/lls/hr.tif" in r.stdout


def test_each_config_edit_reruns_exactly_the_jobs_that_read_it(workdir):
    mark_done(workdir)
    volumes = ('predict={"volumes": [{"name": "lls", "path": "results/simulated/lls/lr.tif"}, '
               '{"name": "big", "path": "data/sample/lls_hr.tif"}]}')
    assert jobs(run("-n", "--config", volumes, cwd=workdir)) == {"predict_volume": 1}
    assert jobs(run("-n", "--config", 'train={"epochs": 3}', cwd=workdir)) == {
        "train_model": 1, "evaluate_model": 1, "predict_volume": 1, "report": 1}
    assert jobs(run("-n", "--config", 'predict={"volumes": [{"name": "lls", "path": '
                    '"results/simulated/lls/lr.tif"}], "tile_shape": [128, 128]}',
                    cwd=workdir)) == {"evaluate_model": 1, "predict_volume": 1, "report": 1}
    assert jobs(run("-n", "--config", 'register={"transform": "rigid"}', cwd=workdir)) == {
        "register": 1, "crop": 1, "normalise": 1, "patches": 1, "train_model": 1, "evaluate_model": 1,
        "predict_volume": 1, "report": 1}


def test_predict_parts_scatter_each_volume_and_gather_it(workdir):
    """predict.parts: N > 1: an init job, N part jobs and a gather job (the record) per volume."""
    parts = ('predict={"parts": 3, "volumes": [{"name": "lls", "path": '
             '"results/simulated/lls/lr.tif"}]}')
    r = run("-n", "-p", "predict", "--config", parts, cwd=workdir)
    assert {k: v for k, v in jobs(r).items() if k.startswith("predict")} == {
        "predict_init": 1, "predict_part": 3, "predict_gather": 1}
    assert "--part 3/3" in r.stdout and "--gather" in r.stdout and "--init --overwrite" in r.stdout
    lint = run("--lint", "--config", parts, cwd=workdir)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_several_models_train_once_each_and_rerun_alone(workdir):
    """`models:`: one train and one evaluate job per label; editing one re-runs only its jobs."""
    import yaml

    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    del cfg["model"]
    cfg["models"] = [{"label": "rcan", "name": "rcan", "preset": "tiny"},
                     {"label": "edsr", "name": "edsr", "params": {"n_blocks": 2, "n_feats": 16}}]

    def write(name, **changes):
        (workdir / name).write_text(yaml.safe_dump({**cfg, **changes}))
        return ("--configfile", name)

    args = write("two.yaml")
    r = run("-n", *args, cwd=workdir)
    assert jobs(r)["train_model"] == 2 and jobs(r)["evaluate_model"] == 2
    assert "results/train/edsr/model.pt" in r.stdout and "results/train/rcan/model.pt" in r.stdout
    mark_done(workdir, *args)
    edsr = {**cfg["models"][1], "train": {"epochs": 2}}
    # edsr's own train settings: its train and evaluate, and the report; rcan predicts: untouched
    assert jobs(run("-n", *write("e.yaml", models=[cfg["models"][0], edsr]), cwd=workdir)) == {
        "train_model": 1, "evaluate_model": 1, "report": 1}
    other = write("p.yaml", predict={**cfg["predict"], "model": "edsr"})
    assert jobs(run("-n", *other, cwd=workdir)) == {"predict_volume": 1}


def test_a_users_config_stands_alone(workdir, pair2d):
    """--configfile runs what that file says: none of the demo's simulate, pairs or volumes."""
    (workdir / "my.yaml").write_text(
        f"results: out\npairs: [{{name: cell, lr: '{pair2d['lr']}', hr: '{pair2d['hr']}'}}]\n")
    r = run("-n", "--configfile", "my.yaml", cwd=workdir)
    assert jobs(r) == {"register": 1, "crop": 1, "normalise": 1, "patches": 1, "train_model": 1,
                       "evaluate_model": 1, "report": 1}
    assert "out/register/cell/registration.json" in r.stdout and "lls" not in r.stdout
    assert "--settings" in run("-n", "-p", "--configfile", "my.yaml", cwd=workdir).stdout


def test_envs_install_srbio_and_match_the_package_dependencies():
    """`--sdm conda`: the environment installs srbio itself (post-deploy) and its dependencies."""
    import tomllib

    import yaml

    env = yaml.safe_load((ROOT / "envs" / "srbio.yaml").read_text())
    conda = {re.split(r"[<>=]", d)[0].replace("-base", "").replace("pytorch", "torch")
             for d in env["dependencies"] if isinstance(d, str)}
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {re.split(r"[<>=\[]", d)[0].lower() for d in deps}
    assert needed - conda == set(), "envs/srbio.yaml lacks dependencies of pyproject.toml"
    post = (ROOT / "envs" / "srbio.post-deploy.sh").read_text()
    assert "pip install" in post and "--no-deps" in post


@pytest.mark.slow
def test_odd_paths_run_quoted_and_registration_is_reused(workdir, hr2d_path):
    """Spaces, quotes, a semicolon and non-ASCII in paths: a real register + crop run."""
    odd = workdir / "my data; touch INJECTED" / "hr 'é'.tif"
    odd.parent.mkdir()
    shutil.copy(hr2d_path, odd)
    cfg = workdir / "c.yaml"
    cfg.write_text(
        f"results: my résults\n"
        f"simulate: [{{name: p, hr: \"{odd.relative_to(workdir)}\", seed: 3, "
        f"deformation_um: 0.0}}]\n"
        f"pairs: [{{name: p, lr: my résults/simulated/p/lr.tif, "
        f"hr: \"{odd.relative_to(workdir)}\"}}]\n"
        "register: {transform: rigid, metric: correlation}\n")
    r = run("my résults/crop/p/crop.json", "--cores", "2", "--configfile", cfg, cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    assert (workdir / "my résults/register/p/transform.tfm").exists()
    assert not list(workdir.rglob("INJECTED")) and not (workdir / "my").exists()
    r = run("patches", "-n", "--configfile", cfg, "--config", 'train={"epochs": 3}',
            'patches={"size": 16}', cwd=workdir)
    assert jobs(r) == {"patches": 1}  # register, crop and normalise are reused


@pytest.mark.slow
def test_predict_in_parts_writes_the_same_pixels_as_one_job(workdir):
    """The demo, trained briefly: predict.parts: 2 (init, two parts, gather) writes level 0
    bit for bit as one job per volume does, and the record; a second run has nothing to do."""
    import numpy as np
    import yaml
    import zarr

    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["model"]["preset"] = "tiny"
    cfg["train"]["epochs"] = 1
    cfg["patches"].update(size=16, n_train=32, n_val=16)
    (workdir / "one.yaml").write_text(yaml.safe_dump(cfg))
    cfg["predict"]["parts"] = 2
    (workdir / "two.yaml").write_text(yaml.safe_dump(cfg))
    predict = workdir / "results" / "predict"

    r = run("predict", "--cores", "2", "--configfile", "one.yaml", cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    whole = zarr.open_group(predict / "lls.ome.zarr", mode="r")["0"][...]
    shutil.rmtree(predict)  # the parts recompute every block (a same-job store would be reused)

    r = run("predict", "--cores", "2", "--configfile", "two.yaml", cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    assert re.search(r"^predict_part\s+2$", r.stderr, re.M)  # the job stats of the run
    assert (predict / "lls.json").is_file()
    assert {p.name for p in (predict / ".lls.parts").iterdir()} == {
        "init.done", "1-of-2.done", "2-of-2.done"}
    parts = zarr.open_group(predict / "lls.ome.zarr", mode="r")["0"][...]
    assert parts.dtype == whole.dtype and np.array_equal(parts, whole)
    assert jobs(run("-n", "predict", "--configfile", "two.yaml", cwd=workdir)) == {}


def _start(workdir, args, log):
    """`snakemake ARGS` in a process group of its own (as a terminal starts it)."""
    return subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=job_env(),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_group_when(proc, ready, timeout=600):
    """SIGKILL the whole process group of ``proc`` once ``ready()``; the group's survivors
    (zombies, dead but not yet reaped by the container's init, are not survivors)."""
    import signal
    import time

    start = time.time()
    while not ready():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() - start < timeout
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    ps = subprocess.run(["ps", "-o", "stat=,pid=,args=", "-g", str(proc.pid)],
                        capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if not line.lstrip().startswith("Z")]


def _finished_blocks(progress):
    """Whether a prediction's progress logs (beside its store) name a finished block."""
    try:
        return any(p.is_file() and p.stat().st_size for p in progress.rglob("*"))
    except OSError:  # the folder went away: the store is complete
        return False


def _writers(workdir):
    """Processes (other than this one) whose working directory is in ``workdir``."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            here = Path(os.readlink(cwd)).is_relative_to(workdir)
        except OSError:  # gone, or a zombie
            continue
        if here and cwd.parent.name != str(os.getpid()):
            found.append(cwd.parent.name)
    return found


@pytest.mark.slow
def test_a_killed_workflow_recovers_to_the_outputs_of_an_uninterrupted_run(workdir):
    """SIGKILL of snakemake's whole process group while it trains, and again while it
    predicts: nothing of the killed run keeps running, and the documented recovery
    (`snakemake --unlock`, then the same command) continues the checkpoint and the finished
    blocks, ending with the weights and pixels of uninterrupted runs."""
    import numpy as np
    import torch
    import yaml
    import zarr

    from srbio.inference import load_model

    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["model"]["preset"] = "tiny"
    cfg["train"].update(epochs=3, checkpoint_every_steps=4)
    cfg["patches"].update(size=16, n_train=256, n_val=32)
    cfg["predict"]["tile_shape"] = [48, 48]
    (workdir / "c.yaml").write_text(yaml.safe_dump(cfg))
    command = ["predict", "--cores", "2", "--configfile", "c.yaml"]
    results = workdir / "results"
    ckpt = results / "train" / "rcan" / "checkpoints" / "last.ckpt"
    progress = results / "predict" / ".lls.ome.zarr.progress"
    with open(workdir / "run.log", "w") as log:
        left = _kill_group_when(_start(workdir, command, log), ckpt.exists)  # training: step 4+
        assert not left and not _writers(workdir), left
        assert not (results / "train" / "rcan" / "model.pt").exists()
        locked = subprocess.run([sys.executable, "-m", "snakemake", *command], cwd=workdir,
                                env=job_env(), capture_output=True, text=True)
        assert locked.returncode != 0 and "--unlock" in locked.stderr + locked.stdout
        assert run("--unlock", *command[1:], cwd=workdir).returncode == 0
        proc = _start(workdir, command, log)
        left = _kill_group_when(proc, lambda: _finished_blocks(progress))
        assert not left and not _writers(workdir), left
        assert run("--unlock", *command[1:], cwd=workdir).returncode == 0
        assert _start(workdir, command, log).wait(timeout=900) == 0
    assert "resuming from" in (results / "logs" / "train" / "rcan.log").read_text()
    assert re.search(r"resuming: [1-9]\d* of \d+ blocks already finished",
                     (results / "logs" / "predict" / "lls.log").read_text())
    # the uninterrupted runs: the same commands, outside the workflow
    dry = run("-n", "-p", "-F", *command, cwd=workdir)
    dry = dry.stdout + dry.stderr
    train = re.search(r"^Shell command: (OMP_NUM_THREADS=\S+ python -m srbio train .*?) >", dry,
                      re.M)[1]
    predict = re.search(r"^Shell command: (OMP_NUM_THREADS=\S+ python -m srbio predict .*?) >",
                        dry, re.M)[1]
    for cmd in (train.replace("--out results/train/rcan", "--out whole"),
                re.sub(r"--output \S+", "--output whole.ome.zarr", predict)):
        r = subprocess.run(cmd, shell=True, cwd=workdir, env=job_env(), capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
    a = load_model(workdir / "whole" / "model.pt")[0].state_dict()
    b = load_model(results / "train" / "rcan" / "model.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    whole = zarr.open_group(workdir / "whole.ome.zarr", mode="r")["0"][...]
    assert np.array_equal(zarr.open_group(results / "predict" / "lls.ome.zarr", mode="r")["0"][...],
                          whole)
