"""Tiled prediction: throughput (output Mpx/s) and peak memory, against a baseline, same run.

Runs `srbio predict` in a fresh process for each case (so peak RSS is that of the case alone):
  * demo volume (LR simulated from the bundled sample), tiled 128/16 — the workflow default;
  * the same volume with one tile per plane (no tiling, no overlap) — the baseline;
  * a 16x larger chunked zarr volume (the LR tiled 4x4 laterally), tiled — memory must not
    grow with the volume.
Weights are random (throughput does not depend on them).

    python benchmarks/predict_throughput.py [--preset small] [--planes 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import zarr

from srbio.config import SimulateParams
from srbio.io import read_image
from srbio.io.modelfile import save_model_file
from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, Prediction, Range
from srbio.models import build_network
from srbio.stages.simulate import run_simulate

ROOT = Path(__file__).resolve().parents[1]


def predict(model: Path, src: Path, out: Path, tile: int, overlap: int) -> dict:
    cmd = [sys.executable, "-m", "srbio", "predict", "--model", str(model), "--input", str(src),
           "--output", str(out), "--tile", str(tile), str(tile), "--overlap", str(overlap),
           "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    rec = Prediction.read(out.with_suffix("").with_suffix(".json")).model_dump()
    return {**rec, "output_megapixels": float(np.prod(rec["output_shape"])) / 1e6}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--planes", type=int, default=10, help="planes of the large volume")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="srbio-bench-") as tmp:
        run_cases(Path(tmp), a)


def run_cases(tmp: Path, a: argparse.Namespace) -> None:
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset=a.preset)
    norm = Normalisation(lr=Range(vmin=90.0, vmax=450.0), hr=Range(vmin=90.0, vmax=520.0))
    header = ModelHeader(network=NetworkSpec.from_config(net.config), normalisation=norm,
                         provenance={"benchmark": True})
    model = save_model_file(tmp / "model.pt", header, net.state_dict())
    sim = run_simulate(ROOT / "data" / "sample" / "lls_hr.tif", tmp / "sim", SimulateParams(seed=1))
    lr, spacing = read_image(sim.lr)
    big = np.tile(lr[: a.planes], (1, 4, 4))
    store = zarr.create_array(str(tmp / "big.zarr"), shape=big.shape, dtype=big.dtype,
                              chunks=(1, 256, 256))
    store[:] = big
    store.attrs.update({"axes": ["z", "y", "x"], "spacing": list(spacing)})

    cases = [("demo volume, tiled 256/16 (default)", sim.lr, 256, 16),
             ("demo volume, tiled 128/16", sim.lr, 128, 16),
             ("demo volume, one tile per plane (baseline)", sim.lr, 4096, 0),
             (f"{big.shape} zarr (16x the plane area), tiled 256/16", tmp / "big.zarr", 256, 16)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, preset {a.preset}")
    print(f"{'case':58s} {'out Mpx':>8s} {'s':>7s} {'Mpx/s':>7s} {'peak RSS MB':>12s}")
    rows = []
    for i, (label, src, tile, overlap) in enumerate(cases):
        st = predict(model, src, tmp / f"out{i}.ome.zarr", tile, overlap)
        rows.append(st)
        print(f"{label:58s} {st['output_megapixels']:8.2f} {st['seconds']:7.1f} "
              f"{st['megapixels_per_second']:7.3f} {st['peak_rss_mb']:12.0f}")
    default, baseline, big_case = rows[0], rows[2], rows[3]
    ratio = default["megapixels_per_second"] / baseline["megapixels_per_second"]
    print(f"default tiling / one tile per plane, throughput: {ratio:.2f}")
    print(f"large-plane tiling / one tile per plane, throughput: "
          f"{big_case['megapixels_per_second'] / baseline['megapixels_per_second']:.2f}")
    print(f"peak RSS, 16x larger planes / demo: "
          f"{big_case['peak_rss_mb'] / default['peak_rss_mb']:.2f} "
          f"(output size ratio {big_case['output_megapixels'] / default['output_megapixels']:.1f})")


if __name__ == "__main__":
    main()
