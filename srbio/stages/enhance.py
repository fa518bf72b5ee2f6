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
from srbio.io import read_image, write_image
from srbio.stages.common import read_json, write_json

log = logging.getLogger(__name__)

UINT16_MAX = 65535.0


def _step(image: np.ndarray, spacing: tuple[float, ...], step: Deconvolve | Denoise | Background,
          base: Path) -> tuple[np.ndarray, dict]:
    record: dict = step.model_dump()
    if isinstance(step, Deconvolve):
        if step.psf is not None:
            psf_path = Path(step.psf) if Path(step.psf).is_absolute() else base / step.psf
            psf, psf_sp = read_image(psf_path, spacing=step.psf_spacing)
            kernel = enhance.prepare_psf(psf, psf_sp, spacing)
            record.update(psf=str(psf_path), psf_spacing=list(psf_sp))
        else:
            kernel = enhance.gaussian_psf(spacing, na=step.na, wavelength_nm=step.wavelength_nm,
                                          refractive_index=step.refractive_index)
        record["psf_shape"] = list(kernel.shape)
        out = enhance.richardson_lucy(image, kernel, iterations=step.iterations,
                                      tv_weight=step.tv_weight)
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


def run_enhance(crop_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: EnhanceConfig, *,
                base: str | os.PathLike = ".") -> dict[str, Path]:
    """Apply ``cfg.steps`` in order to ``crop_dir/hr.tif``; the LR and mask are copied.

    Writes ``out_dir/{hr.tif, lr.tif, mask.tif, box.json}`` (same layout as a crop folder, so
    later stages take either) and ``provenance.json``: every step with its parameters, the
    PSF used, the intensity range before/after and any rescaling. The output stays in the
    16-bit range: if a step lifts the maximum above 65535, the whole image is multiplied by
    one stated factor (never clipped).
    """
    crop_dir, out_dir = Path(crop_dir), Path(out_dir)
    hr, spacing = read_image(crop_dir / "hr.tif")
    box = read_json(crop_dir / "box.json")
    image = hr.astype(np.float32)
    steps = []
    for step in cfg.steps:
        t0 = time.perf_counter()
        before = (float(image.min()), float(image.max()))
        image, record = _step(image, spacing, step, Path(base))
        record.update(range_before=before, range_after=(float(image.min()), float(image.max())),
                      seconds=round(time.perf_counter() - t0, 2))
        if not np.isfinite(image).all():
            raise ValueError(f"{crop_dir / 'hr.tif'}: enhance step {step.kind} produced "
                             f"non-finite values")
        steps.append(record)
        log.info("enhance %s: range %s → %s in %.1f s", step.kind, np.round(before, 1),
                 np.round(record["range_after"], 1), record["seconds"])
    factor = 1.0
    if image.max() > UINT16_MAX:
        factor = UINT16_MAX / float(image.max())
        log.warning("enhanced HR peaks at %.0f > 65535: multiplied by %.4f to stay 16-bit",
                    image.max(), factor)
        image = image * factor
    provenance = {"source": str(crop_dir / "hr.tif"), "steps": steps, "output_scale": factor,
                  "dtype": "float32"}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"hr": out_dir / "hr.tif", "lr": out_dir / "lr.tif", "mask": out_dir / "mask.tif",
             "box": out_dir / "box.json", "provenance": out_dir / "provenance.json"}
    write_image(paths["hr"], image, spacing=spacing)
    for name in ("lr", "mask"):
        tmp = paths[name].with_name(f".{paths[name].name}.tmp")
        shutil.copyfile(crop_dir / f"{name}.tif", tmp)
        os.replace(tmp, paths[name])
    write_json(paths["provenance"], provenance)
    write_json(paths["box"], {**box, "enhance": provenance})
    return paths
