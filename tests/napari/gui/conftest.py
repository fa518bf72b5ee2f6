"""GUI tests: napari with Qt and a GL canvas (Xvfb on a headless machine), else skipped."""

import os
import shutil

import pytest

pytest.importorskip("napari", reason="the napari extra is not installed")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    pytest.skip("no display: run the GUI tests under xvfb-run (scripts/test.sh does)",
                allow_module_level=True)


@pytest.fixture
def results(prepared, tmp_path):
    """A copy of a prepared results folder with a (tiny, untrained) model in train/tiny."""
    from tests.reliability.conftest import tiny_model

    out = tmp_path / "results"
    shutil.copytree(prepared, out)
    (out / "train" / "tiny").mkdir(parents=True)
    tiny_model(out / "train" / "tiny" / "model.pt")
    return out
