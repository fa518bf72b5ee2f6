"""Bad input gets a message, never a traceback (issue 8, class 3), through the CLI."""

import json
import pickle

import numpy as np
import pytest
import tifffile
import torch

from srbio.io import read_ome_zarr_attrs, write_tiff
from tests.reliability.conftest import tiny_model


@pytest.fixture
def lr(tmp_path):
    image = np.random.default_rng(0).integers(100, 900, (4, 40, 48)).astype(np.uint16)
    return write_tiff(tmp_path / "lr.tif", image, spacing=(0.5, 0.2, 0.2))


def test_a_truncated_compressed_tiff_is_named_not_a_zlib_traceback(tmp_path, lr):
    from srbio.io import read_image

    data = lr.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(ValueError, match=r"cut.tif: (cannot read its pixel data, the file is "
                                         r"corrupt or truncated|cannot read TIFF)"):
        read_image(cut)


def test_a_truncated_tiff_through_predict_exits_2_and_leaves_no_complete_output(srbio, tmp_path, lr, model):
    data = lr.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    code, err = srbio("predict", "--model", model, "--input", cut, "--output",
                      tmp_path / "o.ome.zarr", "--quiet", "--tile", "16", "16", "--overlap", "2")
    assert code == 2 and "cut.tif" in err and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()  # no record: nothing looks complete
    # the planes before the damage are kept for a resume, in a store marked incomplete
    assert read_ome_zarr_attrs(tmp_path / "o.ome.zarr")["status"] == "incomplete"


class Payload:
    """Any non-tensor object: what a malicious model file would carry."""


def test_a_pickled_model_is_refused_without_torchs_unpickling_advice(srbio, tmp_path, lr):
    bad = tmp_path / "evil.pt"
    torch.save({"format": "srbio-model/2", "header": Payload()}, bad, pickle_module=pickle)
    code, err = srbio("predict", "--model", bad, "--input", lr, "--output",
                      tmp_path / "o.ome.zarr", "--quiet")
    assert code == 2 and "evil.pt: not a readable srbio model file" in err
    assert "weights_only=False" not in err and "not loaded, for safety" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "cuda:7"], "CUDA device"),
    (["--tile", "0", "0"], "tile_shape.0"),
    (["--tile", "-4", "64"], "tile_shape.0"),
    (["--overlap", "40", "--tile", "64", "64"], "overlap (40), and twice the overlap"),
])
def test_bad_prediction_options_are_named(srbio, tmp_path, lr, model, args, message):
    if args[:2] == ["--device", "cuda:7"] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    code, err = srbio("predict", "--model", model, "--input", lr, "--output",
                      tmp_path / "o.ome.zarr", "--quiet", *args)
    assert code == 2 and message in err, err
    assert not (tmp_path / "o.ome.zarr").exists()


def test_a_normalisation_file_without_its_ranges_is_named(srbio, tmp_path):
    from srbio.io.records import Patches

    Patches(store="p.zarr", scale=2, size=16, counts={}, pairs=["a"], lr_spacing=[0.2, 0.2],
            hr_spacing=[0.1, 0.1], split={}).write(tmp_path / "p.json")
    norm = tmp_path / "norm.json"
    norm.write_text(json.dumps({"record": "srbio.normalisation/1", "lr": {"vmin": 0, "vmax": 1}}))
    code, err = srbio("train", "--patches", tmp_path / "p.zarr", "--normalisation",
                      norm, "--out", tmp_path / "t")
    assert code == 2 and "norm.json: invalid srbio.normalisation/1 record (hr: Field required)" \
        in err
    norm.write_text(json.dumps({"lr": [0, 1], "hr": [0, 1]}))  # srbio 0.1.0's format
    code, err = srbio("train", "--patches", tmp_path / "p.zarr", "--normalisation",
                      norm, "--out", tmp_path / "t")
    assert code == 2 and "norm.json: no version tag" in err and not (tmp_path / "t").exists()


def test_evaluating_a_model_of_another_scale_is_named(srbio, tmp_path, pair2d):
    from srbio.config import RegisterConfig
    from srbio.stages.crop import run_crop
    from srbio.stages.register import run_register

    run_register(pair2d["hr"], pair2d["lr"], tmp_path / "reg",
                 RegisterConfig(transform="rigid", metric="correlation"))
    crop = run_crop(tmp_path / "reg", pair2d["hr"], tmp_path / "crop").root
    model = tiny_model(tmp_path / "x3.pt", scale=3)
    code, err = srbio("evaluate", "--model", model, "--crops", crop, "--out",
                      tmp_path / "ev")
    assert code == 2 and "pair crop was cropped at scale 2 but the model upsamples by 3" in err
    assert not (tmp_path / "ev").exists()


def _exports(tmp_path):
    """A Lightning checkpoint, a TorchScript and an ONNX file: files users mistake for models."""
    import torch

    ckpt = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "global_step": 12, "pytorch-lightning_version": "2.5.0",
                "state_dict": {"net.w": torch.zeros(2)}}, ckpt)
    script = tmp_path / "model.torchscript.pt"
    torch.jit.script(torch.nn.Conv2d(1, 1, 3)).save(str(script))
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch")  # the start of an ONNX protobuf
    return {"a Lightning training checkpoint (epoch 3)": ckpt,
            "a TorchScript export": script, "an ONNX export": onnx}


def test_exports_and_checkpoints_given_as_the_model_are_named(srbio, tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.random.default_rng(0).integers(0, 900, (40, 48), dtype=np.uint16))
    for what, model in _exports(tmp_path).items():
        code, err = srbio("predict", "--model", model, "--input", src, "--output",
                          tmp_path / "o.ome.zarr", "--spacing", "0.2", "0.2", "--quiet")
        assert code == 2 and f"{model.name}: is {what}" in err, err
        assert "model.pt that `srbio train` writes" in err and "Traceback" not in err
        assert "weights_only" not in err  # torch's advice is not for users
        assert not (tmp_path / "o.ome.zarr").exists()


def test_an_output_name_too_long_for_the_file_system_is_refused(srbio, tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.random.default_rng(0).integers(0, 900, (40, 48), dtype=np.uint16))
    model = tiny_model(tmp_path / "m.pt")
    for n in (240, 300):
        out = tmp_path / ("a" * n + ".ome.zarr")
        code, err = srbio("predict", "--model", model, "--input", src, "--output", out,
                          "--spacing", "0.2", "0.2", "--quiet")
        assert code == 2 and "a file name may have 255" in err and "Traceback" not in err, err
        assert not list(tmp_path.glob("*aaaa*")) and not list(tmp_path.glob(".*aaaa*"))


def test_results_pointing_at_a_file_is_refused_by_validate(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "results.txt").write_text("notes")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"results": str(tmp_path / "results.txt"),
                               "pairs": [{"name": "p", "lr": "a.tif", "hr": "b.tif"}]}))
    r = subprocess.run([sys.executable, "-m", "srbio", "validate", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "results.txt is a file" in r.stderr, r.stderr
    assert (tmp_path / "results.txt").read_text() == "notes"


def test_a_train_folder_given_as_the_model_is_named(srbio, tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    tiny_model(folder / "model.pt")
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.random.default_rng(0).integers(0, 900, (40, 48), dtype=np.uint16))
    code, err = srbio("predict", "--model", folder, "--input", src, "--output",
                      tmp_path / "o.ome.zarr", "--spacing", "0.2", "0.2", "--quiet")
    assert code == 2 and "train: is a folder, not a model file (a train folder: give its " \
                         "model.pt)" in err, err
