"""Stage ``enhance`` (optional): improve the cropped HR; record every step in provenance."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from srbio.config import Background, Deconvolve, Denoise, EnhanceConfig
from srbio.core import enhance
from srbio.core.dtypes import fit_uint16
from srbio.io import read_image, write_image
from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import Crop, CropFiles, EnhanceFiles, Enhancement
from srbio.stages.common import lineage

log = logging.getLogger(__name__)


def _deconvolve(image: np.ndarray, spacing: tuple[float, ...], step: Deconvolve, base: Path,
                record: dict) -> np.ndarray:
    if step.psf is not None:
        psf_path = Path(step.psf) if Path(step.psf).is_absolute() else base / step.psf
        psf, psf_sp = read_image(psf_path, spacing=step.psf_spacing)
        kernel = enhance.prepare_psf(psf, psf_sp, spacing)
        record.update(psf=str(psf_path), psf_spacing=list(psf_sp))
    else:
        kernel = enhance.gaussian_psf(spacing, na=step.na, wavelength_nm=step.wavelength_nm,
                                      refractive_index=step.refractive_index)
    record["psf_shape"] = list(kernel.shape)
    return enhance.richardson_lucy(image, kernel, iterations=step.iterations,
                                   tv_weight=step.tv_weight)


def _step(image: np.ndarray, spacing: tuple[float, ...], step: Deconvolve | Denoise | Background,
          base: Path) -> tuple[np.ndarray, dict]:
    record: dict = step.model_dump()
    if isinstance(step, Deconvolve):
        out = _deconvolve(image, spacing, step, base, record)
    elif isinstance(step, Denoise):
        out = enhance.denoise(image, strength=step.strength, patch_size=step.patch_size,
                              patch_distance=step.patch_distance)
    else:
        out = enhance.subtract_background(image, method=step.method, radius_um=step.radius_um,
                                          spacing=spacing)
        negative = out < 0
        record["clipped_negative_fraction"] = float(negative.mean())
        if negative.any():
            log.info("background: %.2f%% of the pixels fell below 0 and were set to 0",
                     100 * negative.mean())
            out = np.where(negative, 0, out)
    return out.astype(np.float32), record


def _apply(image: np.ndarray, spacing: tuple[float, ...], cfg: EnhanceConfig, base: Path,
           source: Path) -> tuple[np.ndarray, list[dict]]:
    steps = []
    for step in cfg.steps:
        t0 = time.perf_counter()
        before = (float(image.min()), float(image.max()))
        image, record = _step(image, spacing, step, base)
        if not np.isfinite(image).all():
            raise ValueError(f"{source}: enhance step {step.kind} produced non-finite values")
        record.update(range_before=before, range_after=(float(image.min()), float(image.max())),
                      seconds=round(time.perf_counter() - t0, 2))
        steps.append(record)
        log.info("enhance %s: range %s → %s in %.1f s", step.kind, np.round(before, 1),
                 np.round(record["range_after"], 1), record["seconds"])
    return image, steps


@releases_claims
def run_enhance(crop_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: EnhanceConfig, *,
                base: str | os.PathLike = ".", overwrite: bool = False) -> EnhanceFiles:
    """Apply ``cfg.steps`` in order to a crop folder's HR; the LR and mask are copied.

    Writes the files of :class:`~srbio.io.records.EnhanceFiles`: a crop folder (so later stages
    take either) whose ``crop.json`` carries the :class:`~srbio.io.records.Enhancement`, also
    written alone as ``provenance.json``: every step with its parameters, the PSF used, the
    intensity range before/after and any gain. The output stays in the 16-bit range: if a
    step lifts the maximum above 65535, the whole image is multiplied by one stated gain
    (never clipped). Relative PSF paths are resolved against ``base``.
    """
    psfs = [Path(base) / s.psf for s in cfg.steps if isinstance(s, Deconvolve) and s.psf]
    claim(out_dir, "enhance", inputs=[crop_dir, *psfs], overwrite=overwrite)
    src = CropFiles(crop_dir)
    crop = Crop.read(src.record)
    hr, spacing = read_image(src.hr)
    image, steps = _apply(hr.astype(np.float32), spacing, cfg, Path(base), src.hr)
    image, gain = fit_uint16(image)
    if gain != 1.0:
        log.warning("enhanced HR exceeded 65535: multiplied by %.4f to stay 16-bit", gain)
    enhancement = Enhancement(source=str(src.hr), steps=steps, output_gain=gain,
                              **lineage({"enhance": cfg}, [("crop", crop_dir),
                                                           *(("psf", p) for p in psfs)]))
    out = EnhanceFiles(out_dir)
    with replace_folder(out.root, "enhance") as tmp:
        staged = EnhanceFiles(tmp)
        write_image(staged.hr, image, spacing=spacing)
        shutil.copyfile(src.lr, staged.lr)
        shutil.copyfile(src.mask, staged.mask)
        enhancement.write(staged.provenance)
        crop.model_copy(update={"enhancement": enhancement}).write(staged.record)
    return out
