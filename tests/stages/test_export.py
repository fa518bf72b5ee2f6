"""Export to TorchScript and ONNX: the files reproduce the PyTorch network on real data."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from srbio.inference import load_model
from srbio.inference.export import run_exported
from srbio.io.modelfile import save_model_file
from srbio.io.records import Export, ModelHeader, NetworkSpec, Normalisation, Range
from srbio.models import build_network
from srbio.stages.export import run_export
from tests.models.test_networks import SMALL


def _model(path, name):
    torch.manual_seed(0)
    net = build_network(name, scale=2, params=SMALL[name])
    with torch.no_grad():  # not the zero-initialised state of a fresh network
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    header = ModelHeader(network=NetworkSpec.from_config(net.config),
                         normalisation=Normalisation(lr=Range(vmin=98, vmax=1200),
                                                     hr=Range(vmin=98, vmax=1500)))
    return save_model_file(path, header, net.state_dict())


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n == "rcan" else pytest.mark.slow)
                                  for n in sorted(SMALL)])
def test_exports_reproduce_the_network_on_a_real_plane(tmp_path, name, sample):
    model = _model(tmp_path / "m.pt", name)
    out = run_export(model, tmp_path / "export")
    record = Export.read(out.record)
    assert set(record.formats) == {"torchscript", "onnx"}
    assert record.header.normalisation.lr.vmin == 98 and record.header.network.name == name
    image, _ = sample
    norm = record.header.normalisation.lr
    planes = slice(18, 21) if name == "rcan3d" else 20  # a volume of 3 planes for 3D
    lr = (image[planes, 100:161, 80:157].astype(np.float32) - norm.vmin) / (norm.vmax - norm.vmin)
    x = torch.from_numpy(lr)[None, None]
    net, _ = load_model(model)
    with torch.no_grad():
        reference = net(x).numpy()
    for fmt, exported in record.formats.items():
        assert exported.max_abs_diff <= 1e-4
        got = run_exported(out.root / exported.file, fmt, x)
        assert got.shape == (*x.shape[:-2], 122, 154)
        assert np.abs(got - reference).max() < 1e-4, fmt


def test_srbio_export_cli_and_its_errors(tmp_path):
    model = _model(tmp_path / "m.pt", "rcan")
    r = subprocess.run([sys.executable, "-m", "srbio", "export", "--model", model, "--out",
                        tmp_path / "ts", "--format", "torchscript"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == [
        ".srbio-output.json", "export.json", "model.torchscript.pt"]
    assert json.loads((tmp_path / "ts" / "export.json").read_text())["record"] == "srbio.export/1"
    r = subprocess.run([sys.executable, "-m", "srbio", "export", "--model", tmp_path / "no.pt",
                        "--out", tmp_path / "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "no.pt: model file not found" in r.stderr
    assert not (tmp_path / "x").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    r = subprocess.run([sys.executable, "-m", "srbio", "export", "--model", model, "--out",
                        tmp_path / "mine", "--overwrite"], capture_output=True, text=True)
    assert r.returncode == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep"
