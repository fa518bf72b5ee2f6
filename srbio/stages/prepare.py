"""Stages ``normalise`` and ``patches``: fixed intensity ranges and 16-bit patch pairs."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from srbio.config import NormaliseConfig, PatchesConfig, SplitConfig
from srbio.core.normalise import estimate_range
from srbio.core.patches import band, sample_patches, to_uint16
from srbio.io.patches import write_patches
from srbio.stages.common import load_crops, split_regions, write_json

log = logging.getLogger(__name__)


def run_normalise(crop_dirs: Sequence[str | os.PathLike], out_json: str | os.PathLike,
                  cfg: NormaliseConfig, split: SplitConfig) -> dict:
    """Fix the normalisation of the dataset: from config, or estimated once and frozen.

    Values not given in config are the ``cfg.percentiles`` of all pairs' valid pixels in
    their train and validation regions (never the held-out test region).
    """
    lr_parts, hr_parts, lr_masks, hr_masks = [], [], [], []
    for c in load_crops(crop_dirs):
        axis, b = split_regions(c.lr, split)
        keep = (b["train"][0], b["val"][1])
        lr_parts.append(band(c.lr, axis, keep))
        lr_masks.append(band(c.mask, axis, keep))
        hr_parts.append(band(c.hr, axis, keep, c.scale))
        hr_masks.append(band(c.hr_mask, axis, keep, c.scale))
    result = {}
    for name, given, parts, masks in (("lr", cfg.lr, lr_parts, lr_masks),
                                      ("hr", cfg.hr, hr_parts, hr_masks)):
        if given is not None:
            if not given[1] > given[0]:
                raise ValueError(f"normalise.{name}: vmax must exceed vmin, got {list(given)}")
            result[name] = [float(given[0]), float(given[1])]
            source = "config"
        else:
            result[name] = list(estimate_range(parts, percentiles=cfg.percentiles, masks=masks))
            source = f"percentiles {list(cfg.percentiles)} of the training pairs"
        result[f"{name}_source"] = source
        log.info("normalisation %s: vmin %.2f vmax %.2f (%s)", name, *result[name], source)
    write_json(out_json, result)
    return result


def run_patches(crop_dirs: Sequence[str | os.PathLike], out_path: str | os.PathLike,
                cfg: PatchesConfig, split: SplitConfig) -> dict[str, int]:
    """Extract 16-bit LR/HR patch pairs from the train and (disjoint) validation regions.

    Patches are spread over the pairs in proportion to the valid pixels of their regions,
    and lie entirely inside each pair's valid mask.
    """
    rng = np.random.default_rng(cfg.seed)
    crops = load_crops(crop_dirs)
    regions = [split_regions(c.lr, split) for c in crops]
    scales = {c.scale for c in crops}
    if len(scales) != 1:
        raise ValueError(f"all pairs must share one scale, got {sorted(scales)}")
    scale = scales.pop()
    out: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    for part, total in (("train", cfg.n_train), ("val", cfg.n_val)):
        sizes = [float(band(c.mask, axis, b[part]).sum())
                 for c, (axis, b) in zip(crops, regions, strict=True)]
        weights = np.asarray(sizes) / max(sum(sizes), 1)
        counts = np.floor(weights * total).astype(int)
        counts[np.argmax(weights)] += total - counts.sum()
        for c, (axis, b), n in zip(crops, regions, counts, strict=True):
            if n == 0:
                continue
            plr, phr = sample_patches(
                to_uint16(c.lr, source=f"LR of pair {c.name}"),
                to_uint16(c.hr, source=f"HR of pair {c.name}"),
                scale=scale, size=cfg.size, n=int(n), axis=axis, bounds=b[part],
                min_foreground=cfg.min_foreground, rng=rng, mask=c.mask)
            out[part][0].append(plr)
            out[part][1].append(phr)
    arrays = {f"{part}/{kind}": np.concatenate(lists[i])
              for part, lists in out.items() for i, kind in enumerate(("lr", "hr"))}
    write_patches(out_path, arrays, attrs={"scale": scale, "size": cfg.size,
                                           "split": split.model_dump()})
    counts = {k: len(v) for k, v in arrays.items()}
    log.info("patches: %s", counts)
    return counts
