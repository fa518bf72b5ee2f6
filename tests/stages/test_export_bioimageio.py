"""``srbio export --format bioimageio``: a valid bioimage.io package that predicts as srbio does.

The packages are made from small random-weight networks and tested on real data (the
bundled lattice light-sheet sample, or the training patches made from it). Nothing here may
reach the network: a guard fails every test that tries, and bioimageio's cache is a temporary
folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from srbio.cli import main
from srbio.config import ExportConfig
from srbio.inference import load_model
from srbio.io.modelfile import save_model_file
from srbio.io.records import Export, ModelHeader, NetworkSpec, Normalisation, PixelSizes, Range
from srbio.models import build_network
from srbio.stages.export import run_export
from tests.stages.test_export import _model

pytest.importorskip("bioimageio.core")
from srbio.inference.bioimageio import predict_package  # noqa: E402
from srbio.io import bioimageio as bio  # noqa: E402
from srbio.stages.bioimageio import crop_for, plan, real_test_input, srbio_prediction  # noqa: E402

AUTHORS = [{"name": "Ada Lovelace", "affiliation": "Analytical Engine Lab",
            "orcid": "0000-0002-1825-0097"}]
DEAD_PROXY = "http://127.0.0.1:9"  # subprocesses: any web request fails at once


@pytest.fixture(scope="module", autouse=True)
def bioimageio_cache(tmp_path_factory):
    """bioimageio's cache in a temporary folder (here and in subprocesses), never $HOME."""
    cache = tmp_path_factory.mktemp("bioimageio-cache")
    from bioimageio.spec import settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BIOIMAGEIO_CACHE_PATH", str(cache))
        mp.setattr(settings, "cache_path", cache)
        yield cache


def _cli(args: list[str]) -> int:
    """Run the CLI in this process (its log handler on this test's stderr removed after)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return main(args)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class Offline:
    """Refuses (and records) every internet connection and name lookup while active."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        self.attempts: list[object] = []
        real_connect = socket.socket.connect

        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                self.attempts.append(address)
                raise OSError(f"a test tried to reach {address}")
            return real_connect(sock, address)

        def lookup(host, *args, **kwargs):
            self.attempts.append(host)
            raise socket.gaierror(f"a test tried to look up {host}")

        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket, "getaddrinfo", lookup)


@pytest.fixture
def offline():
    with pytest.MonkeyPatch.context() as mp:
        guard = Offline(mp)
        yield guard
    assert guard.attempts == [], f"network access: {guard.attempts}"


