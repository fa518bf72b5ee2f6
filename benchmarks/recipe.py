"""The demo's training recipe, one change at a time: the evidence table of README
*Choosing a network and a budget*.

Each variant trains on the demo's data (prepared as ``train_budget.py`` does) for the recipe's
``train.max_steps`` (550: steps, not minutes, so the figures do not depend on the machine's
load at a fixed thread count) with one change to the configuration, and is scored on the
held-out band after a per-method linear fit, against the fitted bicubic. A change to the
``patches`` section extracts the patches again with it.

    python benchmarks/recipe.py [--only recipe,no-dihedral] [--steps 550]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from train_budget import prepare

from srbio.config import ModelConfig
from srbio.io.records import Training
from srbio.stages.evaluate import run_evaluate
from srbio.stages.prepare import run_patches
from srbio.stages.train import run_train

# variant -> {section: {key: value}}; "model" replaces the network
VARIANTS: dict[str, dict[str, dict]] = {
    "recipe": {},
    "gain augmentation [0.5, 2]": {"train": {"gain_augment": (0.5, 2.0)}},
    "learning rate 1e-3": {"train": {"learning_rate": 1e-3}},
    "no dihedral": {"train": {"dihedral": False}},
    "min_foreground 0": {"patches": {"min_foreground": 0.0}},
    "min_foreground 0.3": {"patches": {"min_foreground": 0.3}},
    "patches 16² LR px": {"patches": {"size": 16}},
    "n_train 2000": {"patches": {"n_train": 2000}},
    "batch 32 (same pixels: half the steps)": {"train": {"batch_size": 32, "max_steps": 275}},
    "MSE loss": {"train": {"loss": {"mse": 1.0}}},
    "EMA 0.999": {"train": {"ema": 0.999}},
    "EDSR baseline": {"model": {"name": "edsr", "preset": "baseline"}},
    "A2N paper": {"model": {"name": "a2n", "preset": "paper"}},
    "RLFN paper": {"model": {"name": "rlfn", "preset": "paper"}},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated variants of: " + ", ".join(VARIANTS))
    p.add_argument("--steps", type=int, default=None, help="the budget (default: the config's)")
    a = p.parse_args()
    names = [v for v in VARIANTS if not a.only or v in a.only.split(",")]
    print("| change (from the recipe) | steps | fitted PSNR / SSIM | over the fitted bicubic "
          "| training (s) |")
    print("|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="srbio-recipe-") as tmp_name:
        tmp = Path(tmp_name)
        cfg, patches, norm, crop = prepare(tmp)
        for k, name in enumerate(names):
            change = VARIANTS[name]
            train = cfg.train.model_copy(update={"max_steps": a.steps or cfg.train.max_steps,
                                                 **change.get("train", {})})
            store = patches
            if "patches" in change:
                store = tmp / f"patches-{k}.zarr"
                run_patches([crop], store, cfg.patches.model_copy(update=change["patches"]),
                            cfg.split)
            model = ModelConfig(**change["model"]) if "model" in change else cfg.model
            start = time.perf_counter()
            out = run_train(store, norm, tmp / str(k) / "train", model, train, progress=False)
            seconds = time.perf_counter() - start
            ev = run_evaluate(out.model, [crop], tmp / str(k) / "evaluate", cfg.split,
                              cfg.predict)
            net, bic = ev.mean_fitted["network"], ev.mean_fitted["bicubic"]
            print(f"| {name} | {Training.read(out.record).steps} | {net.psnr:.2f} / "
                  f"{net.ssim:.3f} | {net.psnr - bic.psnr:+.2f} dB / {net.ssim - bic.ssim:+.3f} "
                  f"| {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
