"""Bad inputs through the CLI: how each case ends, for this checkout or another srbio checkout.

Each case runs `python -m srbio ...` in a fresh process on files made for it, and is classed:

  clear      exit 2, the message names the file or value (what srbio promises)
  warned     exit 0 with a warning on stderr (for inputs that are legal but suspicious)
  traceback  exit 1 / a Python traceback reached the user
  silent     exit 0 and nothing said: a wrong result that looks right, or data lost
  timeout    still running after --timeout seconds

`destroyed` is added when a file that was there before (an input, or a foreign file in the
way) changed or vanished. Compare two versions with the same cases:

    python benchmarks/bad_inputs.py                         # this checkout
    python benchmarks/bad_inputs.py --srbio /path/to/old    # another checkout (PYTHONPATH)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
import torch
import zarr

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "lls_hr.tif"


def digest(path: Path) -> str:
    if not path.exists():
        return "absent"
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def model_v1(path: Path, scale: int = 2, header_scale: int | None = None,
             drop: str | None = None, name: str = "rcan") -> Path:
    """A tiny RCAN (or ``name``) in the srbio-model/1 format, which every srbio version reads."""
    from srbio.models import build_network

    torch.manual_seed(0)
    net = build_network(name, scale=scale, preset="tiny")
    config = dict(net.config) | ({"scale": header_scale} if header_scale else {})
    payload = {"format": "srbio-model/1", "network": config, "state_dict": net.state_dict(),
               "normalisation": {"lr": [90.0, 450.0], "hr": [90.0, 520.0]}, "spacing": None,
               "provenance": {}}
    if drop:
        payload.pop(drop)
    torch.save(payload, path)
    return path


def stack(n: int = 4, h: int = 48, w: int = 56) -> np.ndarray:
    return np.random.default_rng(0).integers(100, 900, (n, h, w)).astype(np.uint16)


def imagej(path: Path, data: np.ndarray, compression: str | None = None) -> Path:
    tifffile.imwrite(path, data, imagej=True, resolution=(5, 5), compression=compression,
                     metadata={"axes": "ZYX" if data.ndim == 3 else "YX", "unit": "um",
                               "spacing": 0.5})
    return path


def truncated(path: Path, compression: str | None) -> Path:
    imagej(path, stack(), compression)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def missing_chunk(path: Path) -> Path:
    arr = zarr.create_array(str(path), shape=(2, 48, 56), chunks=(1, 24, 28), dtype="uint16")
    arr[:] = stack(2)
    arr.attrs.update({"axes": ["z", "y", "x"], "spacing": [0.5, 0.2, 0.2]})
    os.remove(path / "c" / "1" / "1" / "0")
    return path


def torn_chunk(path: Path, shards: bool = False) -> Path:
    """A zarr input whose one chunk (or shard) file was cut short, as by a killed writer."""
    arr = zarr.create_array(str(path), shape=(2, 48, 56), chunks=(1, 24, 28), dtype="uint16",
                            shards=(1, 48, 56) if shards else None)
    arr[:] = stack(2)
    arr.attrs.update({"axes": ["z", "y", "x"], "spacing": [0.5, 0.2, 0.2]})
    victim = path / "c" / "1" / "0" / "0"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    return path


def channels(path: Path) -> Path:
    """An OME-Zarr image with three channels (czyx)."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.create_array("0", data=np.stack([stack(2)] * 3), chunks=(1, 1, 48, 56))
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 0.5, 0.2, 0.2]}]}]}]}
    return path


def other_job(d: Path, src: Path, out: Path) -> Path:
    """A finished prediction at ``out`` made with other tiles (another job's store)."""
    subprocess.run([sys.executable, "-m", "srbio", *predict(d, src, out, "--tile", "24", "24")],
                   check=True, capture_output=True)
    return out


def foreign(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "thesis.txt").write_text("years of work")
    return path


def ome_input(path: Path) -> Path:
    from srbio.io import create_ome_zarr

    create_ome_zarr(path, shape=(2, 48, 56), dtype="uint16", chunks=(1, 48, 56),
                    spacing=(0.5, 0.2, 0.2))[:] = stack(2)
    return path


Case = tuple[str, Callable[[Path, Path], tuple[list[str], list[Path]]]]


def predict(d: Path, src: Path, out: Path, *extra: str, model: Path | None = None) -> list[str]:
    return ["predict", "--model", str(model or d / "m.pt"), "--input", str(src), "--output",
            str(out), "--quiet", *extra]


