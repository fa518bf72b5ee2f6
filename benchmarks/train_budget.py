"""Quality at a fixed CPU budget: several networks trained for the same wall time on the
bundled sample, scored on its held-out region against bicubic (fixed normalisation and
after a per-method linear fit).

Prepares the demo's data once (simulate → register → crop → normalise → patches, the demo
configuration), then trains each network for --minutes of wall time (train.max_minutes;
best validation checkpoint kept) and evaluates it. Prints one table.

    python benchmarks/train_budget.py [--minutes 5] [--only rcan-small,rlfn]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from srbio.config import ModelConfig, load_config
from srbio.io.records import Training
from srbio.stages.crop import run_crop
from srbio.stages.evaluate import run_evaluate
from srbio.stages.prepare import run_normalise, run_patches
from srbio.stages.register import run_register
from srbio.stages.simulate import run_simulate
from srbio.stages.train import run_train

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = {
    "rcan-small": ModelConfig(name="rcan", preset="small"),
    "rcan-pruned-c32": ModelConfig(name="rcan", preset="pruned-c32"),
    "edsr-baseline": ModelConfig(name="edsr", preset="baseline"),
    "rlfn-paper": ModelConfig(name="rlfn", preset="paper"),
    "a2n-paper": ModelConfig(name="a2n", preset="paper"),
}


def prepare(tmp: Path):
    """The demo's patches and crop, in ``tmp``; returns (config, patches, norm, crop)."""
    cfg = load_config(ROOT / "config.yaml")
    sim, pair = cfg.simulate[0], cfg.pairs[0]
    run_simulate(ROOT / sim.hr, tmp / "sim", sim)
    run_register(ROOT / pair.hr, tmp / "sim" / "lr.tif", tmp / "register", cfg.registration,
                 truth=tmp / "sim" / "truth.tfm")
    run_crop(tmp / "register", ROOT / pair.hr, tmp / "crop", cfg=cfg.crop)
    run_normalise([tmp / "crop"], tmp / "normalisation.json", cfg.normalise, cfg.split)
    run_patches([tmp / "crop"], tmp / "patches.zarr", cfg.patches, cfg.split)
    return cfg, tmp / "patches.zarr", tmp / "normalisation.json", tmp / "crop"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--only", default="", help="comma-separated labels of " + ", ".join(CANDIDATES))
    a = p.parse_args()
    labels = [k for k in CANDIDATES if not a.only or k in a.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="srbio-budget-") as tmp_name:
        tmp = Path(tmp_name)
        cfg, patches, norm, crop = prepare(tmp)
        train_cfg = cfg.train.model_copy(update={"epochs": 1000, "max_minutes": a.minutes})
        rows = []
        for label in labels:
            start = time.perf_counter()
            out = run_train(patches, norm, tmp / "train" / label, CANDIDATES[label], train_cfg,
                            progress=False)
            ev = run_evaluate(out.model, [crop], tmp / "evaluate" / label, cfg.split, cfg.predict)
            rows.append((label, Training.read(out.record), ev, time.perf_counter() - start))
            print_rows(rows, a.minutes)


def print_rows(rows, minutes: float) -> None:
    """The table so far (printed after every network, so a long run shows progress)."""
    print(f"\n{minutes:g} min of training each; held-out region of the demo; gains over "
          "bicubic in dB (PSNR) and absolute (SSIM); fit: after a per-method linear fit")
    print(f"{'network':16s} {'params':>9s} {'epochs':>6s} {'PSNR':>6s} {'ΔPSNR':>6s} "
          f"{'ΔSSIM':>6s} {'PSNR fit':>8s} {'ΔPSNR fit':>9s} {'ΔSSIM fit':>9s} {'Mpx/s':>6s}")
    for label, tr, ev, _ in rows:
        net, bic = ev.mean["network"], ev.mean["bicubic"]
        fnet, fbic = ev.mean_fitted["network"], ev.mean_fitted["bicubic"]
        print(f"{label:16s} {tr.parameters:9,d} {len(tr.epochs):6d} {net.psnr:6.2f} "
              f"{net.psnr - bic.psnr:+6.2f} {net.ssim - bic.ssim:+6.3f} {fnet.psnr:8.2f} "
              f"{fnet.psnr - fbic.psnr:+9.2f} {fnet.ssim - fbic.ssim:+9.3f} "
              f"{ev.network_megapixels_per_second:6.3f}", flush=True)
    bic, fbic = rows[0][2].mean["bicubic"], rows[0][2].mean_fitted["bicubic"]
    print(f"bicubic: PSNR {bic.psnr:.2f} dB, SSIM {bic.ssim:.3f}; after its fit "
          f"{fbic.psnr:.2f} dB, {fbic.ssim:.3f}")


if __name__ == "__main__":
    main()
