"""Stages ``evaluate`` and ``report``: held-out metrics against baselines, and the report."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import uniform_filter  # noqa: E402

from srbio.config import PredictConfig, SplitConfig  # noqa: E402
from srbio.core.metrics import nrmse, psnr, ssim, upsample  # noqa: E402
from srbio.core.normalise import denormalise, normalise  # noqa: E402
from srbio.core.patches import band  # noqa: E402
from srbio.inference import TiledPredictor, resolve_device  # noqa: E402
from srbio.io import read_ome_zarr_attrs  # noqa: E402
from srbio.io.atomic import atomic_path  # noqa: E402
from srbio.models.checkpoint import load_model  # noqa: E402
from srbio.stages.common import load_crops, read_json, split_regions, write_json  # noqa: E402

log = logging.getLogger(__name__)

METHODS = ("nearest", "bicubic", "network")


def _figure(path: Path, name: str, images: dict[str, np.ndarray]) -> None:
    """LR | bicubic | network | HR on one plane, whole test region and a zoom."""
    hr = images["HR"]
    plane = (lambda x: x[x.shape[0] // 2]) if hr.ndim == 3 else (lambda x: x)
    ref = plane(hr)
    lo, hi = np.percentile(ref, (0.5, 99.8))
    h, w = ref.shape
    zh, zw = min(h, 96), min(w, 96)
    # zoom on the brightest zh×zw window (top-left corners that keep it inside the image)
    score = uniform_filter(ref.astype(np.float32), (zh, zw))
    corners = score[zh // 2:h - zh // 2 + 1, zw // 2:w - zw // 2 + 1]
    cy, cx = np.unravel_index(np.argmax(corners), corners.shape)
    fig, axes = plt.subplots(2, len(images), figsize=(3.2 * len(images), 6.4),
                             constrained_layout=True)
    for col, (label, img) in enumerate(images.items()):
        p = plane(img)
        axes[0, col].imshow(p, cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
        axes[0, col].set_title(label)
        axes[0, col].add_patch(plt.Rectangle((cx - 0.5, cy - 0.5), zw, zh, fill=False,
                                             color="cyan", lw=1))
        axes[1, col].imshow(p[cy:cy + zh, cx:cx + zw], cmap="magma", vmin=lo, vmax=hi,
                            interpolation="nearest")
        for ax in axes[:, col]:
            ax.set_axis_off()
    fig.suptitle(f"{name}: held-out region (same display range; bottom: zoom)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def run_evaluate(model_path: str | os.PathLike, crop_dirs: Sequence[str | os.PathLike],
                 out_dir: str | os.PathLike, split: SplitConfig, predict_cfg: PredictConfig
                 ) -> dict:
    """PSNR / SSIM / NRMSE on each pair's held-out test region.

    The network's prediction of the registered LR is compared with HR, next to nearest and
    bicubic upsampling of the same LR. Every method's output is put in HR units through the
    model's fixed normalisation (the same mapping the network gets), then metrics are computed
    on HR-normalised values (data range 1), over the valid pixels of the test region only
    (the crop's mask). Pairs that failed registration QC are left out. Writes ``metrics.json`` and one
    ``comparison_<pair>.png`` per pair into ``out_dir``.
    """
    out_dir = Path(out_dir)
    device = resolve_device(predict_cfg.device)
    model, meta = load_model(model_path, device=device)
    scale = int(meta["network"]["scale"])
    lr_range, hr_range = tuple(meta["normalisation"]["lr"]), tuple(meta["normalisation"]["hr"])
    predictor = TiledPredictor(model, scale=scale, lr_range=lr_range, hr_range=hr_range,
                               tile_shape=predict_cfg.tile_shape, overlap=predict_cfg.overlap,
                               batch_size=predict_cfg.batch_size, device=device)
    results: dict = {"pairs": {}, "scale": scale, "normalisation": meta["normalisation"]}
    totals: dict[str, list[dict]] = {m: [] for m in METHODS}
    for c in load_crops(crop_dirs):
        name = c.name
        axis, regions = split_regions(c.lr, split)
        bounds = regions["test"]
        lr_t = band(c.lr, axis, bounds).astype(np.float32)
        hr_t = band(c.hr, axis, bounds, scale).astype(np.float32)
        valid = band(c.hr_mask, axis, bounds, scale)
        if lr_t.shape[axis] < 4 or not valid.any():
            raise ValueError(f"{name}: the test region is only {lr_t.shape[axis]} pixels "
                             f"({int(valid.sum())} valid); raise split.test_fraction")
        as_hr = denormalise(normalise(lr_t, *lr_range), *hr_range)
        outputs = {"nearest": upsample(as_hr, scale, order=0),
                   "bicubic": upsample(as_hr, scale, order=3),
                   "network": predictor.predict_image(lr_t)}
        target = normalise(hr_t, *hr_range)
        pair = {}
        for method, out in outputs.items():
            pred = normalise(out, *hr_range)
            row = {"psnr": psnr(pred, target, data_range=1.0, mask=valid),
                   "ssim": ssim(pred, target, data_range=1.0, mask=valid),
                   "nrmse": nrmse(pred, target, mask=valid)}
            pair[method] = row
            totals[method].append(row)
        pair["test_shape_hr"] = list(hr_t.shape)
        pair["test_valid_fraction"] = float(valid.mean())
        results["pairs"][name] = pair
        log.info("%s: %s", name, {m: round(pair[m]["psnr"], 2) for m in METHODS})
        _figure(out_dir / f"comparison_{name}.png", name,
                {"LR (nearest)": outputs["nearest"], "bicubic": outputs["bicubic"],
                 "network": outputs["network"], "HR": hr_t})
    results["mean"] = {m: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
                       for m, rows in totals.items()}
    write_json(out_dir / "metrics.json", results)
    return results


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}"


def run_report(out_md: str | os.PathLike, *, pairs: Sequence[str], results_dir: str | os.PathLike,
               predictions: Sequence[str | os.PathLike] = ()) -> Path:
    """Write a Markdown report from the files the other stages wrote under ``results_dir``."""
    res = Path(results_dir)
    out_md = Path(out_md)
    rel = lambda p: os.path.relpath(p, out_md.parent)  # noqa: E731
    ev = read_json(res / "evaluate" / "metrics.json")
    norm = read_json(res / "normalisation.json")
    training = read_json(res / "train" / "training.json")
    lines = ["# srbio report", ""]
    lines += ["## Held-out evaluation", "",
              "Test region of every pair (never used for training, validation or "
              "normalisation). Outputs mapped to HR units with the model's fixed normalisation; "
              "metrics on HR-normalised intensities (data range 1).", "",
              "| pair | method | PSNR (dB) | SSIM | NRMSE |", "|---|---|---|---|---|"]
    for name, pair in ev["pairs"].items():
        for m in METHODS:
            r = pair[m]
            lines.append(f"| {name} | {m} | {_fmt(r['psnr'], 2)} | {_fmt(r['ssim'])} | "
                         f"{_fmt(r['nrmse'])} |")
    for m in METHODS:
        r = ev["mean"][m]
        lines.append(f"| **mean** | {m} | {_fmt(r['psnr'], 2)} | {_fmt(r['ssim'])} | "
                     f"{_fmt(r['nrmse'])} |")
    lines.append("")
    for name in ev["pairs"]:
        lines.append(f"![{name}]({rel(res / 'evaluate' / f'comparison_{name}.png')})")
    lines += ["", "## Registration", "",
              "| pair | transform | NCC before → after | Mattes MI before → after | error vs truth "
              "(HR px, mean / max) | valid fraction | seconds | QC |",
              "|---|---|---|---|---|---|---|---|"]
    for name in pairs:
        m = read_json(res / "register" / name / "metrics.json")
        tre = (f"{_fmt(m['tre_mean_px'])} / {_fmt(m['tre_max_px'])}" if "tre_mean_px" in m
               else "—")
        qc = m.get("qc", {"passed": True})
        verdict = "passed" if qc["passed"] else "**failed, left out**: " + "; ".join(
            qc.get("failures", []))
        lines.append(f"| {name} | {m['transform']} | {_fmt(m['ncc_before'])} → "
                     f"{_fmt(m['ncc_after'])} | {_fmt(-m['mattes_before'])} → "
                     f"{_fmt(-m['mattes_after'])} | {tre} | {_fmt(m['valid_fraction'], 2)} | "
                     f"{m['seconds']} | {verdict} |")
    lines.append("")
    for name in pairs:
        lines.append(f"![registration {name}]({rel(res / 'register' / name / 'qc.png')})")
    lines += ["", "## Normalisation (fixed, stored with the model)", "",
              f"- LR: vmin {_fmt(norm['lr'][0], 2)}, vmax {_fmt(norm['lr'][1], 2)} "
              f"({norm['lr_source']})",
              f"- HR: vmin {_fmt(norm['hr'][0], 2)}, vmax {_fmt(norm['hr'][1], 2)} "
              f"({norm['hr_source']})", "",
              "## Training", "",
              f"Network {training['network']} (preset {training['model']['preset']}), "
              f"{training['n_train']} training / "
              f"{training['n_val']} validation patches, {len(training['epochs'])} epochs in "
              f"{training['seconds']} s.", "",
              f"![training curve]({rel(res / 'train' / 'training_curve.png')})", ""]
    if predictions:
        lines += ["## Predictions", "", "| output | shape | seconds | output Mpx/s | peak RSS (MB) |",
                  "|---|---|---|---|---|"]
        for p in predictions:
            st = read_ome_zarr_attrs(p).get("prediction", {})
            lines.append(f"| {rel(p)} | {st.get('output_shape')} | {st.get('seconds')} | "
                         f"{st.get('megapixels_per_second')} | {st.get('peak_rss_mb')} |")
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return out_md
