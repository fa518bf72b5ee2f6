"""Every picture srbio writes: registration QC, held-out comparisons, the training curve.

Imported lazily by the stages that draw. It uses matplotlib's object-oriented ``Figure``
(no ``pyplot``), so it never selects or switches a GUI backend — napari's stays untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy.ndimage import uniform_filter

from srbio.core.qc import RegistrationViews, overlay
from srbio.io.atomic import atomic_path
from srbio.io.records import Registration


def _save(fig: Figure, path: Path, dpi: int = 90) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


def registration_qc(path: Path, record: Registration, v: RegistrationViews) -> None:
    """HR/LR overlay before and after, the valid region and the B-spline displacement."""
    hr_lr, before, after, before_mask, mask, displacement = (
        v.hr_lr, v.before, v.after, v.before_mask, v.mask, v.displacement)
    mid = hr_lr.shape[0] // 2 if hr_lr.ndim == 3 else None
    pick = (lambda x: x[mid]) if mid is not None else (lambda x: x)
    n = 4 if displacement is not None else 3
    fig = Figure(figsize=(4.4 * n, 4.8), layout="constrained")
    axes = fig.subplots(1, n)
    axes[0].imshow(overlay(pick(hr_lr), pick(before), pick(before_mask)))
    axes[0].set_title(f"before: HR (magenta) / LR (green)\nNCC {record.ncc_before:.3f}, "
                      f"Mattes MI {-record.mattes_before:.3f}")
    axes[1].imshow(overlay(pick(hr_lr), pick(after), pick(mask)))
    axes[1].set_title(f"after ({record.transform})\nNCC {record.ncc_after:.3f}, "
                      f"Mattes MI {-record.mattes_after:.3f}")
    axes[2].imshow(pick(mask), cmap="gray")
    tre = "" if record.tre_mean_px is None else (
        f"\nerror vs truth: mean {record.tre_mean_px:.3f}, max {record.tre_max_px:.3f} HR px")
    axes[2].set_title(f"valid region ({record.valid_fraction:.0%}){tre}")
    if displacement is not None:
        im = axes[3].imshow(pick(displacement), cmap="viridis")
        fig.colorbar(im, ax=axes[3], shrink=0.8, label="µm")
        axes[3].set_title(f"B-spline displacement\nmax {record.bspline_max_um:.3f} µm")
    for ax in axes:
        ax.set_axis_off()
    qc = record.qc
    verdict = "PASSED" if qc.passed else "FAILED: " + "; ".join(qc.failures)
    fig.suptitle(f"registration QC{' — plane z=' + str(mid) if mid is not None else ''} — "
                 f"{verdict}", color="black" if qc.passed else "red")
    _save(fig, path)


def _brightest_window(ref: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """Top-left corner and size of the brightest ``size``² window of ``ref`` (inside it)."""
    h, w = ref.shape
    zh, zw = min(h, size), min(w, size)
    score = uniform_filter(ref.astype(np.float32), (zh, zw))
    corners = score[zh // 2:h - zh // 2 + 1, zw // 2:w - zw // 2 + 1]
    cy, cx = np.unravel_index(np.argmax(corners), corners.shape)
    return int(cy), int(cx), zh, zw


def comparison(path: Path, name: str, images: dict[str, np.ndarray]) -> None:
    """LR | bicubic | network | HR on one plane: whole test region (top) and a zoom (bottom)."""
    hr = images["HR"]
    plane = (lambda x: x[x.shape[0] // 2]) if hr.ndim == 3 else (lambda x: x)
    ref = plane(hr)
    lo, hi = np.percentile(ref, (0.5, 99.8))
    cy, cx, zh, zw = _brightest_window(ref, 96)
    # rows sized to the images' aspect ratios, so the pictures fill the canvas
    width = 3.2
    heights = [width * ref.shape[0] / ref.shape[1], width * zh / zw]
    fig = Figure(figsize=(width * len(images), sum(heights) + 0.9), layout="constrained")
    axes = fig.subplots(2, len(images), squeeze=False, height_ratios=heights)
    for col, (label, img) in enumerate(images.items()):
        p = plane(img)
        axes[0, col].imshow(p, cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
        axes[0, col].set_title(label)
        axes[0, col].add_patch(Rectangle((cx - 0.5, cy - 0.5), zw, zh, fill=False,
                                         color="cyan", lw=1))
        axes[1, col].imshow(p[cy:cy + zh, cx:cx + zw], cmap="magma", vmin=lo, vmax=hi,
                            interpolation="nearest")
        for ax in axes[:, col]:
            ax.set_axis_off()
    fig.suptitle(f"{name}: held-out region (same display range; bottom: zoom)")
    _save(fig, path)


def training_curve(path: Path, epochs: Sequence[dict[str, float]], *, loss: str = "L1",
                   bicubic_psnr: float | None = None, bicubic_psnr_fit: float | None = None
                   ) -> None:
    """Train/validation loss and validation PSNR per epoch, with bicubic's as flat lines.

    The PSNR is plotted raw and after a linear fit (what the kept checkpoint is chosen on).
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    a, b = fig.subplots(1, 2)
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        pts = [(r["epoch"], r[key]) for r in epochs if key in r]
        if pts:
            a.plot(*zip(*pts, strict=True), style, label=key.replace("_", " "))
    a.set_xlabel("epoch")
    a.set_ylabel(f"{loss} (normalised)")
    a.legend()
    for key, colour, label, reference in (("val_psnr", "C2", "network", bicubic_psnr),
                                          ("val_psnr_fit", "C3", "network, fitted",
                                           bicubic_psnr_fit)):
        pts = [(r["epoch"], r[key]) for r in epochs if key in r]
        if pts:
            b.plot(*zip(*pts, strict=True), "-o", color=colour, label=label)
        if reference is not None:
            b.axhline(reference, color=colour, alpha=0.6, ls="--",
                      label=f"bicubic{label.removeprefix('network')} ({reference:.2f} dB)")
    b.legend()
    b.set_xlabel("epoch")
    b.set_ylabel("validation PSNR (dB)")
    fig.suptitle("training curve")
    _save(fig, path)


def package_cover(path: Path, lr: np.ndarray, sr: np.ndarray, *, title: str) -> None:
    """A bioimage.io cover (2:1): the test input and the network's output side by side.

    Both show the same field of view (the middle plane of a volume), each at its own display
    range (0.5–99.8 percentiles), the input's pixels drawn as they are (nearest).
    """
    plane = (lambda x: x[x.shape[0] // 2]) if lr.ndim == 3 else (lambda x: x)
    fig = Figure(figsize=(8, 4), layout="constrained")
    for ax, img, label in zip(fig.subplots(1, 2), (plane(lr), plane(sr)),
                              (f"input (LR) {lr.shape}", f"output {sr.shape}"), strict=True):
        lo, hi = np.percentile(img, (0.5, 99.8))
        ax.imshow(img, cmap="magma", vmin=lo, vmax=max(hi, lo + 1e-6), interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    _save(fig, path, dpi=100)
