"""Shared by the reliability tests: the CLI run in-process, and a tiny model file."""

from pathlib import Path

import pytest

from srbio.cli import main
from srbio.io.modelfile import save_model_file
from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, PixelSizes, Range


@pytest.fixture
def srbio(capsys):
    """Run ``srbio ARGS`` in-process: (exit status, stderr)."""
    def run(*args) -> tuple[int, str]:
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err
    return run


def tiny_model(path: Path, scale: int = 2, lr_um: float | None = None) -> Path:
    """A model file of an untrained tiny RCAN (normalisation 0..1000 for both modalities).

    With ``lr_um``, its header says it was trained at LR pixels of that size (HR / scale).
    """
    from srbio.models import build_network

    net = build_network("rcan", scale=scale, preset="tiny")
    spacing = None if lr_um is None else PixelSizes(lr=[lr_um, lr_um],
                                                    hr=[lr_um / scale, lr_um / scale])
    header = ModelHeader(network=NetworkSpec.from_config(net.config), spacing=spacing,
                         normalisation=Normalisation(lr=Range(vmin=0, vmax=1000),
                                                     hr=Range(vmin=0, vmax=1000)))
    return save_model_file(path, header, net.state_dict())


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "m.pt")
