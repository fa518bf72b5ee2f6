"""Stage ``register``: HR (fixed) + LR (moving) in; transform, resampled LR, mask, record, QC out."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from srbio.config import RegisterConfig
from srbio.core import grid
from srbio.core import registration as reg
from srbio.core import transforms as tf
from srbio.core.identity import pixel_digest
from srbio.core.qc import RegistrationViews, registration_views
from srbio.core.validity import valid_mask
from srbio.io import read_image, write_image
from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import QCVerdict, RegisterFiles, Registration
from srbio.stages.common import as_spacing, lineage

log = logging.getLogger(__name__)


@dataclass
class _Inputs:
    """The pair as read, with validity masks."""

    fixed: np.ndarray
    moving: np.ndarray
    f_sp: tuple[float, ...]
    m_sp: tuple[float, ...]
    f_valid: np.ndarray
    m_valid: np.ndarray  # eroded by erode_px: the interpolation support


def read_truth(path: str | os.PathLike) -> sitk.Transform:
    """A ground-truth transform file (ITK text), or a ValueError naming it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: ground-truth transform not found")
    try:
        return sitk.ReadTransform(str(path))
    except RuntimeError as exc:
        raise ValueError(f"{path}: not a readable ITK transform ({str(exc).strip()[-200:]})"
                         ) from None


def _read(fixed_path: str | os.PathLike, moving_path: str | os.PathLike, cfg: RegisterConfig,
          fixed_spacing: list[float] | None, moving_spacing: list[float] | None) -> _Inputs:
    fixed, f_sp = read_image(fixed_path, spacing=as_spacing(fixed_spacing))
    moving, m_sp = read_image(moving_path, spacing=as_spacing(moving_spacing))
    if fixed.ndim != moving.ndim:
        raise ValueError(f"{moving_path} is {moving.ndim}D but {fixed_path} is {fixed.ndim}D; "
                         f"LR and HR must have the same dimensionality")
    if Path(fixed_path).resolve() == Path(moving_path).resolve() or (
            fixed.shape == moving.shape and np.array_equal(fixed, moving)):
        raise ValueError(f"{moving_path}: is the same image as the HR {fixed_path}; a pair is "
                         f"two acquisitions of one sample (LR and HR), not one image twice")
    grid.check_resampling(m_sp, f_sp, moving.shape, what=f"{moving_path} onto {fixed_path}",
                          override="--moving-spacing / --fixed-spacing (lr_spacing / "
                          "hr_spacing of the pair in config.yaml)")
    if np.all(np.asarray(m_sp) < np.asarray(f_sp) * 0.999):
        raise ValueError(f"{moving_path}: LR pixel size {m_sp} µm is finer than the HR's {f_sp} "
                         f"({fixed_path}); pass the LR as moving and the HR as fixed")
    f_valid, m_valid = valid_mask(fixed, fill=cfg.fill), valid_mask(moving, fill=cfg.fill)
    for path, valid in ((fixed_path, f_valid), (moving_path, m_valid)):
        if valid.mean() < 0.01:
            raise ValueError(f"{path}: only {valid.mean():.2%} of the pixels hold data (the rest "
                             f"is the constant fill value); is the image empty?")
    return _Inputs(fixed, moving, f_sp, m_sp, f_valid, grid.erode(m_valid, cfg.erode_px))


def _scale(cfg: RegisterConfig, f_sp: tuple[float, ...], m_sp: tuple[float, ...]) -> int:
    scale = reg.choose_scale(f_sp, m_sp) if cfg.scale == "auto" else int(cfg.scale)
    ratio = reg.pixel_size_ratio(f_sp, m_sp)
    if abs(ratio - scale) > 0.01 * scale:
        log.warning("pixel-size ratio LR/HR is %.3f, scale is %d: the LR is resampled onto "
                    "spacing hr_spacing × %d (and so must every volume predicted later)",
                    ratio, scale, scale)
    return scale


def _views(x: _Inputs, transform: sitk.Transform, scale: int) -> RegistrationViews:
    return registration_views(x.fixed, x.moving, transform, fixed_spacing=x.f_sp,
                              moving_spacing=x.m_sp, scale=scale, fixed_valid=x.f_valid,
                              moving_valid=x.m_valid)


