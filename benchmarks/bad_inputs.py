"""Bad inputs through the CLI: how each case ends, for this checkout or another srbio checkout.

Each case runs `python -m srbio ...` in a fresh process on files made for it, and is classed:

  clear      exit 2 (128 + n after a signal), the message names the file or value; for two
             writers at once: one ran, the other was refused naming it
  correct    exit 0 and the result checked right (inputs srbio must read, not refuse)
  warned     exit 0 with a warning on stderr (for inputs that are legal but suspicious)
  traceback  exit 1 / a Python traceback reached the user
  killed     ended by a signal without a word
  silent     exit 0 and nothing said: a wrong result that looks right, or data lost
  timeout    still running after --timeout seconds

The cases of data safety round two (issue 22: concurrent writers, metadata, absurd pixel
sizes, signals, broken models, configuration, tracebacks), and class 8 (models that travel:
bioimage.io export settings, provenance of foreign files) are in ``_bad_round2.py``, their
names starting with the class number.

`destroyed` is added when a file that was there before (an input, or a foreign file in the
way) changed or vanished. Compare two versions with the same cases:

    python benchmarks/bad_inputs.py                         # this checkout
    python benchmarks/bad_inputs.py --srbio /path/to/old    # another checkout (PYTHONPATH)
    python benchmarks/bad_inputs.py --only 6                # one class of round two
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _bad_round2
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


Case = tuple[str, Callable[[Path, Path], tuple]]


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
                       cwd=env["PYTHONPATH"],
                       capture_output=True)


_UNRELATED = ("carried a digest",)  # warnings every run of an old-format model gives


def classify(code: int | None, err: str) -> str:
    if code is None:
        return "timeout"
    if code < 0:
        return "killed, no message"
    if "Traceback" in err:
        return "traceback"
    if code == 2 or (code > 128 and "stopped by" in err):
        return "clear"
    if code != 0:
        return "traceback"
    warnings = [ln for ln in err.splitlines() if "WARNING" in ln
                and not any(u in ln for u in _UNRELATED)]
    return "warned" if warnings else "silent"


def _start(args: list[str], env: dict) -> subprocess.Popen:
    # run in the checkout under test: `python -m` looks in the working folder first
    return subprocess.Popen([sys.executable, "-m", "srbio", *args], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=env["PYTHONPATH"])


def _wait(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.01)


def run_case(args: list[str], extra: dict, env: dict, timeout: float, d: Path
             ) -> tuple[str, str]:
    """Run one case; its verdict and the last line of what it said."""
    first = _start(args, env)
    second = None
    if "together" in extra:  # once the first holds its lock (versions without locks: 3 s)
        _wait(extra["wait_for"], first, 3.0)
        second = _start(extra["together"], env)
    if "signal" in extra:
        _wait(extra["signal"][1], first, timeout)
        first.send_signal(extra["signal"][0])
    try:
        err = first.communicate(timeout=timeout)[1]
        code: int | None = first.returncode
    except subprocess.TimeoutExpired:
        first.kill()
        code, err = None, ""
    verdict = classify(code, err)
    if second is not None:
        err2 = second.communicate(timeout=timeout)[1]
        pair = {verdict, classify(second.returncode, err2)}
        verdict = ("clear" if pair == {"clear", "silent"} else  # one ran, the other refused
                   "silent" if pair == {"silent"} else " / ".join(sorted(pair)))
        err = err2 if second.returncode else err
    elif verdict == "silent" and "check" in extra:
        verdict = "correct" if extra["check"](d) else "silent"
    last = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or [""]
    return verdict, last[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--srbio", type=Path, default=ROOT, help="srbio checkout to test")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--only", help="only the cases whose name starts with this (e.g. 6)")
    a = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(a.srbio.resolve())}
    print(f"srbio under test: {a.srbio.resolve()}")
    with tempfile.TemporaryDirectory(prefix="srbio-bad-") as tmp:
        sample = Path(tmp) / "sample"
        shared(sample, env)
        counts: dict[str, int] = {}
        chosen = cases() + _bad_round2.cases(predict, train, imagej, stack, model_v1)
        for name, make in chosen:
            if a.only and not name.startswith(a.only):
                continue
            d = Path(tmp) / name.replace(" ", "_").replace("/", "_")
            d.mkdir()
            model_v1(d / "m.pt")
            made = make(d, sample)
            args, keep, extra = (*made, {})[:3]
            before = {k: digest(k) for k in keep}
            verdict, last = run_case(args, extra, env, a.timeout, d)
            if any(digest(k) != v for k, v in before.items()):
                verdict += " + destroyed"
            counts[verdict] = counts.get(verdict, 0) + 1
            print(f"{name:52s} {verdict:22s} {last[:110]}", flush=True)
        print("\n" + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
