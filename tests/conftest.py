from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from srbio.config import SimulateParams
from srbio.io import read_image, write_tiff

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "lls_hr.tif"


@pytest.fixture(scope="session")
def sample() -> tuple[np.ndarray, tuple[float, ...]]:
    """The bundled real lattice light-sheet volume (40 x 320 x 392, fill value 98)."""
    return read_image(SAMPLE)


@pytest.fixture(scope="session")
def hr2d_path(tmp_path_factory, sample) -> Path:
    """One real plane of the sample as a 2D HR TIFF with its pixel size."""
    image, spacing = sample
    path = tmp_path_factory.mktemp("hr2d") / "hr.tif"
    write_tiff(path, image[20], spacing=spacing[1:])
    return path


@pytest.fixture(scope="session")
def pair2d(tmp_path_factory, hr2d_path) -> dict[str, Path]:
    """A simulated 2D LR/HR pair (no deformation) with its ground-truth transform."""
    from srbio.stages.simulate import run_simulate

    out = tmp_path_factory.mktemp("sim2d")
    paths = run_simulate(hr2d_path, out, SimulateParams(seed=3, deformation_um=0.0))
    return {"hr": hr2d_path, "lr": paths.lr, "truth": paths.truth, "record": paths.record}
