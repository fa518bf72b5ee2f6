"""Outputs never destroy what srbio did not write (issue 8, class 1), through the CLI.

Each case asserts the exit status, the message, what is left on disk and that every input
(and every foreign file in the way) is byte-for-byte unchanged.
"""

import hashlib
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from srbio.config import RegisterConfig
from srbio.io import write_tiff
from srbio.io.outputs import MARKER, owner
from srbio.stages.crop import run_crop
from srbio.stages.register import run_register


def digest(path: Path) -> str:
    """sha256 of a file, or of every file (names and bytes) under a folder."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()




@pytest.fixture(scope="module")
def crop(tmp_path_factory, pair2d) -> Path:
    root = tmp_path_factory.mktemp("crop")
    run_register(pair2d["hr"], pair2d["lr"], root / "register",
                 RegisterConfig(transform="rigid", metric="correlation"))
    return run_crop(root / "register", pair2d["hr"], root / "crop").root


@pytest.fixture
def small_lr(tmp_path) -> Path:
    image = np.random.default_rng(0).integers(100, 900, (40, 48)).astype(np.uint16)
    return write_tiff(tmp_path / "lr.tif", image, spacing=(0.2, 0.2))


def foreign_folder(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("my thesis")
    (path / "sub" / "data.bin").write_bytes(b"\x00\x01" * 100)
    return path


def test_predict_onto_an_unrelated_folder_is_refused_and_the_folder_kept(srbio, tmp_path, model,
                                                                          small_lr):
    target = foreign_folder(tmp_path / "mine")
    before = digest(target)
    code, err = srbio("predict", "--model", model, "--input", small_lr, "--output",
                      target, "--quiet", "--overwrite")
    assert code == 2 and "mine: exists and is not an output of srbio predict" in err
    assert "a folder of 2 entries (notes.txt, sub)" in err and digest(target) == before


def test_predict_onto_its_own_input_is_refused(srbio, tmp_path, model):
    from srbio.io import create_ome_zarr

    store = tmp_path / "in.ome.zarr"
    arr = create_ome_zarr(store, shape=(32, 32), dtype="uint16", chunks=(16, 16),
                          spacing=(0.2, 0.2))
    arr[:] = np.arange(1024, dtype=np.uint16).reshape(32, 32)
    before = digest(store)
    code, err = srbio("predict", "--model", model, "--input", store, "--output", store,
                      "--overwrite", "--quiet")
    assert code == 2 and "the output is the input" in err and digest(store) == before


def test_an_earlier_prediction_is_replaced_only_when_asked(srbio, tmp_path, model, small_lr):
    out = tmp_path / "p.ome.zarr"
    assert srbio("predict", "--model", model, "--input", small_lr, "--output", out,
                 "--quiet")[0] == 0
    assert owner(out) == "predict" and owner(tmp_path / "p.json") == "predict"
    (out / "my_annotations.csv").write_text("x,y\n1,2\n")  # the user's file inside
    before = digest(out)
    # the same job again: complete already, nothing is done
    code, err = srbio("predict", "--model", model, "--input", small_lr, "--output", out,
                      "--quiet")
    assert code == 0 and "already complete" in err and digest(out) == before
    # another job (other tiles): refused without --overwrite
    code, err = srbio("predict", "--model", model, "--input", small_lr, "--output", out,
                      "--quiet", "--tile", "24", "24")
    assert code == 2 and "holds the prediction of another job" in err
    assert "pass --overwrite to replace it" in err and digest(out) == before
    assert srbio("predict", "--model", model, "--input", small_lr, "--output", out,
                 "--quiet", "--overwrite", "--tile", "24", "24")[0] == 0
    assert not (out / "my_annotations.csv").exists()  # replaced whole, as asked


def test_normalise_onto_a_tiff_patches_onto_a_crop_crop_around_its_hr(srbio, tmp_path, crop,
                                                                       pair2d):
    tif = write_tiff(tmp_path / "image.tif", np.ones((8, 8), np.uint16), spacing=(1, 1))
    before = {p: digest(p) for p in (tif, crop, pair2d["hr"])}
    code, err = srbio("normalise", "--crops", crop, "--out", tif, "--overwrite")
    assert code == 2 and "image.tif: exists and is not an output of srbio normalise" in err
    code, err = srbio("patches", "--crops", crop, "--out", crop, "--overwrite")
    assert code == 2 and "the output is the input" in err
    code, err = srbio("crop", "--registered", crop.parent / "register", "--hr",
                      pair2d["hr"], "--out", pair2d["hr"].parent, "--overwrite")
    assert code == 2 and "the output contains the input" in err
    assert {p: digest(p) for p in before} == before


def test_train_into_a_folder_of_foreign_logs_is_refused(srbio, tmp_path):
    out = tmp_path / "run"
    for sub in ("logs", "checkpoints"):
        (out / sub).mkdir(parents=True)
        (out / sub / "keep.txt").write_text("someone else's")
    before = digest(out)
    code, err = srbio("train", "--patches", tmp_path / "p.zarr", "--normalisation",
                      tmp_path / "n.json", "--out", out, "--overwrite")
    assert code == 2 and "run: exists and is not an output of srbio train" in err
    assert digest(out) == before


def test_an_output_where_a_file_stands_in_the_way_is_named(srbio, tmp_path, pair2d):
    (tmp_path / "file").write_text("x")
    code, err = srbio("register", "--fixed", pair2d["hr"], "--moving", pair2d["lr"],
                      "--out", tmp_path / "file" / "reg")
    assert code == 2 and "file is a file, not a folder" in err


def test_outputs_of_another_stage_are_not_replaced(srbio, tmp_path, crop, pair2d):
    before = digest(crop)
    code, err = srbio("register", "--fixed", pair2d["hr"], "--moving", pair2d["lr"],
                      "--out", crop, "--overwrite")
    assert code == 2 and "(it is an srbio crop output)" in err and digest(crop) == before
    assert (crop / MARKER).exists() and owner(crop) == "crop"


def test_a_partial_output_of_a_killed_process_is_removed_by_the_next_run(srbio, tmp_path,
                                                                         model, small_lr):
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    debris = tmp_path / f".p.ome.zarr.tmp-{socket.gethostname()}-{dead}"
    debris.mkdir()
    (debris / "zarr.json").write_text("{}")
    alive = tmp_path / f".p.ome.zarr.tmp-{socket.gethostname()}-{os.getpid()}x"  # not a pid
    alive.mkdir()
    assert srbio("predict", "--model", model, "--input", small_lr, "--output",
                 tmp_path / "p.ome.zarr", "--quiet")[0] == 0
    assert not debris.exists() and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".p.")) == [alive.name]


def test_an_unwritable_output_folder_is_refused_before_any_work(srbio, tmp_path, pair2d,
                                                               monkeypatch):
    """As a user without write permission sees it (os.access says no; root would pass)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == locked
                        else real_access(path, mode))
    code, err = srbio("register", "--fixed", pair2d["hr"], "--moving", pair2d["lr"],
                      "--out", locked / "reg")
    assert code == 2 and "locked is not writable" in err
    assert "registration stage" not in err and list(locked.iterdir()) == []
