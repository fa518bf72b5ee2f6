"""Stage ``crop``: the largest box where registered LR and HR both hold valid data."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from srbio.config import CropConfig
from srbio.core.crop import box_slices, largest_valid_box, scale_box, valid_bbox
from srbio.core.registration import lateral_factors
from srbio.io import read_image, read_mask, write_image
from srbio.stages.common import as_spacing, read_json, write_json

log = logging.getLogger(__name__)


def run_crop(register_dir: str | os.PathLike, hr_path: str | os.PathLike,
             out_dir: str | os.PathLike, *, hr_spacing: list[float] | None = None,
             cfg: CropConfig | None = None) -> dict[str, Path]:
    """Crop a registered pair to its valid field of view.

    Reads ``moving_resampled.tif``, ``mask.tif`` and ``metrics.json`` from ``register_dir``;
    writes ``out_dir/lr.tif`` (registered LR, LR grid), ``out_dir/hr.tif`` (the HR box = LR
    box × scale, exactly), ``out_dir/mask.tif`` (LR grid: both images valid, interpolation
    support included; patches, normalisation and evaluation use only these pixels) and
    ``out_dir/box.json`` (the boxes, the kept fraction and the registration QC verdict).
    """
    cfg = cfg or CropConfig()
    register_dir, out_dir = Path(register_dir), Path(out_dir)
    meta = read_json(register_dir / "metrics.json")
    scale = int(meta["scale"])
    qc = meta.get("qc", {})
    qc_passed = bool(qc.get("passed", True))
    lr, lr_sp = read_image(register_dir / "moving_resampled.tif")
    mask = read_mask(register_dir / "mask.tif")
    hr, hr_sp = read_image(hr_path, spacing=as_spacing(hr_spacing))
    if mask.shape != lr.shape:
        raise ValueError(f"{register_dir}: mask {mask.shape} and LR {lr.shape} differ")
    if not mask.any() and not qc_passed:  # a pair left out of training: keep it inspectable
        box = tuple((0, n) for n in mask.shape)
    else:
        box = valid_bbox(mask) if cfg.box == "valid_bbox" else largest_valid_box(mask)
    hr_box = scale_box(box, lateral_factors(lr.ndim, scale))
    if any(b > n for (_, b), n in zip(hr_box, hr.shape, strict=True)):
        raise ValueError(f"{hr_path}: HR box {hr_box} exceeds its shape {hr.shape}; was it "
                         f"registered with another file?")
    sl = box_slices(box)
    lr_crop, mask_crop = lr[sl], mask[sl]
    hr_crop = hr[box_slices(hr_box)]
    origin = [a * s for (a, _), s in zip(hr_box, hr_sp, strict=True)]
    kept = float(mask_crop.sum() / max(mask.sum(), 1))
    log.info("crop box (LR grid) %s → LR %s, HR %s; %.1f%% of the box valid, %.1f%% of the "
             "valid pixels kept", box, lr_crop.shape, hr_crop.shape, 100 * mask_crop.mean(),
             100 * kept)
    if not qc_passed:
        log.warning("%s failed registration QC: cropped for inspection, left out of training",
                    register_dir)
    paths = {"lr": out_dir / "lr.tif", "hr": out_dir / "hr.tif", "mask": out_dir / "mask.tif",
             "box": out_dir / "box.json"}
    write_image(paths["lr"], lr_crop.astype(np.float32), spacing=lr_sp)
    write_image(paths["hr"], hr_crop, spacing=hr_sp)
    write_image(paths["mask"], mask_crop.astype(np.uint8), spacing=lr_sp)
    write_json(paths["box"], {"lr_box": box, "hr_box": hr_box, "scale": scale, "mode": cfg.box,
                              "lr_spacing": lr_sp, "hr_spacing": hr_sp, "hr_origin_um": origin,
                              "valid_fraction_in_box": float(mask_crop.mean()),
                              "valid_fraction_kept": kept, "qc_passed": qc_passed,
                              "qc_failures": qc.get("failures", [])})
    return paths
