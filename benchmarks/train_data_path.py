"""Training's data path: memory does not grow with the patch store, and the share of step
time spent waiting for data, with 0 and 2 loader workers.

Builds patch stores of real patches (random crops of the bundled sample: HR 48², LR its 2×2
mean) of --small patches (the demo's number: kept in memory a shard at a time once read) and
--large patches (over the 256 MiB cache bound: read a patch at a time), then runs `srbio
train` (RCAN small, batch 16, a wall time of --seconds) in a fresh process per case and
reports the peak RSS of its largest process, training.json's data_wait_share (mean over
epochs, the first one included) and the optimiser steps done. The baseline is the store's
uncompressed size: what loading it whole (srbio ≤ 0.2) added to memory.

    python benchmarks/train_data_path.py [--small 2000 --large 200000 --seconds 60]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from srbio.io import read_image
from srbio.io.patches import write_patches
from srbio.io.records import Normalisation, Patches, Range, Training

ROOT = Path(__file__).resolve().parents[1]


def make_store(path: Path, n: int, rng: np.random.Generator) -> int:
    """A patch store of ``n`` training and 256 validation patches; returns its raw bytes."""
    image, _ = read_image(ROOT / "data" / "sample" / "lls_hr.tif")
    arrays = {}
    for part, count in (("train", n), ("val", 256)):
        hr = np.empty((count, 48, 48), np.uint16)
        for start in range(0, count, 4096):  # in blocks: the sample is small, the store is not
            k = min(4096, count - start)
            z = rng.integers(0, image.shape[0], k)
            y = rng.integers(0, image.shape[1] - 48, k)
            x = rng.integers(0, image.shape[2] - 48, k)
            hr[start:start + k] = np.stack([image[a, b:b + 48, c:c + 48]
                                            for a, b, c in zip(z, y, x, strict=True)])
        lr = hr.reshape(count, 24, 2, 24, 2).mean(axis=(2, 4)).astype(np.uint16)
        arrays[f"{part}/lr"], arrays[f"{part}/hr"] = lr, hr
    write_patches(path, arrays)
    Patches(store=str(path), scale=2, size=24, counts={k: len(v) for k, v in arrays.items()},
            pairs=["sample"], split={}).write(path.with_suffix(".json"))
    return sum(a.nbytes for a in arrays.values())


WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
           "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def train(store: Path, norm: Path, out: Path, workers: int, seconds: float) -> dict:
    """`srbio train` in a child process: the peak RSS (MB) of its largest process (the
    trainer, or a loader worker) and the data-wait share."""
    settings = {"model": {"name": "rcan", "preset": "small"},
                "train": {"epochs": 1000, "batch_size": 16, "num_workers": workers,
                          "max_minutes": seconds / 60}}
    cmd = [sys.executable, "-m", "srbio", "train", "--patches", str(store), "--normalisation",
           str(norm), "--out", str(out), "--settings", json.dumps(settings), "--quiet"]
    # a wrapper process per case: ru_maxrss of its children is this case's alone
    r = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], check=True, capture_output=True,
                       text=True)
    record = Training.read(out / "training.json")
    import csv

    with next((out / "logs").glob("version_*/metrics.csv")).open() as f:
        steps = max(int(row["step"]) for row in csv.DictReader(f)) + 1
    return {"peak_rss_mb": int(r.stdout.split()[-1]) / 1024, "wait": record.data_wait_share,
            "steps": steps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=2_000)
    p.add_argument("--large", type=int, default=200_000)
    p.add_argument("--seconds", type=float, default=60.0)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="srbio-data-") as tmp_name:
        tmp = Path(tmp_name)
        norm = tmp / "normalisation.json"
        Normalisation(lr=Range(vmin=95, vmax=900), hr=Range(vmin=95, vmax=1000)).write(norm)
        print(f"{'patches':>8s} {'raw MB':>7s} {'workers':>7s} {'peak RSS MB':>11s} "
              f"{'data wait':>9s} {'steps':>6s}  (steps: optimiser steps in the time budget)")
        for n in (a.small, a.large):
            store = tmp / f"p{n}.zarr"
            raw = make_store(store, n, rng) / 1e6
            for workers in (0, 2):
                r = train(store, norm, tmp / f"t{n}-{workers}", workers, a.seconds)
                print(f"{n:8d} {raw:7.0f} {workers:7d} {r['peak_rss_mb']:11.0f} "
                      f"{100 * r['wait']:8.1f}% {r['steps']:6d}", flush=True)


if __name__ == "__main__":
    main()