def _record(x: _Inputs, result: reg.RegistrationResult, v: RegistrationViews,
            cfg: RegisterConfig, *, scale: int, paths: tuple[str, str],
            truth: tuple[str, sitk.Transform] | None) -> Registration:
    shape, spacing, origin = grid.lr_grid(x.fixed.shape, x.f_sp, scale)
    masks = {"fixed_spacing": x.f_sp, "moving_spacing": x.m_sp, "fixed_mask": x.f_valid,
             "moving_mask": x.m_valid, "metric": "mattes"}
    identity = sitk.Transform(x.fixed.ndim, sitk.sitkIdentity)
    values: dict = {
        "fixed": paths[0], "moving": paths[1],
        "transform": cfg.transform if isinstance(cfg.transform, str) else "+".join(cfg.transform),
        "metric": reg.stage_metrics(cfg.metric), "init": cfg.init, "scale": scale,
        "pixel_size_ratio": reg.pixel_size_ratio(x.f_sp, x.m_sp),
        "fixed_spacing": x.f_sp, "moving_spacing": x.m_sp, "grid_spacing": spacing,
        "grid_origin": origin, "grid_shape": shape,
        "ncc_before": reg.ncc(v.hr_lr, v.before, v.before_mask) if v.before_mask.any() else 0.0,
        "ncc_after": reg.ncc(v.hr_lr, v.after, v.mask) if v.mask.any() else 0.0,
        "mattes_before": reg.metric_value(x.fixed, x.moving, identity, **masks),
        "mattes_after": reg.metric_value(x.fixed, x.moving, result.transform, **masks),
        "final_metric": result.metric_value,
        "iterations": int(sum(st.get("iterations", 0) for st in result.stages)),
        "stages": result.stages, "seconds": round(result.seconds, 3),
        "valid_fraction": float(v.mask.mean()),
        "fixed_pixels": pixel_digest(x.fixed), "moving_pixels": pixel_digest(x.moving),
        "fill": cfg.fill, "erode_px": cfg.erode_px,
        **lineage({"register": cfg}, [("fixed", paths[0]), ("moving", paths[1]),
                                      *([("truth", truth[0])] if truth else [])])}
    if v.displacement is not None:
        inside = v.displacement[v.mask] if v.mask.any() else v.displacement.ravel()
        values.update(bspline_max_um=float(inside.max()), bspline_mean_um=float(inside.mean()))
    if truth is not None and v.mask.any():
        pts = tf.grid_points(v.mask, spacing, origin=origin, n=5000)
        err = tf.point_error_px(result.transform, truth[1], pts, x.f_sp)
        values.update(truth=truth[0], tre_mean_px=float(err.mean()),
                      tre_max_px=float(err.max()), tre_p95_px=float(np.percentile(err, 95)))
    values["qc"] = quality(values, cfg)
    return Registration(**values)


def quality(values: dict, cfg: RegisterConfig) -> QCVerdict:
    """Pass/fail of a registered pair against ``cfg.qc``; every failed check is named."""
    q = cfg.qc
    failures = []
    if not values["ncc_after"] >= q.min_ncc:
        failures.append(f"NCC after {values['ncc_after']:.3f} < qc.min_ncc {q.min_ncc}")
    gain = values["ncc_after"] - values["ncc_before"]
    if not gain >= q.min_ncc_gain:
        failures.append(f"NCC gain {gain:+.3f} < qc.min_ncc_gain {q.min_ncc_gain}")
    if not values["valid_fraction"] >= q.min_valid_fraction:
        failures.append(f"valid fraction {values['valid_fraction']:.3f} < "
                        f"qc.min_valid_fraction {q.min_valid_fraction}")
    disp = values.get("bspline_max_um")
    if disp is not None and not disp <= q.max_displacement_um:
        failures.append(f"B-spline displacement {disp:.3f} µm > qc.max_displacement_um "
                        f"{q.max_displacement_um}")
    return QCVerdict(passed=not failures, failures=failures, thresholds=q.model_dump(),
                     on_failure=cfg.on_failure)


def _write(out: RegisterFiles, record: Registration, v: RegistrationViews, transform: sitk.Transform
           ) -> None:
    from srbio.stages import plots

    with replace_folder(out.root, "register") as tmp:
        staged = RegisterFiles(tmp)
        spacing = tuple(record.grid_spacing)
        sitk.WriteTransform(transform, str(staged.transform))
        write_image(staged.resampled, v.after.astype(np.float32), spacing=spacing)
        write_image(staged.mask, v.mask.astype(np.uint8), spacing=spacing)
        plots.registration_qc(staged.qc, record, v)
        record.write(staged.record)