def _env() -> dict[str, str]:
    return {**os.environ, "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY,
            "NO_PROXY": "", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _config(path: Path, **export) -> Path:
    data = {"pairs": [{"name": "p", "lr": "lr.tif", "hr": "hr.tif"}], "export": export}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def package2d(tmp_path_factory):
    """A 2D RCAN (×2) exported through the CLI as TorchScript, ONNX and a bioimage.io package."""
    tmp = tmp_path_factory.mktemp("bioimageio2d")
    model = _model(tmp / "m.pt", "rcan")
    config = _config(tmp / "config.yaml", authors=AUTHORS, tags=["fluorescence-light-microscopy"],
                     cite=[{"text": "A data set", "doi": "10.5281/zenodo.1234567"}])
    with pytest.MonkeyPatch.context() as mp:
        guard = Offline(mp)
        code = _cli(["export", "--model", str(model), "--out", str(tmp / "out"), "--config",
                     str(config), "--format", "torchscript", "onnx", "bioimageio"])
    assert code == 0 and guard.attempts == []
    return model, tmp / "out"


def _rdf(folder: Path) -> dict:
    return yaml.safe_load((folder / "bioimageio" / "rdf.yaml").read_text())


@pytest.mark.slow
def test_the_package_describes_srbios_network_axes_and_normalisation(package2d):
    model, out = package2d
    assert sorted(p.name for p in out.iterdir()) == [
        ".srbio-output.json", "bioimageio", "export.json", "model.bioimageio.zip",
        "model.onnx", "model.torchscript.pt"]
    record = Export.read(out / "export.json")
    pkg = record.bioimageio
    assert pkg.validation == "valid-format" and pkg.test == "passed"
    assert set(pkg.test_max_abs_diff) == {"torchscript", "onnx"}
    assert max(pkg.test_max_abs_diff.values()) <= pkg.tolerance == pytest.approx(1e-3 * 1402)
    assert set(record.formats) == {"torchscript", "onnx"} and record.config["export"]["authors"]
    for fmt, name in (("torchscript", "weights.torchscript.pt"), ("onnx", "weights.onnx")):
        assert pkg.weights[fmt].file == name  # this export's own files, reused
        assert (out / "bioimageio" / name).read_bytes() == (out / record.formats[fmt].file
                                                            ).read_bytes()
    rdf = _rdf(out)
    assert rdf["authors"] == AUTHORS and rdf["license"] == "CC-BY-4.0"
    assert rdf["cite"][0]["doi"] == "10.1007/978-3-030-01234-2_18"  # RCAN, then the config's
    assert rdf["cite"][1]["doi"] == "10.5281/zenodo.1234567"
    assert {"super-resolution", "2d", "rcan", "fluorescence-light-microscopy"} <= set(rdf["tags"])
    (inp,), (outp,) = rdf["inputs"], rdf["outputs"]
    halo = pkg.halo[-1]
    assert [a["type"] for a in inp["axes"]] == ["batch", "channel", "space", "space"]
    assert [a["size"] for a in inp["axes"][2:]] == [{"min": 2 * halo + 1, "step": 1}] * 2
    for axis, name in zip(outp["axes"][2:], "yx", strict=True):
        assert axis["scale"] == 0.5 and axis["halo"] == 2 * halo
        assert axis["size"] == {"tensor_id": "lr", "axis_id": name}
    assert set(rdf["weights"]) == {"torchscript", "onnx"}
    assert rdf["weights"]["onnx"]["opset_version"] >= 18
    assert rdf["config"]["bioimageio"]["reproducibility_tolerance"][0]["absolute_tolerance"] == \
        pkg.tolerance
    attached = {a["source"] for a in rdf["attachments"]}
    assert {"srbio_model_header.json", "srbio_export.json"} <= attached
    assert "Validation" in (out / "bioimageio" / "README.md").read_text()
    assert "data/sample/lls_hr.tif" in pkg.test_input  # real data, said where from


@pytest.mark.slow
def test_scale_linear_steps_are_srbios_normalisation_and_its_inverse(package2d):
    from srbio.core.normalise import denormalise, normalise

    _, out = package2d
    (inp,), (outp,) = _rdf(out)["inputs"], _rdf(out)["outputs"]
    pre = next(p for p in inp["preprocessing"] if p["id"] == "scale_linear")["kwargs"]
    post = next(p for p in outp["postprocessing"] if p["id"] == "scale_linear")["kwargs"]
    x = np.load(out / "bioimageio" / "test_input.npy")
    assert x.shape[:2] == (1, 1) and x.dtype == np.float32
    np.testing.assert_allclose(np.float32(pre["gain"]) * x + np.float32(pre["offset"]),
                               normalise(x, 98, 1200), rtol=0, atol=1e-6)
    y = np.linspace(-0.2, 1.2, 50, dtype=np.float32)
    np.testing.assert_allclose(np.float32(post["gain"]) * y + np.float32(post["offset"]),
                               denormalise(y, 98, 1500), rtol=1e-6)
    assert post == {"gain": 1402.0, "offset": 98.0}


@pytest.mark.slow
def test_the_package_and_its_zip_validate_offline_also_with_urls_and_github_users(
        package2d, tmp_path, offline):
    _, out = package2d
    for source in (out / "bioimageio", out / "model.bioimageio.zip"):
        checked = bio.validate(source)
        assert checked.status == "valid-format", checked.problems
    copy = shutil.copytree(out / "bioimageio", tmp_path / "copy")
    rdf = yaml.safe_load((copy / "rdf.yaml").read_text())
    rdf |= {"git_repo": "https://github.com/example-org/srbio-model",
            "maintainers": [{"github_user": "someone-who-may-not-exist-xyz"}],
            "cite": [*rdf["cite"], {"text": "a web page", "url": "https://example.org/paper"}]}
    (copy / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    assert bio.validate(copy).valid
    rdf["weights"]["onnx"]["opset_version"] = 3  # invalid: the spec wants 7 or more
    (copy / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    checked = bio.validate(copy)
    assert checked.status == "failed" and any("opset_version" in p for p in checked.problems)


@pytest.mark.slow
def test_bioimageio_test_passes_on_the_package(package2d, offline):
    from bioimageio.core import test_model

    _, out = package2d
    assert test_model(out / "bioimageio" / "rdf.yaml").status == "passed"
    offline_in_subprocess = _env()
    r = subprocess.run([str(Path(sys.executable).with_name("bioimageio")), "test",
                        str(out / "model.bioimageio.zip")], capture_output=True, text=True,
                       env=offline_in_subprocess, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "passed" in r.stdout + r.stderr


def _real_lr(shape=(96, 80)) -> np.ndarray:
    """A real LR region (other than the test input): the sample's simulated LR, plane 20."""
    from srbio.config import SimulateParams
    from srbio.io import read_image
    from srbio.stages.inspect import sample_path
    from srbio.stages.simulate import simulate_with

    hr, spacing = read_image(sample_path())
    lr = simulate_with(hr[20], tuple(spacing[1:]), SimulateParams(scale=2, seed=1)).lr
    return lr[40:40 + shape[0], 50:50 + shape[1]].astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("weight_format", ["torchscript", "onnx"])
def test_bioimageio_core_predicts_what_srbio_predicts_whole_and_tiled(package2d, weight_format,
                                                                      offline):
    model, out = package2d
    pkg = Export.read(out / "export.json").bioimageio
    net, header = load_model(model)
    x = _real_lr()
    h, f = pkg.halo[-1], pkg.factors[-1]
    srbio = srbio_prediction(net, header, x)
    # bioimage.io pads the halo at image borders (symmetric) and crops it again: srbio's
    # prediction of that padded input, and srbio's own away from the borders
    padded = srbio_prediction(net, header, np.pad(x, h, mode="symmetric"))[h * f:-h * f,
                                                                            h * f:-h * f]
    diffs = {}
    for name, blocksize in (("untiled", None), ("tiled", 20)):
        got = predict_package(out / "model.bioimageio.zip", x[None, None],
                              weight_format=weight_format, blocksize=blocksize)[0, 0]
        assert got.shape == srbio.shape == (192, 160)
        diffs[name] = (float(np.abs(got - padded).max()),
                       float(np.abs(got - srbio)[h * f:-h * f, h * f:-h * f].max()))
    print(weight_format, "max |bioimageio.core - srbio| (padded input, interior):", diffs)
    assert max(max(d) for d in diffs.values()) <= pkg.tolerance
    assert diffs["untiled"][0] <= 1e-5 * 1402  # whole image: the same numbers


def test_missing_authors_is_a_clear_error_and_nothing_is_written(tmp_path, capsys):
    model = _model(tmp_path / "m.pt", "rcan")
    out = tmp_path / "out"
    code = _cli(["export", "--model", str(model), "--out", str(out), "--format", "bioimageio"])
    err = capsys.readouterr().err
    assert code == 2 and "export.authors is empty" in err and "config.yaml" in err
    config = _config(tmp_path / "config.yaml", license="CC-BY-4.0")
    code = _cli(["export", "--model", str(model), "--out", str(out), "--format", "torchscript",
                 "bioimageio", "--config", str(config)])
    assert code == 2 and "export.authors" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("export", "key"), [
    ({"authors": AUTHORS, "license": "NOT-A-LICENCE"}, "export.license"),
    ({"authors": [{"name": "A", "orcid": "0000-0002-1825-0098"}]}, "export.authors[0].orcid"),
])
def test_what_bioimageio_refuses_in_the_config_is_named_before_anything_is_written(
        tmp_path, capsys, export, key):
    model = _model(tmp_path / "m.pt", "rcan")
    code = _cli(["export", "--model", str(model), "--out", str(tmp_path / "out"), "--format",
                 "bioimageio", "--settings", json.dumps({"export": export})])
    assert code == 2 and key in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_package_that_does_not_reproduce_its_test_output_is_refused(tmp_path, monkeypatch,
                                                                       offline):
    import srbio.stages.bioimageio as stage

    model = _model(tmp_path / "m.pt", "rcan")
    honest = stage.srbio_prediction
    monkeypatch.setattr(stage, "srbio_prediction", lambda *a: honest(*a) + 50.0)
    with pytest.raises(RuntimeError, match="bioimageio.core's test of the package failed"):
        run_export(model, tmp_path / "out", ["bioimageio"], cfg=ExportConfig(authors=AUTHORS))
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- 3D, anisotropic

@pytest.fixture(scope="module")
def package3d(tmp_path_factory):
    """A 3D RCAN upsampling y and x ×3 and z ×1, exported as a package."""
    tmp = tmp_path_factory.mktemp("bioimageio3d")
    torch.manual_seed(0)
    net = build_network("rcan3d", scale=3, params={"n_groups": 1, "n_blocks": 1, "n_feats": 8,
                                                   "reduction": 4})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    header = ModelHeader(network=NetworkSpec.from_config(net.config),
                         spacing=PixelSizes(lr=[0.157, 0.3045, 0.3045], hr=[0.157, 0.1015, 0.1015]),
                         normalisation=Normalisation(lr=Range(vmin=98, vmax=600),
                                                     hr=Range(vmin=98, vmax=1500)))
    model = save_model_file(tmp / "m3.pt", header, net.state_dict())
    with pytest.MonkeyPatch.context() as mp:
        guard = Offline(mp)
        run_export(model, tmp / "out", ["bioimageio"], cfg=ExportConfig(authors=AUTHORS))
    assert guard.attempts == []
    return model, tmp / "out"


@pytest.mark.slow
def test_an_anisotropic_3d_package_says_z_x1_and_yx_x3(package3d, offline):
    _, out = package3d
    record = Export.read(out / "export.json")
    pkg = record.bioimageio
    assert record.formats == {} and pkg.factors == [1, 3, 3] and pkg.test == "passed"
    rdf = _rdf(out)
    assert rdf["name"] == "srbio rcan3d x3 (z x1) super-resolution" and "3d" in rdf["tags"]
    axes = {a.get("id"): a for a in rdf["outputs"][0]["axes"]}
    assert axes["z"]["scale"] == 1.0 and axes["z"]["halo"] == pkg.halo[0]
    assert axes["y"]["scale"] == axes["x"]["scale"] == pytest.approx(1 / 3)
    assert axes["y"]["halo"] == 3 * pkg.halo[1]
    assert axes["y"]["description"] == "LR pixel 0.3045 µm in training"  # the header's
    x = np.load(out / "bioimageio" / "test_input.npy")
    y = np.load(out / "bioimageio" / "test_output.npy")
    assert y.shape == (1, 1, x.shape[2], 3 * x.shape[3], 3 * x.shape[4])
    assert x.shape[2] >= pkg.min_shape[0] and x.shape[3] >= pkg.min_shape[1]
    assert bio.validate(out / "model.bioimageio.zip").valid


@pytest.mark.slow
def test_bioimageio_core_predicts_a_volume_as_srbio_does_whole_and_tiled(package3d, offline):
    from srbio.config import SimulateParams
    from srbio.io import read_image
    from srbio.stages.inspect import sample_path
    from srbio.stages.simulate import simulate_with

    model, out = package3d
    pkg = Export.read(out / "export.json").bioimageio
    hr, spacing = read_image(sample_path())
    x = simulate_with(hr[5:35], tuple(spacing), SimulateParams(scale=3, seed=1)).lr
    x = x[:, 30:78, 30:78].astype(np.float32)  # real LR, 30 planes: room for blocks in z
    net, header = load_model(model)
    (hz, hy, _), pad = pkg.halo, [(pkg.halo[0],) * 2, (pkg.halo[1],) * 2, (pkg.halo[2],) * 2]
    crop = (slice(hz, -hz), slice(3 * hy, -3 * hy), slice(3 * hy, -3 * hy))
    padded = srbio_prediction(net, header, np.pad(x, pad, mode="symmetric"))[crop]
    srbio = srbio_prediction(net, header, x)
    diffs = {}
    for name, blocksize in (("untiled", None), ("tiled", 10)):
        got = predict_package(out / "model.bioimageio.zip", x[None, None], weight_format="onnx",
                              blocksize=blocksize)[0, 0]
        assert got.shape == srbio.shape == (30, 144, 144)
        diffs[name] = (float(np.abs(got - padded).max()), float(np.abs(got - srbio)[crop].max()))
    print("3D onnx max |bioimageio.core - srbio| (padded input, interior):", diffs)
    assert max(max(d) for d in diffs.values()) <= pkg.tolerance


# ----------------------------------------------------------------------------- test data

def test_a_test_input_is_the_brightest_window_of_a_real_image(sample):
    image, _ = sample
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, params={"n_groups": 1, "n_blocks": 1, "n_feats": 8,
                                                 "reduction": 4})
    header = ModelHeader(network=NetworkSpec.from_config(net.config),
                         normalisation=Normalisation(lr=Range(vmin=0, vmax=1),
                                                     hr=Range(vmin=0, vmax=1)))
    p = plan(net, header)
    x, where = crop_for(image, p, "sample")
    assert x.shape == (64, 64) and x.dtype == np.float32 and where.startswith("y ")
    ys, xs = (slice(*map(int, part.split()[1].split(":"))) for part in where.split(", "))
    plane = image[image.shape[0] // 2].astype(np.float32)
    np.testing.assert_array_equal(x, plane[ys, xs])
    from scipy.ndimage import uniform_filter

    windows = uniform_filter(plane, 64, mode="constant")[32:-31, 32:-31]
    assert x.mean() == pytest.approx(windows.max(), rel=1e-4)
    assert x.mean() > 1.5 * plane.mean()  # on the cell, not the background
    with pytest.raises(ValueError, match="smaller than the package's smallest input"):
        crop_for(image[:, :4, :4], p, "tiny")


@pytest.mark.slow
def test_a_trained_model_is_tested_on_its_own_validation_patches(prepared, tmp_path, offline):
    from srbio.config import ModelConfig, PatchesConfig, TrainConfig
    from srbio.io.patches import read_patches
    from srbio.stages.prepare import run_patches
    from srbio.stages.train import run_train
    from tests.conftest import SPLIT

    store = tmp_path / "patches.zarr"  # patches larger than the package's smallest input
    run_patches([prepared / "crop" / "p"], store, PatchesConfig(size=28, n_train=64, n_val=8),
                SPLIT)
    train = run_train(store, prepared / "normalisation.json", tmp_path / "train",
                      ModelConfig(preset="tiny"), TrainConfig(epochs=1, batch_size=16),
                      progress=False)
    out = run_export(train.model, tmp_path / "out", ["bioimageio"],
                     cfg=ExportConfig(authors=AUTHORS))
    pkg = Export.read(out.record).bioimageio
    assert pkg.test == "passed" and pkg.test_input.startswith("validation LR patch")
    assert str(store) in pkg.test_input
    x = np.load(out.bioimageio / "test_input.npy")[0, 0]
    assert any(np.array_equal(x, v.astype(np.float32)) for v in read_patches(store)["val/lr"])
    attached = {a["source"] for a in _rdf(out.root)["attachments"]}
    assert {"srbio_training.json", "srbio_training_curve.png", "srbio_patches.json",
            "srbio_normalisation.json"} <= attached
    readme = (out.bioimageio / "README.md").read_text()
    assert str(store) in readme and "## Validation" in readme
    _, header = load_model(train.model)
    gone = header.model_copy(update={"provenance": {"inputs": {"gone.zarr": "digest"}},
                                     "inputs": None})
    net, _ = load_model(train.model)
    assert "data/sample/lls_hr.tif" in real_test_input(gone, plan(net, gone))[1]  # the fallback
