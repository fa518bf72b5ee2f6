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


def test_enhance_stage_joins_the_dag_only_when_configured(workdir):
    r = run("-n", "patches", cwd=workdir)
    assert r.returncode == 0 and "rule enhance:" not in r.stdout
    steps = 'enhance={"steps": [{"kind": "deconvolve", "psf": "data/sample/psf.tif"}]}'
    r = run("-n", "patches", "--config", steps, cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "rule enhance:" in r.stdout and "results/enhance/lls/hr.tif" in r.stdout


@pytest.mark.slow
def test_registration_is_reused_when_only_later_stages_change(workdir, hr2d_path):
    """Run register + crop on a 2D pair for real, then change later stages: no re-registration."""
    cfg = workdir / "c.yaml"
    cfg.write_text(
        f"simulate: [{{name: p, hr: {hr2d_path}, seed: 3, deformation_um: 0.0}}]\n"
        f"pairs: [{{name: p, lr: results/simulated/p/lr.tif, hr: {hr2d_path}}}]\n"
        "register: {transform: rigid, metric: correlation}\n")
    r = run("results/crop/p/box.json", "--cores", "2", f"--configfile={cfg}", cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    assert (workdir / "results/register/p/transform.tfm").exists()
    r = run("patches", "-n", f"--configfile={cfg}", "--config", 'train={"epochs": 3}',
            'patches={"size": 16}', cwd=workdir)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "rule patches:" in r.stdout and "rule register:" not in r.stdout
    r = run("patches", "-n", f"--configfile={cfg}", "--config",
            'register={"transform": "affine", "metric": "correlation"}', cwd=workdir)
    assert "rule register:" in r.stdout  # a registration setting did change
