"""Cases of data safety round two (issue 22) for ``benchmarks/bad_inputs.py``, by class.

A case's maker returns ``(args, keep)`` or ``(args, keep, extra)``; ``extra`` may hold

* ``check``: ``check(d) -> bool``, whether an exit 0 left the *right* result (then the case
  is ``correct``, else ``silent``): for inputs srbio must read correctly, not refuse;
* ``together``: a second command started at once (concurrent writers), once the first holds
  ``wait_for``; both outcomes are classified together;
* ``signal``: ``(signum, path)``: the signal is sent once ``path`` exists.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
import torch
import zarr


def _ome(path: Path, data: np.ndarray, axes: list[str], scale: list[float]) -> Path:
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.create_array("0", data=data, chunks=data.shape, dimension_names=axes)
    entries = [{"name": a, "type": "time" if a == "t" else "space",
                **({} if a == "t" else {"unit": "micrometer"})} for a in axes]
    write_multiscales_metadata(group, [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": scale}]}], fmt=FormatV05(), axes=entries)
    return path


def _store_axes(out: Path) -> tuple[list[str], tuple[int, ...]] | None:
    try:
        group = zarr.open_group(str(out), mode="r")
        axes = [a["name"] for a in group.attrs["ome"]["multiscales"][0]["axes"]]
        return axes, tuple(group["0"].shape)
    except Exception:  # noqa: BLE001 - no store: not the right result
        return None


def _record(out: Path) -> dict:
    path = out.with_name(out.name.removesuffix(".ome.zarr") + ".json")
    return json.loads(path.read_text()) if path.exists() else {}


def model_at(path: Path, lr_um: float) -> Path:
    """A tiny RCAN whose header says it was trained at ``lr_um`` µm LR pixels (current format)."""
    from srbio.io.modelfile import save_model_file
    from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, PixelSizes, Range
    from srbio.models import build_network

    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="tiny")
    header = ModelHeader(network=NetworkSpec.from_config(net.config),
                         normalisation=Normalisation(lr=Range(vmin=90, vmax=450),
                                                     hr=Range(vmin=90, vmax=520)),
                         spacing=PixelSizes(lr=[lr_um, lr_um], hr=[lr_um / 2, lr_um / 2]))
    return save_model_file(path, header, net.state_dict())


def _poisoned(path: Path, model: Path) -> Path:
    """``model`` (srbio-model/1, which every version reads) with one weight NaN."""
    payload = torch.load(model, weights_only=True)
    payload["state_dict"][sorted(payload["state_dict"])[2]].view(-1)[0] = float("nan")
    torch.save(payload, path)
    return path


def _edited(path: Path, lr_um: float = 0.2) -> Path:
    """A current-format model whose header was edited after training (res_scale)."""
    model_at(path, lr_um)
    payload = torch.load(path, weights_only=True)
    payload["header"]["network"]["params"]["res_scale"] = 0.25
    torch.save(payload, path)
    return path


def _config(d: Path, text: str, s: Path) -> Path:
    path = d / "config.yaml"
    pair = (f"pairs:\n  - name: p\n    lr: {s / 'lr.tif'}\n    hr: {s / 'hr' / 'hr.tif'}\n")
    path.write_text(pair + text)
    return path


def _train_dir(d: Path, s: Path) -> Path:
    """A finished one-epoch training of a tiny RCAN in ``d/train`` (for resume cases)."""
    settings = {"model": {"preset": "tiny"}, "train": {"epochs": 1}}
    subprocess.run([sys.executable, "-m", "srbio", "train", "--patches", str(s / "patches.zarr"),
                    "--normalisation", str(s / "normalisation.json"), "--out", str(d / "train"),
                    "--settings", json.dumps(settings), "--quiet"], check=True,
                   capture_output=True)
    return d / "train"


def cases(predict, train, imagej, stack, model_v1) -> list:
    """The round-two cases; the helpers are bad_inputs.py's."""
    def big(d: Path) -> Path:  # long enough for a second process to meet the first
        return imagej(d / "big.tif", np.random.default_rng(1).integers(
            100, 900, (12, 160, 196)).astype(np.uint16))

    return [
        # 1. concurrent writers
        ("1 two predicts of two jobs to one output at once", lambda d, s: (
            predict(d, big(d), d / "o.ome.zarr", "--tile", "48", "48"), [d / "big.tif"],
            {"together": predict(d, d / "big.tif", d / "o.ome.zarr", "--tile", "64", "64"),
             "wait_for": d / ".o.ome.zarr.lock"})),
        ("1 two predicts of one job to one output at once", lambda d, s: (
            predict(d, big(d), d / "o.ome.zarr"), [d / "big.tif"],
            {"together": predict(d, d / "big.tif", d / "o.ome.zarr"),
             "wait_for": d / ".o.ome.zarr.lock"})),
        ("1 two registers into one folder at once", lambda d, s: (
            ["register", "--fixed", str(s / "hr" / "hr.tif"), "--moving", str(s / "lr.tif"),
             "--out", str(d / "reg")], [],
            {"together": ["register", "--fixed", str(s / "hr" / "hr.tif"), "--moving",
                          str(s / "lr.tif"), "--out", str(d / "reg"), "--transform", "rigid"],
             "wait_for": d / ".reg.lock"})),
        ("1 two trains into one folder at once", lambda d, s: (
            train(s, d, {"train": {"epochs": 3}}), [],
            {"together": train(s, d, {"train": {"epochs": 2}}),
             "wait_for": d / ".train.lock"})),
        # 2. metadata read wrongly
        ("2 OME-Zarr stored y, x, z", lambda d, s: (
            predict(d, _ome(d / "yxz.ome.zarr", np.transpose(stack(3), (1, 2, 0)),
                            ["y", "x", "z"], [0.2, 0.2, 0.5]), d / "o.ome.zarr"),
            [d / "yxz.ome.zarr"],
            {"check": lambda d: _store_axes(d / "o.ome.zarr") == (["z", "y", "x"],
                                                                  (3, 96, 112))})),
        ("2 plain zarr with axes [x, y]", lambda d, s: (
            predict(d, _xy(d / "xy.zarr", stack(1)[0]), d / "o.ome.zarr"), [d / "xy.zarr"],
            {"check": lambda d: _store_axes(d / "o.ome.zarr") == (["y", "x"], (96, 112))})),
        ("2 TIFF with more pages than its ImageJ header says", lambda d, s: (
            predict(d, _more_pages(d / "more.tif", imagej, stack), d / "o.ome.zarr"),
            [d / "more.tif"])),
        ("2 multi-series OME-TIFF", lambda d, s: (
            predict(d, _series(d / "multi.ome.tif", stack), d / "o.ome.zarr"),
            [d / "multi.ome.tif"])),
        ("2 OME-TIFF with physical sizes in nm", lambda d, s: (
            predict(d, _ome_tiff(d / "nm.ome.tif", stack), d / "o.ome.zarr"), [],
            {"check": lambda d: np.allclose(_record(d / "o.ome.zarr").get(
                "input_spacing", [0]), [0.5, 0.2, 0.2])})),
        # 3. absurd physical sizes
        ("3 72-dpi TIFF to a model trained at 0.2 µm", lambda d, s: (
            predict(d, _dpi(d / "dpi.tif", stack, 72), d / "o.ome.zarr",
                    model=model_at(d / "at.pt", 0.2)), [d / "dpi.tif"])),
        ("3 model header with a 1e-6 µm LR pixel", lambda d, s: (
            predict(d, imagej(d / "in.tif", stack(1)[0]), d / "o.ome.zarr",
                    model=model_at(d / "at.pt", 1e-6)), [d / "in.tif"])),
        ("3 register an LR whose unit is inch", lambda d, s: (
            ["register", "--fixed", str(s / "hr" / "hr.tif"), "--moving",
             str(_inch(d / "lr.tif", s)), "--out", str(d / "reg")], [])),
        # 4. signals
        ("4 SIGTERM to predict", lambda d, s: (
            predict(d, big(d), d / "o.ome.zarr", "--tile", "48", "48"), [d / "big.tif"],
            {"signal": (signal.SIGTERM, d / ".o.ome.zarr.progress")})),
        ("4 SIGINT to predict", lambda d, s: (
            predict(d, big(d), d / "o.ome.zarr", "--tile", "48", "48"), [d / "big.tif"],
            {"signal": (signal.SIGINT, d / ".o.ome.zarr.progress")})),
        ("4 SIGTERM to train", lambda d, s: (
            train(s, d, {"train": {"epochs": 30}}), [],
            {"signal": (signal.SIGTERM, d / "train" / "checkpoints" / "last.ckpt")})),
        # 5. broken models and mismatched inputs
        ("5 model with a NaN weight", lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr",
                    model=_poisoned(d / "nan.pt", model_v1(d / "ok.pt"))), [])),
        ("5 model header edited after training", lambda d, s: (
            predict(d, imagej(d / "in.tif", stack(1)[0]), d / "o.ome.zarr",
                    model=_edited(d / "edited.pt")), [])),
        ("5 train --resume with another network", lambda d, s: (
            [*train(s, d, {"model": {"name": "edsr", "preset": "baseline"}}), "--resume"]
            if _train_dir(d, s) else [], [d / "train" / "checkpoints" / "last.ckpt"])),
        ("5 crop --hr of another image", lambda d, s: (
            ["crop", "--registered", str(s / "reg"), "--hr", str(_other_hr(d, s)), "--out",
             str(d / "crop")], [])),
        ("5 register one file as LR and HR", lambda d, s: (
            ["register", "--fixed", str(s / "hr" / "hr.tif"), "--moving",
             str(s / "hr" / "hr.tif"), "--out", str(d / "reg")], [s / "hr" / "hr.tif"])),
        ("5 uint8 input to a model trained on uint16", lambda d, s: (
            predict(d, _write8(d / "u8.tif"), d / "o.ome.zarr", "--spacing", "0.2", "0.2"),
            [])),
        # 6. configuration
        ("6 duplicate key in config.yaml", lambda d, s: (
            ["validate", str(_config(d, "train:\n  epochs: 3\n  epochs: 30\n", s))], [])),
        ("6 epochs: true", lambda d, s: (
            ["validate", str(_config(d, "train:\n  epochs: true\n", s))], [])),
        ('6 compile: "off"', lambda d, s: (
            ["validate", str(_config(d, 'train:\n  compile: "off"\n', s))], [])),
        ("6 zero validation and test fractions", lambda d, s: (
            ["validate", str(_config(d, "split:\n  val_fraction: 0\n  test_fraction: 0\n", s))],
            [])),
        ("6 patch size larger than the image", lambda d, s: (
            ["validate", str(_config(d, "patches:\n  size: 400\n", s))], [])),
        ("6 n_feats: 0.5", lambda d, s: (
            ["validate", str(_config(d, "model:\n  params:\n    n_feats: 0.5\n", s))], [])),
        # 7. tracebacks
        ("7 a 300-character output name", lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / ("a" * 300 + ".ome.zarr")), [])),
        ("7 results: pointing at a file", lambda d, s: (
            ["validate", str(_config(d, f"results: {_afile(d)}\npatches:\n  size: 8\n", s))],
            [d / "notes.txt"])),
        ("7 a Lightning checkpoint as the model", lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr",
                    model=_ckpt(d / "last.ckpt")), [])),
        ("7 an ONNX file as the model", lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr",
                    model=_onnx(d / "model.onnx")), [])),
        # 8. models that travel (bioimage.io export, provenance)
        ("8 a bioimage.io export without authors", lambda d, s: (
            _export(d, {}), [])),
        ("8 a bioimage.io export, licence not SPDX", lambda d, s: (
            _export(d, {"authors": [{"name": "A. Author"}], "license": "NOT-A-LICENCE"}), [])),
        ("8 provenance of a file srbio did not write", lambda d, s: (
            ["provenance", str(_afile(d))], [d / "notes.txt"])),
    ]


