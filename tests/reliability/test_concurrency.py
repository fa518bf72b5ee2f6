"""Concurrent writers (issue 22, class 1): real processes at once, never mocks.

A second run on an output that a live run is writing is refused (exit 2, naming the holder),
whatever the stage; the first run's result is complete and valid; no lock is left behind.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zarr

from srbio.io import write_tiff
from srbio.io.locks import lock_file
from srbio.io.records import prediction_record_path


def _start(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "srbio", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the first run ended before claiming: {proc.stderr.read()}")
        if time.monotonic() > end:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def volume(tmp_path_factory, sample):
    image, spacing = sample
    root = tmp_path_factory.mktemp("concurrent")
    return write_tiff(root / "lr.tif", image[:12, :160, :196],
                      spacing=(spacing[0], 2 * spacing[1], 2 * spacing[2]))


@pytest.mark.parametrize("attempt", range(3))
def test_a_second_predict_on_the_same_output_is_refused_naming_the_first(
        tmp_path, model, volume, attempt):
    out = tmp_path / "o.ome.zarr"
    common = ("predict", "--model", model, "--input", volume, "--output", out, "--quiet")
    first = _start(*common, "--tile", "48", "48")
    _wait_for(lock_file(out), first)
    second = _start(*common, "--tile", "64", "64")  # another job, to the same output
    err2 = second.communicate(timeout=120)[1]
    err1 = first.communicate(timeout=300)[1]
    assert first.returncode == 0, err1
    assert second.returncode == 2, err2
    assert f"is being written by srbio predict, process {first.pid}" in err2
    assert "Traceback" not in err2
    group = zarr.open_group(str(out), mode="r")
    assert group.attrs["srbio"]["status"] == "complete"
    assert group.attrs["srbio"]["prediction"]["tile_shape"] == [48, 48]  # the first run's
    assert json.loads(prediction_record_path(out).read_text())["tile_shape"] == [48, 48]
    assert not list(tmp_path.glob(".*.lock*"))


def test_two_parts_run_at_once_but_the_same_part_twice_is_refused(tmp_path, model, volume):
    out = tmp_path / "o.ome.zarr"
    common = ("predict", "--model", model, "--input", volume, "--output", out, "--quiet",
              "--tile", "48", "48")
    init = _start(*common, "--init")
    assert init.wait(timeout=120) == 0, init.stderr.read()
    one = _start(*common, "--part", "1/2")
    _wait_for(lock_file(out, "part-1-of-2"), one)
    two = _start(*common, "--part", "2/2")
    again = _start(*common, "--part", "1/2")
    whole = _start(*common)
    errs = {name: p.communicate(timeout=300)[1] for name, p in
            (("again", again), ("whole", whole), ("two", two), ("one", one))}
    assert one.returncode == 0 and two.returncode == 0, errs
    assert again.returncode == 2 and "srbio predict (part-1-of-2)" in errs["again"]
    assert whole.returncode == 2 and "is being written by srbio predict (part-" in errs["whole"]
    gather = _start(*common, "--gather")
    assert gather.wait(timeout=120) == 0, gather.stderr.read()
    assert zarr.open_group(str(out), mode="r").attrs["srbio"]["status"] == "complete"
    assert not list(tmp_path.glob(".*.lock*"))


def test_a_second_register_into_one_folder_is_refused(tmp_path, sample):
    image, spacing = sample
    hr = write_tiff(tmp_path / "hr.tif", image[:, :200, :200], spacing=spacing)
    lr = write_tiff(tmp_path / "lr.tif", image[:, ::2, ::2][:, :100, :100],
                    spacing=(spacing[0], 2 * spacing[1], 2 * spacing[2]))
    out = tmp_path / "reg"
    args = ("register", "--fixed", hr, "--moving", lr, "--out", out)
    first = _start(*args)
    _wait_for(lock_file(out), first)
    second = _start(*args)
    err2 = second.communicate(timeout=300)[1]
    err1 = first.communicate(timeout=600)[1]
    assert first.returncode == 0, err1
    assert second.returncode == 2 and f"srbio register, process {first.pid}" in err2, err2
    assert (out / "registration.json").exists() and not list(tmp_path.glob(".*.lock*"))
