"""Stage ``crop``: the valid field of view of a registered pair, on both grids."""

from __future__ import annotations

import logging
import os

import numpy as np

from srbio.config import CropConfig
from srbio.core.crop import largest_valid_box, valid_bbox
from srbio.core.grid import box_slices, lateral_factors, scale_box
from srbio.core.identity import pixel_digest
from srbio.io import read_image, read_mask, write_image
from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import Crop, CropFiles, RegisterFiles, Registration
from srbio.stages.common import lineage

log = logging.getLogger(__name__)


@releases_claims
def run_crop(register_dir: str | os.PathLike, hr_path: str | os.PathLike,
             out_dir: str | os.PathLike, *, cfg: CropConfig | None = None,
             overwrite: bool = False) -> CropFiles:
    """Crop a registered pair to its valid field of view.

    Reads the register folder through its :class:`~srbio.io.records.Registration` record
    (the HR is read at the pixel size registration used);
    writes the files of :class:`~srbio.io.records.CropFiles`: ``lr.tif`` (registered LR, LR
    grid), ``hr.tif`` (the HR box = LR box × scale, exactly), ``mask.tif`` (LR grid: both images
    valid, interpolation support included; patches, normalisation and evaluation use only
    these pixels) and the :class:`~srbio.io.records.Crop` record (boxes, kept fraction, QC).
    """
    cfg = cfg or CropConfig()
    claim(out_dir, "crop", inputs=[register_dir, hr_path], overwrite=overwrite)
    src = RegisterFiles(register_dir)
    registration = Registration.read(src.record)
    lr, lr_sp = read_image(src.resampled)
    mask = read_mask(src.mask)
    hr, hr_sp = read_image(hr_path, spacing=tuple(registration.fixed_spacing))  # as registered
    if registration.fixed_pixels is not None and pixel_digest(hr) != registration.fixed_pixels:
        raise ValueError(f"{hr_path}: is not the HR image {register_dir} was registered to "
                         f"({registration.fixed}): its pixels differ; crop the pair with the "
                         f"HR it was registered with, or register again")
    if mask.shape != lr.shape:
        raise ValueError(f"{src.mask}: mask {mask.shape} and LR {lr.shape} differ")
    if not mask.any() and not registration.qc.passed:  # left out of training: keep it inspectable
        box = tuple((0, n) for n in mask.shape)
    else:
        box = valid_bbox(mask) if cfg.box == "valid_bbox" else largest_valid_box(mask)
    hr_box = scale_box(box, lateral_factors(lr.ndim, registration.scale))
    if any(b > n for (_, b), n in zip(hr_box, hr.shape, strict=True)):
        raise ValueError(f"{hr_path}: HR box {hr_box} exceeds its shape {hr.shape}; was it "
                         f"registered with another file ({registration.fixed})?")
    lr_crop, mask_crop = lr[box_slices(box)], mask[box_slices(box)]
    hr_crop = hr[box_slices(hr_box)]
    kept = float(mask_crop.sum() / max(mask.sum(), 1))
    log.info("crop box (LR grid) %s → LR %s, HR %s; %.1f%% of the box valid, %.1f%% of the "
             "valid pixels kept", box, lr_crop.shape, hr_crop.shape, 100 * mask_crop.mean(),
             100 * kept)
    if not registration.qc.passed:
        log.warning("%s failed registration QC: cropped for inspection, left out of training",
                    register_dir)
    record = Crop(registration=str(src.record), lr_box=list(box), hr_box=list(hr_box),
                  scale=registration.scale, box_mode=cfg.box, lr_spacing=list(lr_sp),
                  hr_spacing=list(hr_sp),
                  hr_origin_um=[a * s for (a, _), s in zip(hr_box, hr_sp, strict=True)],
                  valid_fraction_in_box=float(mask_crop.mean()), valid_fraction_kept=kept,
                  qc=registration.qc,
                  **lineage({"crop": cfg}, [("registered", register_dir), ("hr", hr_path)]))
    out = CropFiles(out_dir)
    with replace_folder(out.root, "crop") as tmp:
        staged = CropFiles(tmp)
        write_image(staged.lr, lr_crop.astype(np.float32), spacing=lr_sp)
        write_image(staged.hr, hr_crop, spacing=hr_sp)
        write_image(staged.mask, mask_crop.astype(np.uint8), spacing=lr_sp)
        record.write(staged.record)
    return out