def _export(d: Path, export: dict) -> list[str]:
    """`srbio export --format bioimageio` of the case's model with ``export`` settings."""
    return ["export", "--model", str(d / "m.pt"), "--out", str(d / "exported"), "--format",
            "bioimageio", "--settings", json.dumps({"export": export})]


def _xy(path: Path, plane: np.ndarray) -> Path:
    arr = zarr.create_array(str(path), data=np.ascontiguousarray(plane.T), chunks=plane.T.shape)
    arr.attrs.update({"axes": ["x", "y"], "spacing": [0.2, 0.2]})
    return path


def _more_pages(path: Path, imagej, stack) -> Path:
    imagej(path, stack(5))
    data = bytearray(path.read_bytes())
    for old, new in ((b"images=5", b"images=3"), (b"slices=5", b"slices=3")):
        i = data.find(old)
        data[i:i + len(old)] = new
    path.write_bytes(bytes(data))
    return path


def _series(path: Path, stack) -> Path:
    with tifffile.TiffWriter(path, ome=True) as w:
        for _ in range(2):
            w.write(stack(3), metadata={"axes": "ZYX", "PhysicalSizeX": 0.2,
                                        "PhysicalSizeY": 0.2, "PhysicalSizeZ": 0.5})
    return path


def _ome_tiff(path: Path, stack) -> Path:
    tifffile.imwrite(path, stack(3), ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 200.0, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 200.0,
        "PhysicalSizeYUnit": "nm", "PhysicalSizeZ": 500.0, "PhysicalSizeZUnit": "nm"})
    return path