def _stop(out: RegisterFiles, record: Registration, v: RegistrationViews, pair: str) -> None:
    """Replace the folder by the failed QC alone (no earlier output outlives it), then raise."""
    from srbio.stages import plots

    with replace_folder(out.root, "register") as tmp:
        staged = RegisterFiles(tmp)
        plots.registration_qc(staged.failed_qc, record, v)
        record.write(staged.failed_record)
    raise ValueError(f"{pair}: registration failed QC: {'; '.join(record.qc.failures)}. See "
                     f"{out.failed_qc}; set register.on_failure: skip to leave the pair out, "
                     f"or adjust register.qc")


@releases_claims
def run_register(fixed_path: str | os.PathLike, moving_path: str | os.PathLike,
                 out_dir: str | os.PathLike, cfg: RegisterConfig, *,
                 fixed_spacing: list[float] | None = None,
                 moving_spacing: list[float] | None = None,
                 truth: str | os.PathLike | None = None, overwrite: bool = False
                 ) -> RegisterFiles:
    """Register the LR ``moving_path`` onto the HR ``fixed_path``; write ``out_dir``.

    Writes the files of :class:`~srbio.io.records.RegisterFiles`: ``transform.tfm`` (ITK
    text; HR physical µm → LR physical µm), ``moving_resampled.tif`` (LR resampled on the grid
    of spacing ``hr_spacing × scale`` aligned with HR), ``mask.tif`` (1 where both images hold
    valid data on that grid, interpolation support included), ``qc.png`` and the
    :class:`~srbio.io.records.Registration` record; the folder is replaced whole, so nothing
    of an earlier run survives beside them. An error changes nothing in ``out_dir``; an
    earlier register output there is replaced only with ``overwrite``.

    A pair failing ``cfg.qc`` raises ``ValueError`` with ``on_failure: stop`` (its pictures are
    kept as ``qc_failed.png`` / ``registration_failed.json``); with ``skip`` the outputs are
    written with ``qc.passed = false`` and later stages leave the pair out.
    """
    claim(out_dir, "register", inputs=[fixed_path, moving_path, *([truth] if truth else [])],
          overwrite=overwrite)
    out = RegisterFiles(out_dir)
    true_transform = None if truth is None else (str(truth), read_truth(truth))
    x = _read(fixed_path, moving_path, cfg, fixed_spacing, moving_spacing)
    scale = _scale(cfg, x.f_sp, x.m_sp)
    log.info("register %s (%s µm, shape %s) onto %s (%s µm, shape %s)", moving_path, x.m_sp,
             x.moving.shape, fixed_path, x.f_sp, x.fixed.shape)
    result = reg.register(
        x.fixed, x.moving, fixed_spacing=x.f_sp, moving_spacing=x.m_sp, transform=cfg.transform,
        metric=cfg.metric, fixed_mask=x.f_valid, moving_mask=x.m_valid,
        shrink_factors=tuple(cfg.shrink_factors), iterations=cfg.iterations,
        samples=cfg.samples, bspline_mesh_um=cfg.bspline_mesh_um,
        bspline_levels=cfg.bspline_levels, init=cfg.init, max_rotation_deg=cfg.max_rotation_deg)
    views = _views(x, result.transform, scale)
    record = _record(x, result, views, cfg, scale=scale, paths=(str(fixed_path), str(moving_path)),
                     truth=true_transform)
    log.info("NCC %.4f → %.4f, Mattes MI %.4f → %.4f%s; QC %s", record.ncc_before,
             record.ncc_after, -record.mattes_before, -record.mattes_after,
             "" if record.tre_mean_px is None else
             f"; error vs truth {record.tre_mean_px:.3f} HR px",
             "passed" if record.qc.passed else record.qc.failures)
    if not record.qc.passed and cfg.on_failure == "stop":
        _stop(out, record, views, f"{moving_path} → {fixed_path}")
    if not record.qc.passed:
        log.warning("%s failed registration QC (%s): it will be left out of training",
                    moving_path, "; ".join(record.qc.failures))
    _write(out, record, views, result.transform)
    return out


