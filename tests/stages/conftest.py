"""Fixtures of the stage tests: a real 2D pair registered, cropped, normalised and patched."""

import pytest

from srbio.config import NormaliseConfig, PatchesConfig, RegisterConfig, SplitConfig
from srbio.stages.crop import run_crop
from srbio.stages.prepare import run_normalise, run_patches
from srbio.stages.register import run_register

SPLIT = SplitConfig(axis="y", val_fraction=0.2, test_fraction=0.2)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, pair2d):
    """Registered, cropped, normalised, patched: the inputs of training."""
    res = tmp_path_factory.mktemp("results")
    run_register(pair2d["hr"], pair2d["lr"], res / "register" / "p", RegisterConfig(),
                 truth=pair2d["truth"])
    run_crop(res / "register" / "p", pair2d["hr"], res / "crop" / "p")
    run_normalise([res / "crop" / "p"], res / "normalisation.json", NormaliseConfig(), SPLIT)
    run_patches([res / "crop" / "p"], res / "patches.zarr",
                PatchesConfig(size=16, n_train=256, n_val=32), SPLIT)
    return res