def _dpi(path: Path, stack, dpi: int) -> Path:
    tifffile.imwrite(path, stack(1)[0], resolution=(dpi, dpi), resolutionunit="INCH")
    return path


def _inch(path: Path, s: Path) -> Path:
    lr = tifffile.imread(s / "lr.tif")
    tifffile.imwrite(path, lr, imagej=True, resolution=(1 / 0.2, 1 / 0.2),
                     metadata={"unit": "inch"})
    return path


def _other_hr(d: Path, s: Path) -> Path:
    """Another image of the HR's size and pixel size (the HR mirrored)."""
    from srbio.io import read_image, write_tiff

    hr, spacing = read_image(s / "hr" / "hr.tif")
    return write_tiff(d / "other_hr.tif", np.ascontiguousarray(hr[::-1]), spacing=spacing)


def _write8(path: Path) -> Path:
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 250, (48, 56)).astype(np.uint8))
    return path


def _afile(d: Path) -> Path:
    (d / "notes.txt").write_text("notes")
    return d / "notes.txt"


def _ckpt(path: Path) -> Path:
    torch.save({"epoch": 3, "global_step": 12, "pytorch-lightning_version": "2.5.0",
                "state_dict": {"net.w": torch.zeros(2)}}, path)
    return path


def _onnx(path: Path) -> Path:
    path.write_bytes(b"\x08\x07\x12\x07pytorch")  # the start of an ONNX protobuf
    return path
