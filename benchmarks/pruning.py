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
Held-out PSNR / SSIM after a per-method linear fit; speed is fp32 inference on a 128² LR
image (× the parent's), measured after all training, the networks taking turns for
--rounds rounds (the best of each): the ratios do not depend on when the machine was busy.
``--speed-only`` prints only the FLOPs and speed columns (no training).

    python benchmarks/pruning.py [--parent-steps 1500] [--tune-steps 500] [--speed-only]
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


def speeds(params: dict[str, dict[str, int]], rounds: int) -> dict[str, float]:
    """Output Mpx/s of each RCAN, fp32 on the CPU, the networks taking turns ``rounds`` times."""
    torch.manual_seed(0)
    nets = {k: build_network("rcan", scale=2, params=v) for k, v in params.items()}
    best = dict.fromkeys(nets, 0.0)
    for _ in range(rounds):
        for k, net in nets.items():
            best[k] = max(best[k], inference_mpx_per_s(net, torch.device("cpu"), 2, bf16=False,
                                                       side=128))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parent-steps", type=int, default=1500)
    p.add_argument("--tune-steps", type=int, default=500)
    p.add_argument("--parent", default="4,6,32", help="G,B,C of the parent")
    p.add_argument("--rounds", type=int, default=5, help="turns of the speed measurement")
    p.add_argument("--speed-only", action="store_true", help="FLOPs and speed, no training")
    a = p.parse_args()
    g, b, c = (int(v) for v in a.parent.split(","))
    rows = children(g, b, c)
    params = {k: {**v, "reduction": 8} for k, v in rows.items()}
    if a.speed_only:
        print_costs(params, speeds(params, a.rounds))
        return
    with tempfile.TemporaryDirectory(prefix="srbio-pruning-") as tmp_name:
        tmp = Path(tmp_name)
        cfg, patches, norm, crop = prepare(tmp)
        budget = cfg.train.model_copy(update={"epochs": 1000, "max_steps": a.parent_steps})
        model = {k: ModelConfig(name="rcan", params=v) for k, v in params.items()}
        parent = run_train(patches, norm, tmp / "parent", model["parent"], budget,
                           progress=False)
        tune = budget.model_copy(update={"max_steps": a.tune_steps,
                                         "init_from": str(parent.model)})
        print(f"parent RCAN G {g} × B {b} × C {c} trained {a.parent_steps} steps; every row "
              f"fine-tuned {a.tune_steps} steps from it; demo held-out band, linear fit")
        scores = {}
        for k, (label, m) in enumerate(model.items()):
            out = run_train(patches, norm, tmp / "tuned" / str(k), m, tune, progress=False)
            ev = run_evaluate(out.model, [crop], tmp / "evaluate" / str(k), cfg.split,
                              cfg.predict)
            scores[label] = ev.mean_fitted["network"]
            print(f"{label}: {scores[label].psnr:.2f} dB, SSIM {scores[label].ssim:.3f}",
                  flush=True)
        bic = ev.mean_fitted["bicubic"]
        print(f"bicubic after its fit: {bic.psnr:.2f} dB, SSIM {bic.ssim:.3f}")
    print_costs(params, speeds(params, a.rounds), scores)


def print_costs(params: dict[str, dict[str, int]], speed: dict[str, float],
                scores: dict | None = None) -> None:
    """The table: FLOPs and speed of each row (× the parent's), and its scores when trained."""
    print("| model | G × B × C | FLOP / px | FLOPs | speed-up | PSNR | ΔPSNR | SSIM | ΔSSIM "
          "| practice notes (FLOPs, speed, ΔPSNR) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    flops = {k: flops_per_output_pixel("rcan", scale=2, params=v) for k, v in params.items()}
    for label, r in params.items():
        cells = ["—"] * 4
        if scores:
            s, first = scores[label], scores["parent"]
            cells = [f"{s.psnr:.2f}", f"{s.psnr - first.psnr:+.2f}", f"{s.ssim:.3f}",
                     f"{s.ssim - first.ssim:+.3f}"]
        print(f"| {label} | {r['n_groups']} × {r['n_blocks']} × {r['n_feats']} | "
              f"{flops[label]:,.0f} | {100 * (flops[label] / flops['parent'] - 1):+.0f} % | "
              f"{speed[label] / speed['parent']:.2f}× | {' | '.join(cells)} | "
              f"{NOTES.get(label, '—')} |", flush=True)


if __name__ == "__main__":
    main()
