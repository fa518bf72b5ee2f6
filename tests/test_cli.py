"""The command-line contract other tools rely on, run as a user would."""

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from srbio.io import write_tiff
from srbio.io.records import RegisterFiles, Registration

ROOT = Path(__file__).resolve().parents[1]


def srbio(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "srbio", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_register_cli_contract(tmp_path, pair2d):
    before = {k: _digest(pair2d[k]) for k in ("hr", "lr")}
    out = tmp_path / "reg"
    r = srbio("register", "--fixed", pair2d["hr"], "--moving", pair2d["lr"], "--out", out,
              "--transform", "rigid", "--scale", "2")
    assert r.returncode == 0, r.stderr
    for path in RegisterFiles(out).outputs().values():
        assert path.stat().st_size > 0
    t = sitk.ReadTransform(str(out / "transform.tfm"))
    truth = sitk.ReadTransform(str(pair2d["truth"]))
    pts = [(10.0, 10.0), (20.0, 25.0), (25.0, 15.0)]
    err = [np.hypot(*np.subtract(t.TransformPoint(p), truth.TransformPoint(p))) for p in pts]
    assert max(err) < 0.1  # µm: the rigid fit of a rigidly-misaligned pair
    assert Registration.read(RegisterFiles(out).record).transform == "rigid"
    assert {k: _digest(pair2d[k]) for k in ("hr", "lr")} == before  # inputs untouched


def test_bad_input_exits_nonzero_naming_the_file_and_writes_nothing(tmp_path, pair2d):
    flat = tmp_path / "flat.tif"
    write_tiff(flat, np.full((64, 64), 5, np.uint16), spacing=(0.2, 0.2))
    out = tmp_path / "reg"
    r = srbio("register", "--fixed", pair2d["hr"], "--moving", flat, "--out", out)
    assert r.returncode == 2
    assert "flat.tif" in r.stderr and "constant" in r.stderr
    assert not out.exists() or not any(out.iterdir())

    vol = tmp_path / "vol.tif"
    write_tiff(vol, np.random.default_rng(0).integers(1, 999, (3, 64, 64)).astype(np.uint16),
               spacing=(0.3, 0.2, 0.2))
    r = srbio("register", "--fixed", pair2d["hr"], "--moving", vol, "--out", out)
    assert r.returncode == 2 and "3D but" in r.stderr and "same dimensionality" in r.stderr


def test_config_errors_exit_2_and_name_the_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pairs: [{name: a, lr: x.tif, hr: y.tif}]\nregistr: {}\n")
    r = srbio("validate", cfg)
    assert r.returncode == 2 and "unknown key 'registr'" in r.stderr
    r = srbio("schema")
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "Config"


def test_a_budget_on_the_command_line_replaces_the_configs():
    from srbio.cli import UNBOUNDED_EPOCHS, _budget
    from srbio.config import load_config

    train = load_config(ROOT / "config.yaml").train
    assert train.max_steps == 550 and train.max_minutes is None  # the demo's step budget
    ten = _budget(train, epochs=None, max_steps=None, max_minutes=10)
    assert (ten.max_minutes, ten.max_steps, ten.epochs) == (10, None, UNBOUNDED_EPOCHS)
    both = _budget(train, epochs=8, max_steps=300, max_minutes=10)
    assert (both.max_minutes, both.max_steps, both.epochs) == (10, 300, 8)
    stepped = train.model_copy(update={"schedule": "multistep"})  # its milestones count epochs
    assert _budget(stepped, epochs=None, max_steps=None, max_minutes=10).epochs == train.epochs
    epochs = _budget(train, epochs=3, max_steps=None, max_minutes=None)
    assert (epochs.epochs, epochs.max_steps, epochs.max_minutes) == (3, None, None)
    assert _budget(train, epochs=None, max_steps=None, max_minutes=None) == train
    assert train.max_steps == 550  # the config's section is not changed


def test_command_line_overrides_are_validated_like_the_config(tmp_path):
    r = srbio("train", "--patches", tmp_path / "p.zarr", "--normalisation", tmp_path / "n.json",
              "--out", tmp_path / "t", "--epochs", "0")
    assert r.returncode == 2
    assert "command-line options" in r.stderr and "epochs" in r.stderr and "(got 0)" in r.stderr
    assert not (tmp_path / "t").exists()
    r = srbio("train", "--patches", tmp_path / "p.zarr", "--normalisation", tmp_path / "n.json",
              "--out", tmp_path / "t", "--max-minutes", "-1")
    assert r.returncode == 2 and "max_minutes" in r.stderr and "(got -1.0)" in r.stderr
    assert not (tmp_path / "t").exists()


def test_train_checks_its_inputs_before_importing_torch(tmp_path):
    """A wrong input fails in about a second, not after torch and Lightning load."""
    code = ("import sys; from srbio.cli import main; rc = main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "train", "--patches", tmp_path / "p.zarr",
                        "--normalisation", tmp_path / "n.json", "--out", tmp_path / "t"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "p.json: file not found" in r.stderr
    assert r.stdout.strip() == "False"


def test_settings_json_is_a_stage_config_and_is_validated(tmp_path, pair2d):
    bad = '{"register": {"transform": "elastic"}}'
    r = srbio("register", "--fixed", pair2d["hr"], "--moving", pair2d["lr"], "--out",
              tmp_path / "r", "--settings", bad)
    assert r.returncode == 2 and "--settings (register)" in r.stderr and "elastic" in r.stderr
    r = srbio("register", "--fixed", pair2d["hr"], "--moving", pair2d["lr"], "--out",
              tmp_path / "r", "--settings", '{"train": {}}')
    assert r.returncode == 2 and "sections among ['register']" in r.stderr


def test_verbose_flag_works_before_and_after_the_stage(tmp_path):
    for args in (["-v", "validate", "config.yaml"], ["validate", "config.yaml", "-v"]):
        code = ("import logging, sys; from srbio.cli import main; main(sys.argv[1:]); "
                "print(logging.getLogger().level)")
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           cwd=ROOT)
        assert r.stdout.strip().endswith(str(logging.DEBUG)), (args, r.stdout, r.stderr)


def test_register_bad_inputs_table(tmp_path, pair2d):
    """Each bad input: exit 2, a message naming the file and the problem, no outputs."""
    import tifffile

    good = np.random.default_rng(0).integers(100, 900, (64, 64)).astype(np.uint16)
    nan = good.astype(np.float32)
    nan[5, 5] = np.nan
    write_tiff(tmp_path / "nan.tif", nan, spacing=(0.2, 0.2))
    tifffile.imwrite(tmp_path / "nosize.tif", good)  # no pixel size anywhere
    empty = np.zeros((64, 64), np.uint16)
    empty[30:32, 30:32] = 500  # a speck in a sea of fill
    write_tiff(tmp_path / "empty.tif", empty, spacing=(0.2, 0.2))
    cases = [
        (pair2d["hr"], tmp_path / "nan.tif", "NaN"),
        (pair2d["hr"], tmp_path / "nosize.tif", "pixel size"),
        (pair2d["hr"], tmp_path / "empty.tif", "is the image empty"),
        (pair2d["lr"], pair2d["hr"], "finer than the HR"),  # LR and HR swapped
    ]
    for i, (fixed, moving, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        r = srbio("register", "--fixed", fixed, "--moving", moving, "--out", out)
        assert r.returncode == 2, (message, r.stderr)
        assert message in r.stderr and str(moving.name) in r.stderr, r.stderr
        assert not out.exists() or not any(out.iterdir())


def test_enhance_cli_needs_steps_and_names_the_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pairs: [{name: a, lr: x.tif, hr: y.tif}]\n")
    r = srbio("enhance", "--crop", tmp_path, "--out", tmp_path / "out", "--config", cfg)
    assert r.returncode == 2 and "c.yaml" in r.stderr and "enhance.steps is empty" in r.stderr
    cfg.write_text("pairs: [{name: a, lr: x.tif, hr: y.tif}]\n"
                   "enhance: {steps: [{kind: deconvolve, iterations: 5}]}\n")
    r = srbio("enhance", "--crop", tmp_path, "--out", tmp_path / "out", "--config", cfg)
    assert r.returncode == 2 and "needs a psf file, or both na and wavelength_nm" in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_truth_file_is_named_before_any_registration(tmp_path, pair2d):
    r = srbio("register", "--fixed", pair2d["hr"], "--moving", pair2d["lr"], "--out",
              tmp_path / "r", "--truth", tmp_path / "nothere.tfm")
    assert r.returncode == 2 and "nothere.tfm: ground-truth transform not found" in r.stderr
    assert "registration stage" not in r.stderr  # refused before registering


def test_validate_checks_the_config_against_its_files(tmp_path, pair2d):
    pairs = [{"name": "p", "lr": str(pair2d["lr"]), "hr": str(pair2d["hr"])}]
    ok = tmp_path / "ok.yaml"
    ok.write_text(json.dumps({"pairs": pairs, "patches": {"size": 16}}))
    r = srbio("validate", ok)
    assert r.returncode == 0 and "valid (1 pairs" in r.stdout, r.stderr
    big = tmp_path / "big.yaml"
    big.write_text(json.dumps({"pairs": pairs, "patches": {"size": 120},
                               "split": {"val_fraction": 0.2, "test_fraction": 0.2}}))
    r = srbio("validate", big)
    assert r.returncode == 2 and "big.yaml: does not fit its input files" in r.stderr
    assert "pair 'p'" in r.stderr and "its val band is at most" in r.stderr
    assert "smaller than patches.size 120" in r.stderr and "Traceback" not in r.stderr
