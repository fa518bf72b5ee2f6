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


def _displacement_um(transform: sitk.Transform, shape: tuple[int, ...],
                     spacing: tuple[float, ...], origin: tuple[float, ...]) -> np.ndarray | None:
    """Magnitude (µm) of the B-spline part of ``transform`` on a grid; None without one."""
    if transform.GetName() != "CompositeTransform":
        return None
    comp = sitk.CompositeTransform(transform)
    parts = [comp.GetNthTransform(i) for i in range(comp.GetNumberOfTransforms())]
    bsp = [t for t in parts if t.GetName().startswith("BSpline")]
    if not bsp:
        return None
    field = sitk.TransformToDisplacementField(
        bsp[-1], sitk.sitkVectorFloat64, [int(n) for n in shape[::-1]],
        [float(o) for o in origin[::-1]], [float(s) for s in spacing[::-1]])
    return np.sqrt((sitk.GetArrayFromImage(field) ** 2).sum(-1))


def _qc_figure(path: Path, hr_lr: np.ndarray, before: np.ndarray, after: np.ndarray,
               before_mask: np.ndarray, mask: np.ndarray, metrics: dict,
               displacement: np.ndarray | None) -> None:
    mid = hr_lr.shape[0] // 2 if hr_lr.ndim == 3 else None
    pick = (lambda x: x[mid]) if mid is not None else (lambda x: x)
    n = 4 if displacement is not None else 3
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 4.8), constrained_layout=True)
    axes[0].imshow(_overlay(pick(hr_lr), pick(before), pick(before_mask)))
    axes[0].set_title(f"before: HR (magenta) / LR (green)\nNCC {metrics['ncc_before']:.3f}, "
                      f"Mattes MI {-metrics['mattes_before']:.3f}")
    axes[1].imshow(_overlay(pick(hr_lr), pick(after), pick(mask)))
    axes[1].set_title(f"after ({metrics['transform']})\nNCC {metrics['ncc_after']:.3f}, "
                      f"Mattes MI {-metrics['mattes_after']:.3f}")
    axes[2].imshow(pick(mask), cmap="gray")
    tre = metrics.get("tre_mean_px")
    axes[2].set_title(f"valid region ({metrics['valid_fraction']:.0%})" + (
        f"\nerror vs truth: mean {tre:.3f}, max {metrics['tre_max_px']:.3f} HR px"
        if tre is not None else ""))
    if displacement is not None:
        im = axes[3].imshow(pick(displacement), cmap="viridis")
        fig.colorbar(im, ax=axes[3], shrink=0.8, label="µm")
        axes[3].set_title(f"B-spline displacement\nmax {metrics['bspline_max_um']:.3f} µm")
    for ax in axes:
        ax.set_axis_off()
    qc = metrics["qc"]
    verdict = "PASSED" if qc["passed"] else "FAILED: " + "; ".join(qc["failures"])
    fig.suptitle(f"registration QC{' — plane z=' + str(mid) if mid is not None else ''} — "
                 f"{verdict}", color="black" if qc["passed"] else "red")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _quality(metrics: dict, cfg: RegisterConfig) -> dict:
    """Pass/fail of a registered pair against ``cfg.qc``; every failed check is named."""
    q = cfg.qc
    failures = []
    if not metrics["ncc_after"] >= q.min_ncc:
        failures.append(f"NCC after {metrics['ncc_after']:.3f} < qc.min_ncc {q.min_ncc}")
    gain = metrics["ncc_after"] - metrics["ncc_before"]
    if not gain >= q.min_ncc_gain:
        failures.append(f"NCC gain {gain:+.3f} < qc.min_ncc_gain {q.min_ncc_gain}")
    if not metrics["valid_fraction"] >= q.min_valid_fraction:
        failures.append(f"valid fraction {metrics['valid_fraction']:.3f} < "
                        f"qc.min_valid_fraction {q.min_valid_fraction}")
    disp = metrics.get("bspline_max_um")
    if disp is not None and not disp <= q.max_displacement_um:
        failures.append(f"B-spline displacement {disp:.3f} µm > qc.max_displacement_um "
                        f"{q.max_displacement_um}")
    return {"passed": not failures, "failures": failures, "thresholds": q.model_dump(),
            "on_failure": cfg.on_failure}


