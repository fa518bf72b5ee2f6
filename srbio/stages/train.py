"""Stage ``train``: patches + normalisation in; a model file, a training curve and logs out."""

from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import srbio  # noqa: E402
from srbio.config import ModelConfig, TrainConfig  # noqa: E402
from srbio.io.atomic import atomic_path  # noqa: E402
from srbio.io.patches import read_patches  # noqa: E402
from srbio.models import build_model  # noqa: E402
from srbio.models.checkpoint import save_model  # noqa: E402
from srbio.stages.common import read_json, write_json  # noqa: E402
from srbio.train import PatchDataset, fit  # noqa: E402

log = logging.getLogger(__name__)


def plot_curve(metrics_csv: Path, out_png: Path) -> list[dict]:
    """Plot train/val loss and val PSNR per epoch from Lightning's CSV log."""
    rows = list(csv.DictReader(metrics_csv.open()))
    epochs: dict[int, dict] = {}
    for row in rows:
        e = int(float(row["epoch"]))
        for key in ("train_loss", "val_loss", "val_psnr"):
            if row.get(key):
                epochs.setdefault(e, {"epoch": e})[key] = float(row[key])
    table = [epochs[e] for e in sorted(epochs)]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        pts = [(r["epoch"], r[key]) for r in table if key in r]
        if pts:
            a.plot(*zip(*pts, strict=True), style, label=key.replace("_", " "))
    a.set_xlabel("epoch")
    a.set_ylabel("L1 (normalised)")
    a.legend()
    pts = [(r["epoch"], r["val_psnr"]) for r in table if "val_psnr" in r]
    if pts:
        b.plot(*zip(*pts, strict=True), "-o", color="C2")
    b.set_xlabel("epoch")
    b.set_ylabel("validation PSNR (dB)")
    fig.suptitle("training curve")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return table


def run_train(patches_path: str | os.PathLike, norm_json: str | os.PathLike,
              out_dir: str | os.PathLike, model_cfg: ModelConfig, train_cfg: TrainConfig, *,
              spacing: dict | None = None, resume: bool = False, progress: bool = True
              ) -> dict[str, Path]:
    """Train a network; write ``model.pt``, ``training_curve.png``, ``training.json``.

    Lightning checkpoints (resumable with ``resume``) go to ``out_dir/checkpoints``.
    """
    out_dir = Path(out_dir)
    arrays, attrs = read_patches(patches_path)
    norm = read_json(norm_json)
    scale = int(attrs["scale"])
    lr_range, hr_range = tuple(norm["lr"]), tuple(norm["hr"])
    train = PatchDataset(arrays["train/lr"], arrays["train/hr"], lr_range=lr_range,
                         hr_range=hr_range, augment=True, gain=train_cfg.gain_augment)
    val = PatchDataset(arrays["val/lr"], arrays["val/hr"], lr_range=lr_range,
                       hr_range=hr_range, augment=False)
    torch.manual_seed(train_cfg.seed)
    net = build_model(model_cfg.name, scale=scale, preset=model_cfg.preset,
                      n_groups=model_cfg.n_groups, n_blocks=model_cfg.n_blocks,
                      n_feats=model_cfg.n_feats, reduction=model_cfg.reduction)
    log.info("training %s (%d parameters) on %d patches, validating on %d", net.config,
             sum(p.numel() for p in net.parameters()), len(train), len(val))
    start = time.perf_counter()
    net, metrics_csv = fit(
        net, train, val, out_dir=out_dir, epochs=train_cfg.epochs,
        batch_size=train_cfg.batch_size, learning_rate=train_cfg.learning_rate,
        precision=train_cfg.precision, accelerator=train_cfg.accelerator,
        num_workers=train_cfg.num_workers, seed=train_cfg.seed, resume=resume,
        progress=progress)
    seconds = time.perf_counter() - start
    table = plot_curve(metrics_csv, out_dir / "training_curve.png")
    provenance = {"srbio": srbio.__version__, "torch": str(torch.__version__),
                  "patches": str(patches_path), "train": train_cfg.model_dump(),
                  "model": model_cfg.model_dump(), "network": dict(net.config),
                  "n_train": len(train), "n_val": len(val),
                  "seconds": round(seconds, 1), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    paths = {"model": out_dir / "model.pt", "curve": out_dir / "training_curve.png",
             "json": out_dir / "training.json"}
    save_model(paths["model"], net, normalisation={"lr": lr_range, "hr": hr_range},
               spacing=spacing, provenance=provenance)
    write_json(paths["json"], {**provenance, "epochs": table})
    return paths
