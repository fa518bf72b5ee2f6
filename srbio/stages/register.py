"""Stage ``register``: HR (fixed) + LR (moving) in; transform, resampled LR, mask, metrics, QC out."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from srbio.config import RegisterConfig  # noqa: E402
from srbio.core import registration as reg  # noqa: E402
from srbio.core.validity import valid_mask  # noqa: E402
from srbio.io import read_image, write_image  # noqa: E402
from srbio.stages.common import as_spacing, write_json  # noqa: E402

log = logging.getLogger(__name__)

OUTPUTS = ("transform.tfm", "moving_resampled.tif", "mask.tif", "metrics.json", "qc.png")


def _overlay(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Magenta (a) / green (b) overlay, each scaled by its own 1–99.5 percentiles in ``mask``."""
    def scaled(x: np.ndarray) -> np.ndarray:
        vals = x[mask] if mask.any() else x.ravel()
        lo, hi = np.percentile(vals, (1, 99.5))
        return np.clip((x - lo) / max(hi - lo, 1e-9), 0, 1) * mask
    sa, sb = scaled(a), scaled(b)
    return np.stack([sa, sb, sa], axis=-1)


def _qc_figure(path: Path, hr_lr: np.ndarray, before: np.ndarray, after: np.ndarray,
               before_mask: np.ndarray, mask: np.ndarray, metrics: dict) -> None:
    mid = hr_lr.shape[0] // 2 if hr_lr.ndim == 3 else None
    pick = (lambda x: x[mid]) if mid is not None else (lambda x: x)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), constrained_layout=True)
    axes[0].imshow(_overlay(pick(hr_lr), pick(before), pick(before_mask)))
    axes[0].set_title(f"before: HR (magenta) / LR (green)\nNCC {metrics['ncc_before']:.3f}")
    axes[1].imshow(_overlay(pick(hr_lr), pick(after), pick(mask)))
    axes[1].set_title(f"after ({metrics['transform']})\nNCC {metrics['ncc_after']:.3f}")
    axes[2].imshow(pick(mask), cmap="gray")
    tre = metrics.get("tre_mean_px")
    axes[2].set_title("valid region (crop source)" + (
        f"\nerror vs truth: mean {tre:.3f}, max {metrics['tre_max_px']:.3f} HR px"
        if tre is not None else ""))
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"registration QC{' — plane z=' + str(mid) if mid is not None else ''}")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run_register(fixed_path: str | os.PathLike, moving_path: str | os.PathLike,
                 out_dir: str | os.PathLike, cfg: RegisterConfig, *,
                 fixed_spacing: list[float] | None = None,
                 moving_spacing: list[float] | None = None,
                 truth: str | os.PathLike | None = None) -> dict[str, Path]:
    """Register the LR ``moving_path`` onto the HR ``fixed_path``.

    Writes into ``out_dir``: ``transform.tfm`` (ITK text; HR physical µm → LR physical µm),
    ``moving_resampled.tif`` (LR resampled on the grid of spacing ``hr_spacing × scale``
    aligned with HR), ``mask.tif`` (uint8, 1 where both images hold valid data on that grid),
    ``metrics.json`` (NCC before/after, metric values, iterations, error against ``truth``
    when given) and ``qc.png``. All files are written in a temporary folder and moved in
    at the end, so a failure leaves none of them.
    """
    out_dir = Path(out_dir)
    fixed, f_sp = read_image(fixed_path, spacing=as_spacing(fixed_spacing))
    moving, m_sp = read_image(moving_path, spacing=as_spacing(moving_spacing))
    if fixed.ndim != moving.ndim:
        raise ValueError(f"{moving_path} is {moving.ndim}D but {fixed_path} is {fixed.ndim}D; "
                         f"LR and HR must have the same dimensionality")
    f_extent = np.asarray(fixed.shape) * f_sp
    m_extent = np.asarray(moving.shape) * m_sp
    if np.all(np.asarray(m_sp) < np.asarray(f_sp) * 0.999):
        raise ValueError(f"{moving_path}: LR pixel size {m_sp} µm is finer than the HR's {f_sp} "
                         f"({fixed_path}); pass the LR as moving and the HR as fixed")
    log.info("register %s (%s µm, extent %s) onto %s (%s µm, extent %s)", moving_path, m_sp,
             np.round(m_extent, 2), fixed_path, f_sp, np.round(f_extent, 2))
    fill = cfg.fill
    f_valid = valid_mask(fixed, fill=fill)
    m_valid = valid_mask(moving, fill=fill)
    m_valid_eroded = reg.erode(m_valid, cfg.erode_px)
    result = reg.register(
        fixed, moving, fixed_spacing=f_sp, moving_spacing=m_sp, transform=cfg.transform,
        metric=cfg.metric, fixed_mask=f_valid, moving_mask=m_valid_eroded,
        shrink_factors=tuple(cfg.shrink_factors), iterations=cfg.iterations,
        samples=cfg.samples, bspline_mesh_um=cfg.bspline_mesh_um)

    shape, spacing, origin = reg.lr_grid(fixed.shape, f_sp, cfg.scale)
    factors = reg.lateral_factors(fixed.ndim, cfg.scale)
    grid = {"moving_spacing": m_sp, "shape": shape, "spacing": spacing, "origin": origin}
    after = reg.resample(moving, result.transform, **grid)
    warped_valid = reg.resample(m_valid_eroded.astype(np.uint8), result.transform,
                                order="nearest", **grid).astype(bool)
    mask = warped_valid & reg.block_all(f_valid, factors)
    if not mask.any():
        raise ValueError(f"{moving_path} and {fixed_path} share no valid pixel after "
                         f"registration: check pixel sizes and that they show the same sample")
    identity = sitk.Transform(fixed.ndim, sitk.sitkIdentity)
    before = reg.resample(moving, identity, **grid)
    hr_lr = reg.block_mean(fixed, factors)
    before_mask = reg.resample(m_valid_eroded.astype(np.uint8), identity, order="nearest",
                               **grid).astype(bool) & reg.block_all(f_valid, factors)
    metrics = {
        "fixed": str(fixed_path), "moving": str(moving_path),
        "transform": cfg.transform if isinstance(cfg.transform, str) else "+".join(cfg.transform),
        "metric": cfg.metric, "scale": cfg.scale, "fixed_spacing": f_sp, "moving_spacing": m_sp,
        "grid_spacing": spacing, "grid_origin": origin, "grid_shape": shape,
        "ncc_before": reg.ncc(hr_lr, before, before_mask) if before_mask.any() else 0.0,
        "ncc_after": reg.ncc(hr_lr, after, mask), "final_metric": result.metric_value,
        "stages": result.stages, "seconds": round(result.seconds, 3),
        "valid_fraction": float(mask.mean()),
    }
    if truth is not None:
        t_true = sitk.ReadTransform(str(truth))
        pts = reg.grid_points(mask, spacing, origin=origin, n=5000)
        err = reg.point_error_px(result.transform, t_true, pts, f_sp)
        metrics.update({"truth": str(truth), "tre_mean_px": float(err.mean()),
                        "tre_max_px": float(err.max()),
                        "tre_p95_px": float(np.percentile(err, 95))})
    log.info("NCC %.4f → %.4f%s", metrics["ncc_before"], metrics["ncc_after"],
             f"; error vs truth {metrics['tre_mean_px']:.3f} HR px" if truth else "")

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".register-", dir=out_dir))
    try:
        sitk.WriteTransform(result.transform, str(tmp / "transform.tfm"))
        write_image(tmp / "moving_resampled.tif", after.astype(np.float32), spacing=spacing)
        write_image(tmp / "mask.tif", mask.astype(np.uint8), spacing=spacing)
        _qc_figure(tmp / "qc.png", hr_lr, before, after, before_mask, mask, metrics)
        write_json(tmp / "metrics.json", metrics)
        for name in OUTPUTS:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out_dir / name for name in OUTPUTS}