def train(s: Path, d: Path, settings: dict) -> list[str]:
    """`srbio train` on the shared patches with ``settings`` over one epoch of a tiny RCAN."""
    import json

    base = {"model": {"preset": "tiny"}, "train": {"epochs": 1}}
    merged = {k: {**base.get(k, {}), **settings.get(k, {})} for k in {*base, *settings}}
    return ["train", "--patches", str(s / "patches.zarr"), "--normalisation",
            str(s / "normalisation.json"), "--out", str(d / "train"), "--settings",
            json.dumps(merged), "--quiet"]


def cases() -> list[Case]:
    """(name, make(dir, sample_dir) -> (CLI arguments, paths that must survive))."""
    def c(f):  # a case's maker
        return f

    return [
        ("predict onto an unrelated folder", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), foreign(d / "mine")), [d / "mine"]))),
        ("predict onto its own zarr input", c(lambda d, s: (
            predict(d, ome_input(d / "in.ome.zarr"), d / "in.ome.zarr"), [d / "in.ome.zarr"]))),
        ("normalise onto an existing TIFF", c(lambda d, s: (
            ["normalise", "--crops", str(s / "crop"), "--out",
             str(imagej(d / "keep.tif", stack()[0]))], [d / "keep.tif"]))),
        ("patches onto the crop folder", c(lambda d, s: (
            ["patches", "--crops", str(s / "crop"), "--out", str(s / "crop")], [s / "crop"]))),
        ("crop onto the folder holding the HR", c(lambda d, s: (
            ["crop", "--registered", str(s / "reg"), "--hr", str(s / "hr" / "hr.tif"),
             "--out", str(s / "hr")], [s / "hr"]))),
        ("truncated compressed TIFF", c(lambda d, s: (
            predict(d, truncated(d / "cut.tif", "zlib"), d / "o.ome.zarr"), []))),
        ("truncated uncompressed 4-plane TIFF", c(lambda d, s: (
            predict(d, truncated(d / "cut.tif", None), d / "o.ome.zarr"), []))),
        ("RGB (YXS) TIFF", c(lambda d, s: (
            predict(d, _write(d / "rgb.tif", np.zeros((48, 56, 3), np.uint8)), d / "o.ome.zarr",
                    "--spacing", "1", "0.2", "0.2"), []))),
        ("multi-channel (CYX) TIFF", c(lambda d, s: (
            predict(d, _write(d / "c.tif", stack(6), imagej=True, metadata={"axes": "CYX"}),
                    d / "o.ome.zarr", "--spacing", "1", "0.2", "0.2"), []))),
        ("zarr with a missing chunk", c(lambda d, s: (
            predict(d, missing_chunk(d / "v.zarr"), d / "o.ome.zarr"), [d / "v.zarr"]))),
        ("constant input", c(lambda d, s: (
            predict(d, imagej(d / "flat.tif", np.full((48, 56), 7, np.uint16)), d / "o.ome.zarr"),
            []))),
        ("model file without its state_dict", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr", model=model_v1(
                d / "bad.pt", drop="state_dict")), []))),
        ("model header scale 3, weights scale 2", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr", model=model_v1(
                d / "bad.pt", header_scale=3)), []))),
        ("--device cuda without CUDA", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr", "--device", "cuda"), []))),
        ("--tile 0 0", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr", "--tile", "0", "0"), []))),
        ("--tile 1 1", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), d / "o.ome.zarr", "--tile", "1", "1",
                    "--overlap", "0"), []))),
        ("train an unknown network", c(lambda d, s: (
            train(s, d, {"model": {"name": "srgann"}}), []))),
        ("a network at a scale it cannot do", c(lambda d, s: (
            ["models", "--network", "rlfn", "--scale", "5"], []))),
        ("train with a missing VGG weights file", c(lambda d, s: (
            train(s, d, {"train": {"perceptual": {"weights": str(d / "vgg19.pth")}}}), []))),
        ("fine-tune from a model of another scale", c(lambda d, s: (
            train(s, d, {"train": {"init_from": str(model_v1(d / "x3.pt", scale=3))}}), []))),
        ("export a model file that is not there", c(lambda d, s: (
            ["export", "--model", str(d / "none.pt"), "--out", str(d / "exported")], []))),
        ("zarr with a torn chunk", c(lambda d, s: (
            predict(d, torn_chunk(d / "v.zarr"), d / "o.ome.zarr"), [d / "v.zarr"]))),
        ("zarr with a torn shard", c(lambda d, s: (
            predict(d, torn_chunk(d / "v.zarr", shards=True), d / "o.ome.zarr"), [d / "v.zarr"]))),
        ("multi-channel OME-Zarr", c(lambda d, s: (
            predict(d, channels(d / "c.ome.zarr"), d / "o.ome.zarr"), [d / "c.ome.zarr"]))),
        ("predict onto another job's store", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), other_job(d, d / "in.tif", d / "o.ome.zarr")),
            [d / "o.ome.zarr", d / "in.tif"]))),
        ("resume a store with a model of another scale", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()), other_job(d, d / "in.tif", d / "o.ome.zarr"),
                    "--part", "1/2", model=model_v1(d / "x3.pt", scale=3)),
            [d / "o.ome.zarr", d / "in.tif"]))),
        ("3D model on a 2D plane", c(lambda d, s: (
            predict(d, imagej(d / "in.tif", stack()[0]), d / "o.ome.zarr",
                    model=model_v1(d / "m3.pt", name="rcan3d")), [d / "in.tif"]))),
        ("register with a missing --truth file", c(lambda d, s: (
            ["register", "--fixed", str(s / "hr" / "hr.tif"), "--moving", str(s / "lr.tif"),
             "--out", str(d / "reg"), "--truth", str(d / "none.tfm"), "--transform", "rigid"],
            []))),
    ]


