"""The Snakemake workflow: DAG, lint, profiles (dry runs; the real run is the README demo)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake")
pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake not installed")


def run(*args, cwd=ROOT):
    return subprocess.run([SNAKEMAKE, *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def workdir(tmp_path):
    """A copy of the workflow files, so dry runs never touch the checkout's results/."""
    for name in ("Snakefile", "config.yaml", "rules", "envs", "profiles", "data", "srbio"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def test_dry_run_shows_the_whole_dag(workdir):
    r = run("-n", cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    for rule in ("simulate", "register", "crop", "normalise", "patches", "train", "evaluate",
                 "predict_volume", "report", "all"):
        assert f"rule {rule}:" in r.stdout, rule
    r = run("-n", "predict", cwd=workdir)
    assert r.returncode == 0 and "predict_volume" in r.stdout and "report" not in r.stdout


def test_lint_is_clean(workdir):
    r = run("--lint", cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr


def test_slurm_profile_dry_run(workdir):
    r = run("--profile", "profiles/slurm", "-n", "train", cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout


def test_unknown_config_key_stops_the_workflow_naming_it(workdir):
    r = run("-n", "--config", "trian={}", cwd=workdir)
    assert r.returncode != 0 and "unknown key 'trian'" in (r.stdout + r.stderr)
