"""Pruning RCAN and fine-tuning it, measured beside the RCAN practice notes' table.

The practice notes (RCAN paper G = 10 groups × B = 20 blocks × C = 64 channels) expect:
blocks halved −40 % FLOPs, 1.2× faster, ≈ −0.05 dB; groups halved −50 %, 1.5×, ≈ −0.1 dB;
both −75 %, 2×, ≈ −0.15 dB; channels −25 % / −50 %: 1.2× / 1.5× faster.

A CPU cannot train the paper network in minutes, so the parent here is a scaled-down RCAN
(default G 4 × B 6 × C 32). It is trained on the demo's data for --parent-steps; each
pruned child (blocks halved, groups halved, both, channels −25 % and −50 %) starts from it
with ``train.init_from`` (the first groups and blocks; the leading channels) and is
fine-tuned for --tune-steps, as is the parent itself (so every row has had the same
training; steps, not minutes, so the quality columns do not depend on the machine's load).
Held-out PSNR / SSIM after a per-method linear fit; speed is fp32 inference on a 96² LR
image in the same run (× the parent's).

    python benchmarks/pruning.py [--parent-steps 1500] [--tune-steps 500]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from networks import inference_mpx_per_s
from train_budget import prepare

from srbio.config import ModelConfig
from srbio.models import build_network
from srbio.models.summary import flops_per_output_pixel
from srbio.stages.evaluate import run_evaluate
from srbio.stages.train import run_train

NOTES = {"blocks ½": "−40 %, 1.2×, ≈ −0.05 dB", "groups ½": "−50 %, 1.5×, ≈ −0.1 dB",
         "both ½": "−75 %, 2×, ≈ −0.15 dB", "channels −25 %": "1.2×",
         "channels −50 %": "1.5×"}


def children(g: int, b: int, c: int) -> dict[str, dict[str, int]]:
    """The parent and its pruned presets, as RCAN parameters."""
    return {"parent": {"n_groups": g, "n_blocks": b, "n_feats": c},
            "blocks ½": {"n_groups": g, "n_blocks": b // 2, "n_feats": c},
            "groups ½": {"n_groups": g // 2, "n_blocks": b, "n_feats": c},
            "both ½": {"n_groups": g // 2, "n_blocks": b // 2, "n_feats": c},
            "channels −25 %": {"n_groups": g, "n_blocks": b, "n_feats": 3 * c // 4},
            "channels −50 %": {"n_groups": g, "n_blocks": b, "n_feats": c // 2}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parent-steps", type=int, default=1500)
    p.add_argument("--tune-steps", type=int, default=500)
    p.add_argument("--parent", default="4,6,32", help="G,B,C of the parent")
    a = p.parse_args()
    g, b, c = (int(v) for v in a.parent.split(","))
    rows = children(g, b, c)
    with tempfile.TemporaryDirectory(prefix="srbio-pruning-") as tmp_name:
        tmp = Path(tmp_name)
        cfg, patches, norm, crop = prepare(tmp)
        budget = cfg.train.model_copy(update={"epochs": 1000, "max_steps": a.parent_steps})
        model = {k: ModelConfig(name="rcan", params={**v, "reduction": 8})
                 for k, v in rows.items()}
        parent = run_train(patches, norm, tmp / "parent", model["parent"], budget,
                           progress=False)
        tune = budget.model_copy(update={"max_steps": a.tune_steps,
                                         "init_from": str(parent.model)})
        print(f"parent RCAN G {g} × B {b} × C {c} trained {a.parent_steps} steps; every row "
              f"fine-tuned {a.tune_steps} steps from it; demo held-out band, linear fit")
        print("| model | G × B × C | FLOP / px | FLOPs | speed-up | PSNR | ΔPSNR | SSIM | ΔSSIM "
              "| practice notes (FLOPs, speed, ΔPSNR) |")
        print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
        first = None
        for k, (label, m) in enumerate(model.items()):
            out = run_train(patches, norm, tmp / "tuned" / str(k), m, tune, progress=False)
            ev = run_evaluate(out.model, [crop], tmp / "evaluate" / str(k), cfg.split,
                              cfg.predict)
            flops = flops_per_output_pixel("rcan", scale=2, params=m.params)
            torch.manual_seed(0)
            speed = inference_mpx_per_s(build_network("rcan", scale=2, params=m.params),
                                        torch.device("cpu"), 3, bf16=False)
            scores = ev.mean_fitted["network"]
            first = first or (flops, speed, scores)
            r = rows[label]
            print(f"| {label} | {r['n_groups']} × {r['n_blocks']} × {r['n_feats']} | "
                  f"{flops:,.0f} | {100 * (flops / first[0] - 1):+.0f} % | "
                  f"{speed / first[1]:.2f}× | {scores.psnr:.2f} | "
                  f"{scores.psnr - first[2].psnr:+.2f} | {scores.ssim:.3f} | "
                  f"{scores.ssim - first[2].ssim:+.3f} | {NOTES.get(label, '—')} |", flush=True)
        bic = ev.mean_fitted["bicubic"]
        print(f"bicubic after its fit: {bic.psnr:.2f} dB, SSIM {bic.ssim:.3f}")


if __name__ == "__main__":
    main()
