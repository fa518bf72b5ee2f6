from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from srbio.config import (
    NormaliseConfig,
    PatchesConfig,
    RegisterConfig,
    SimulateParams,
    SplitConfig,
)
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


# the inputs of training, shared by the stage and reliability tests
SPLIT = SplitConfig(axis="y", val_fraction=0.2, test_fraction=0.2)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, pair2d):
    """Registered, cropped, normalised, patched: the inputs of training."""
    from srbio.stages.crop import run_crop
    from srbio.stages.prepare import run_normalise, run_patches
    from srbio.stages.register import run_register

    res = tmp_path_factory.mktemp("results")
    run_register(pair2d["hr"], pair2d["lr"], res / "register" / "p", RegisterConfig(),
                 truth=pair2d["truth"])
    run_crop(res / "register" / "p", pair2d["hr"], res / "crop" / "p")
    run_normalise([res / "crop" / "p"], res / "normalisation.json", NormaliseConfig(), SPLIT)
    run_patches([res / "crop" / "p"], res / "patches.zarr",
                PatchesConfig(size=16, n_train=256, n_val=32), SPLIT)
    return res


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow files into ``dest``, so runs never touch the checkout's results/."""
    for name in ("Snakefile", "config.yaml", "rules", "envs", "profiles", "data"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


@pytest.fixture
def workdir(tmp_path):
    """A copy of the workflow files, so runs never touch the checkout's results/."""
    return copy_workflow(tmp_path)