def _write(path: Path, data: np.ndarray, **kw) -> Path:
    tifffile.imwrite(path, data, **kw)
    return path


def shared(sample: Path, env: dict) -> None:
    """A registered and cropped real 2D pair, made with the srbio under test."""
    from srbio.config import SimulateParams
    from srbio.io import read_image, write_tiff
    from srbio.stages.simulate import run_simulate

    image, spacing = read_image(SAMPLE)
    (sample / "hr").mkdir(parents=True)
    write_tiff(sample / "hr" / "hr.tif", image[20], spacing=spacing[1:])
    sim = run_simulate(sample / "hr" / "hr.tif", sample / "sim", SimulateParams(seed=3))
    shutil.copy(sim.lr, sample / "lr.tif")
    for args in (["register", "--fixed", sample / "hr" / "hr.tif", "--moving", sample / "lr.tif",
                  "--out", sample / "reg", "--transform", "rigid"],
                 ["crop", "--registered", sample / "reg", "--hr", sample / "hr" / "hr.tif",
                  "--out", sample / "crop"],
                 ["normalise", "--crops", sample / "crop", "--out", sample / "normalisation.json"],
                 ["patches", "--crops", sample / "crop", "--out", sample / "patches.zarr",
                  "--settings", '{"patches": {"size": 16, "n_train": 64, "n_val": 16}}']):
        subprocess.run([sys.executable, "-m", "srbio", *map(str, args)], env=env, check=True,
                       capture_output=True)


def classify(code: int | None, err: str) -> str:
    if code is None:
        return "timeout"
    if "Traceback" in err or code not in (0, 2):
        return "traceback"
    if code == 2:
        return "clear"
    return "warned" if "WARNING" in err else "silent"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--srbio", type=Path, default=ROOT, help="srbio checkout to test")
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(a.srbio.resolve())}
    print(f"srbio under test: {a.srbio.resolve()}")
    with tempfile.TemporaryDirectory(prefix="srbio-bad-") as tmp:
        sample = Path(tmp) / "sample"
        shared(sample, env)
        for name, make in cases():
            d = Path(tmp) / name.replace(" ", "_").replace("/", "_")
            d.mkdir()
            model_v1(d / "m.pt")
            args, keep = make(d, sample)
            before = {k: digest(k) for k in keep}
            try:
                r = subprocess.run([sys.executable, "-m", "srbio", *args], env=env,
                                   capture_output=True, text=True, timeout=a.timeout)
                code, err = r.returncode, r.stderr
            except subprocess.TimeoutExpired:
                code, err = None, ""
            verdict = classify(code, err)
            if any(digest(k) != v for k, v in before.items()):
                verdict += " + destroyed"
            last = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or [""]
            print(f"{name:42s} {verdict:22s} {last[0][:110]}")


if __name__ == "__main__":
    main()
