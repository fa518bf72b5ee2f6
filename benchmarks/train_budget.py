"""Quality at a fixed training budget: every network trained for the same wall time on real
images of three kinds, scored on each one's held-out band after a per-method linear fit.

Datasets (HR real; LR simulated by the `simulate` stage, as the demo does; origins and
licences in data/bench/README.md and data/sample/README.md):

- ``lls``: the demo's lattice light-sheet volume (2D patches from its planes);
- ``nuclei``: a widefield fluorescence image of nuclei (BBBC038 / DSB 2018, CC0);
- ``cell``: scikit-image's quantitative phase image of a cell (CC0), split along x.

Each dataset is prepared once (simulate → register → crop → normalise → patches, the demo's
settings), then each network trains for each budget with the configuration's recipe
(``train.max_minutes``: the cosine decays over the budget; the checkpoint of the best fitted
validation PSNR is kept) and is evaluated. Prints one table row per run as it finishes.
Budget runs measure wall time: run nothing else on the machine meanwhile.

    python benchmarks/train_budget.py [--datasets lls,nuclei,cell] [--minutes 2,5,10]
                                      [--only rcan-small,rlfn-paper] [--tta 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from srbio.config import Config, ModelConfig, load_config
from srbio.io.image import write_image
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
SPLIT_AXIS = {"lls": "y", "nuclei": "y", "cell": "x"}


def hr_image(dataset: str, tmp: Path) -> Path:
    """The HR file of ``dataset`` (the cell image is written from scikit-image's copy)."""
    if dataset == "lls":
        return ROOT / "data" / "sample" / "lls_hr.tif"
    if dataset == "nuclei":
        return ROOT / "data" / "bench" / "nuclei_dsb2018.tif"
    from skimage import data

    path = tmp / "cell.tif"
    write_image(path, data.cell().astype("uint16"), spacing=[0.107, 0.107])
    return path


def prepare(tmp: Path, dataset: str = "lls") -> tuple[Config, Path, Path, Path]:
    """A dataset's patches and crop in ``tmp``, with the demo's settings.

    Returns (config, patches, normalisation, crop).
    """
    cfg = load_config(ROOT / "config.yaml")
    cfg = cfg.model_copy(update={"split": cfg.split.model_copy(
        update={"axis": SPLIT_AXIS[dataset]})})
    hr = hr_image(dataset, tmp)
    run_simulate(hr, tmp / "sim", cfg.simulate[0])
    run_register(hr, tmp / "sim" / "lr.tif", tmp / "register", cfg.registration,
                 truth=tmp / "sim" / "truth.tfm")
    run_crop(tmp / "register", hr, tmp / "crop", cfg=cfg.crop)
    run_normalise([tmp / "crop"], tmp / "normalisation.json", cfg.normalise, cfg.split)
    run_patches([tmp / "crop"], tmp / "patches.zarr", cfg.patches, cfg.split)
    return cfg, tmp / "patches.zarr", tmp / "normalisation.json", tmp / "crop"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="lls,nuclei,cell")
    p.add_argument("--minutes", default="2,5,10", help="comma-separated budgets")
    p.add_argument("--only", default="", help="comma-separated labels of " + ", ".join(CANDIDATES))
    p.add_argument("--tta", type=int, default=1, choices=[1, 2, 4, 8],
                   help="also score the self-ensemble of this many symmetries")
    a = p.parse_args()
    labels = [k for k in CANDIDATES if not a.only or k in a.only.split(",")]
    budgets = [float(m) for m in a.minutes.split(",")]
    print_header()
    with tempfile.TemporaryDirectory(prefix="srbio-budget-") as tmp_name:
        for dataset in a.datasets.split(","):
            tmp = Path(tmp_name) / dataset
            tmp.mkdir()
            cfg, patches, norm, crop = prepare(tmp, dataset)
            for minutes in budgets:
                train_cfg = cfg.train.model_copy(update={"epochs": 1000, "max_minutes": minutes,
                                                          "max_steps": None})
                for label in labels:
                    run = tmp / f"{label}-{minutes:g}"
                    out = run_train(patches, norm, run / "train", CANDIDATES[label], train_cfg,
                                    progress=False)
                    start = time.perf_counter()
                    ev = run_evaluate(out.model, [crop], run / "evaluate", cfg.split,
                                      cfg.predict.model_copy(update={"tta": a.tta}))
                    print_row(dataset, minutes, label, Training.read(out.record), ev,
                              time.perf_counter() - start)


def print_header() -> None:
    """The table's head: gains over the fitted bicubic of the same held-out band."""
    print("PSNR (dB) and SSIM on each dataset's held-out band after a per-method linear fit; "
          "Δ: the network minus bicubic (also fitted)", flush=True)
    print("| dataset | budget (min) | network | parameters | steps | PSNR | ΔPSNR | SSIM | ΔSSIM "
          "| bicubic PSNR / SSIM | TTA ΔPSNR | evaluation (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)


def print_row(dataset: str, minutes: float, label: str, tr: Training, ev, seconds: float
              ) -> None:
    """One run's row (printed as it finishes, so a long run shows progress)."""
    from srbio.io.records import NO_TTA

    net, bic = ev.mean_fitted["network"], ev.mean_fitted["bicubic"]
    tta = f"{net.psnr - ev.mean_fitted[NO_TTA].psnr:+.2f}" if NO_TTA in ev.mean_fitted else "—"
    print(f"| {dataset} | {minutes:g} | {label} | {tr.parameters:,} | {tr.steps} | "
          f"{net.psnr:.2f} | {net.psnr - bic.psnr:+.2f} | {net.ssim:.3f} | "
          f"{net.ssim - bic.ssim:+.3f} | {bic.psnr:.2f} / {bic.ssim:.3f} | {tta} | "
          f"{seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