def run_register(fixed_path: str | os.PathLike, moving_path: str | os.PathLike,
                 out_dir: str | os.PathLike, cfg: RegisterConfig, *,
                 fixed_spacing: list[float] | None = None,
                 moving_spacing: list[float] | None = None,
                 truth: str | os.PathLike | None = None) -> dict[str, Path]:
    """Register the LR ``moving_path`` onto the HR ``fixed_path``.

    Writes into ``out_dir``: ``transform.tfm`` (ITK text; HR physical µm → LR physical µm),
    ``moving_resampled.tif`` (LR resampled on the grid of spacing ``hr_spacing × scale``
    aligned with HR), ``mask.tif`` (uint8, 1 where both images hold valid data on that grid,
    interpolation support included), ``metrics.json`` (NCC and Mattes MI before/after, final
    metric, iterations, B-spline displacement, error against ``truth`` when given, and the QC
    verdict) and ``qc.png``. All files are written in a temporary folder and moved in at the
    end, so a failure leaves none of them.

    A pair failing ``cfg.qc`` raises ``ValueError`` with ``on_failure: stop`` (its pictures are
    kept as ``qc_failed.png`` / ``metrics_failed.json``); with ``skip`` the outputs are written
    with ``qc.passed = false`` and later stages leave the pair out.
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
    scale = reg.choose_scale(f_sp, m_sp) if cfg.scale == "auto" else int(cfg.scale)
    ratio = reg.pixel_size_ratio(f_sp, m_sp)
    if abs(ratio - scale) > 0.01 * scale:
        log.info("pixel-size ratio LR/HR is %.3f: the LR is resampled onto spacing "
                 "hr_spacing × %d", ratio, scale)
    log.info("register %s (%s µm, extent %s) onto %s (%s µm, extent %s)", moving_path, m_sp,
             np.round(m_extent, 2), fixed_path, f_sp, np.round(f_extent, 2))
    fill = cfg.fill
    f_valid = valid_mask(fixed, fill=fill)
    m_valid = valid_mask(moving, fill=fill)
    for path, valid in ((fixed_path, f_valid), (moving_path, m_valid)):
        if valid.mean() < 0.01:
            raise ValueError(f"{path}: only {valid.mean():.2%} of the pixels hold data (the rest "
                             f"is the constant fill value); is the image empty?")
    m_valid_eroded = reg.erode(m_valid, cfg.erode_px)
    result = reg.register(
        fixed, moving, fixed_spacing=f_sp, moving_spacing=m_sp, transform=cfg.transform,
        metric=cfg.metric, fixed_mask=f_valid, moving_mask=m_valid_eroded,
        shrink_factors=tuple(cfg.shrink_factors), iterations=cfg.iterations,
        samples=cfg.samples, bspline_mesh_um=cfg.bspline_mesh_um,
        bspline_levels=cfg.bspline_levels, init=cfg.init, max_rotation_deg=cfg.max_rotation_deg)

    shape, spacing, origin = reg.lr_grid(fixed.shape, f_sp, scale)
    factors = reg.lateral_factors(fixed.ndim, scale)
    grid = {"moving_spacing": m_sp, "shape": shape, "spacing": spacing, "origin": origin}
    after = reg.resample(moving, result.transform, **grid)
    warped_valid = reg.resample(m_valid_eroded.astype(np.uint8), result.transform,
                                order="nearest", **grid).astype(bool)
    mask = warped_valid & reg.block_all(f_valid, factors)
    identity = sitk.Transform(fixed.ndim, sitk.sitkIdentity)
    before = reg.resample(moving, identity, **grid)
    hr_lr = reg.block_mean(fixed, factors)
    before_mask = reg.resample(m_valid_eroded.astype(np.uint8), identity, order="nearest",
                               **grid).astype(bool) & reg.block_all(f_valid, factors)
    masks = {"fixed_spacing": f_sp, "moving_spacing": m_sp, "fixed_mask": f_valid,
             "moving_mask": m_valid_eroded, "metric": "mattes"}
    displacement = _displacement_um(result.transform, shape, spacing, origin)
    metrics = {
        "fixed": str(fixed_path), "moving": str(moving_path),
        "transform": cfg.transform if isinstance(cfg.transform, str) else "+".join(cfg.transform),
        "metric": reg.stage_metrics(cfg.metric), "init": cfg.init, "scale": scale,
        "pixel_size_ratio": ratio,
        "fixed_spacing": f_sp, "moving_spacing": m_sp,
        "grid_spacing": spacing, "grid_origin": origin, "grid_shape": shape,
        "ncc_before": reg.ncc(hr_lr, before, before_mask) if before_mask.any() else 0.0,
        "ncc_after": reg.ncc(hr_lr, after, mask) if mask.any() else 0.0,
        "mattes_before": reg.metric_value(fixed, moving, identity, **masks),
        "mattes_after": reg.metric_value(fixed, moving, result.transform, **masks),
        "final_metric": result.metric_value,
        "iterations": int(sum(st.get("iterations", 0) for st in result.stages)),
        "stages": result.stages, "seconds": round(result.seconds, 3),
        "valid_fraction": float(mask.mean()),
    }
    if displacement is not None:
        inside = displacement[mask] if mask.any() else displacement.ravel()
        metrics.update({"bspline_max_um": float(inside.max()),
                        "bspline_mean_um": float(inside.mean())})
    if truth is not None and mask.any():
        t_true = sitk.ReadTransform(str(truth))
        pts = reg.grid_points(mask, spacing, origin=origin, n=5000)
        err = reg.point_error_px(result.transform, t_true, pts, f_sp)
        metrics.update({"truth": str(truth), "tre_mean_px": float(err.mean()),
                        "tre_max_px": float(err.max()),
                        "tre_p95_px": float(np.percentile(err, 95))})
    metrics["qc"] = _quality(metrics, cfg)
    log.info("NCC %.4f → %.4f, Mattes MI %.4f → %.4f%s; QC %s", metrics["ncc_before"],
             metrics["ncc_after"], -metrics["mattes_before"], -metrics["mattes_after"],
             f"; error vs truth {metrics['tre_mean_px']:.3f} HR px" if "tre_mean_px" in metrics
             else "", "passed" if metrics["qc"]["passed"] else metrics["qc"]["failures"])

    out_dir.mkdir(parents=True, exist_ok=True)
    if not metrics["qc"]["passed"] and cfg.on_failure == "stop":
        _qc_figure(out_dir / "qc_failed.png", hr_lr, before, after, before_mask, mask, metrics,
                   displacement)
        write_json(out_dir / "metrics_failed.json", metrics)
        raise ValueError(
            f"{moving_path} → {fixed_path}: registration failed QC: "
            f"{'; '.join(metrics['qc']['failures'])}. See {out_dir / 'qc_failed.png'}; set "
            f"register.on_failure: skip to leave the pair out, or adjust register.qc")
    if not metrics["qc"]["passed"]:
        log.warning("%s failed registration QC (%s): it will be left out of training",
                    moving_path, "; ".join(metrics["qc"]["failures"]))
    tmp = Path(tempfile.mkdtemp(prefix=".register-", dir=out_dir))
    try:
        sitk.WriteTransform(result.transform, str(tmp / "transform.tfm"))
        write_image(tmp / "moving_resampled.tif", after.astype(np.float32), spacing=spacing)
        write_image(tmp / "mask.tif", mask.astype(np.uint8), spacing=spacing)
        _qc_figure(tmp / "qc.png", hr_lr, before, after, before_mask, mask, metrics, displacement)
        write_json(tmp / "metrics.json", metrics)
        for name in OUTPUTS:
            os.replace(tmp / name, out_dir / name)
        for stale in ("qc_failed.png", "metrics_failed.json"):
            (out_dir / stale).unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out_dir / name for name in OUTPUTS}
