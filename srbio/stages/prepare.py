"""Stages ``normalise`` and ``patches``: fixed intensity ranges and 16-bit patch pairs."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from srbio.config import NormaliseConfig, PatchesConfig, SplitConfig
from srbio.core.dtypes import to_uint16
from srbio.core.grid import band
from srbio.core.normalise import estimate_range
from srbio.core.patches import sample_patches
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.patches import write_patches
from srbio.io.records import Normalisation, Patches, Range, patches_record_path
from srbio.stages.common import PreparedPair, lineage, load_pairs, split_regions

log = logging.getLogger(__name__)


@releases_claims
def run_normalise(crop_dirs: Sequence[str | os.PathLike], out_json: str | os.PathLike,
                  cfg: NormaliseConfig, split: SplitConfig, *, overwrite: bool = False
                  ) -> Normalisation:
    """Fix the normalisation of the dataset: from config, or estimated once and frozen.

    Values not given in config are the ``cfg.percentiles`` of all pairs' valid pixels in
    their train and validation regions (never the held-out test region). Writes a
    :class:`~srbio.io.records.Normalisation` record.
    """
    claim(out_json, "normalise", inputs=crop_dirs, overwrite=overwrite)
    parts: dict[str, tuple[list, list]] = {"lr": ([], []), "hr": ([], [])}
    for c in load_pairs(crop_dirs):
        axis, b = split_regions(c.lr, split)
        keep = (b["train"][0], b["val"][1])
        parts["lr"][0].append(band(c.lr, axis, keep))
        parts["lr"][1].append(band(c.mask, axis, keep))
        parts["hr"][0].append(band(c.hr, axis, keep, c.scale))
        parts["hr"][1].append(band(c.hr_mask, axis, keep, c.scale))
    ranges = {}
    for name, given in (("lr", cfg.lr), ("hr", cfg.hr)):
        if given is not None:
            ranges[name] = Range(vmin=given[0], vmax=given[1], source="config")
        else:
            lo, hi = estimate_range(parts[name][0], percentiles=cfg.percentiles,
                                    masks=parts[name][1])
            ranges[name] = Range(vmin=lo, vmax=hi, source=f"percentiles {list(cfg.percentiles)}"
                                 f" of the training pairs")
        log.info("normalisation %s: vmin %.2f vmax %.2f (%s)", name, ranges[name].vmin,
                 ranges[name].vmax, ranges[name].source)
    record = Normalisation(**ranges, **lineage({"normalise": cfg, "split": split},
                                               [("crops", d) for d in crop_dirs]))
    record.write(out_json)
    return record


def _pixel_sizes(pairs: Sequence[PreparedPair]) -> tuple[list[float], list[float]]:
    """The LR and HR pixel sizes of the pairs (they must agree within 1 %)."""
    first = pairs[0].record
    for p in pairs[1:]:
        for mine, theirs in ((p.record.lr_spacing, first.lr_spacing),
                             (p.record.hr_spacing, first.hr_spacing)):
            if len(mine) != len(theirs) or not np.allclose(mine, theirs, rtol=0.01):
                raise ValueError(f"pair {p.name} has pixel sizes LR {p.record.lr_spacing} / HR "
                                 f"{p.record.hr_spacing} µm but {pairs[0].name} has "
                                 f"{first.lr_spacing} / {first.hr_spacing}: one model is "
                                 f"trained at one pixel size")
    return list(first.lr_spacing), list(first.hr_spacing)


def _draw(pairs: Sequence[PreparedPair], part: str, total: int, cfg: PatchesConfig,
          split: SplitConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``total`` patch pairs of one split part, spread over the pairs by their valid pixels."""
    regions = [split_regions(c.lr, split) for c in pairs]
    sizes = [float(band(c.mask, axis, b[part]).sum()) for c, (axis, b) in zip(pairs, regions,
                                                                              strict=True)]
    weights = np.asarray(sizes) / max(sum(sizes), 1)
    counts = np.floor(weights * total).astype(int)
    counts[np.argmax(weights)] += total - counts.sum()
    lrs, hrs = [], []
    for c, (axis, b), n in zip(pairs, regions, counts, strict=True):
        if n == 0:
            continue
        plr, phr = sample_patches(
            to_uint16(c.lr, source=f"LR of pair {c.name}"),
            to_uint16(c.hr, source=f"HR of pair {c.name}"),
            scale=c.scale, size=cfg.size, n=int(n), axis=axis, bounds=b[part],
            min_foreground=cfg.min_foreground, rng=rng, mask=c.mask, depth=cfg.depth)
        lrs.append(plr)
        hrs.append(phr)
    return np.concatenate(lrs), np.concatenate(hrs)


@releases_claims
def run_patches(crop_dirs: Sequence[str | os.PathLike], out_path: str | os.PathLike,
                cfg: PatchesConfig, split: SplitConfig, *, overwrite: bool = False) -> Patches:
    """Extract 16-bit LR/HR patch pairs from the train and (disjoint) validation regions.

    Patches are spread over the pairs in proportion to the valid pixels of their regions,
    and lie entirely inside each pair's valid mask. Writes the zarr store ``out_path`` and,
    last, the :class:`~srbio.io.records.Patches` record beside it (``patches.json``), which
    carries the scale and the pairs' pixel sizes on to training.
    """
    record_path = patches_record_path(out_path)
    for path in (out_path, record_path):
        claim(path, "patches", inputs=crop_dirs, overwrite=overwrite)
    pairs = load_pairs(crop_dirs)
    scales = {c.scale for c in pairs}
    if len(scales) != 1:
        raise ValueError(f"all pairs must share one scale, got {sorted(scales)}")
    lr_spacing, hr_spacing = _pixel_sizes(pairs)
    rng = np.random.default_rng(cfg.seed)
    arrays = {}
    for part, total in (("train", cfg.n_train), ("val", cfg.n_val)):
        arrays[f"{part}/lr"], arrays[f"{part}/hr"] = _draw(pairs, part, total, cfg, split, rng)
    record_path.unlink(missing_ok=True)  # never beside another store
    write_patches(out_path, arrays)
    record = Patches(store=str(Path(out_path)), scale=scales.pop(), size=cfg.size,
                     depth=cfg.depth,
                     counts={k: len(v) for k, v in arrays.items()}, pairs=[c.name for c in pairs],
                     lr_spacing=lr_spacing, hr_spacing=hr_spacing, split=split.model_dump(),
                     **lineage({"patches": cfg, "split": split}, [("crops", d) for d in crop_dirs]))
    record.write(record_path)
    # one dict argument would be taken as a mapping of named arguments: pass it as text
    log.info("patches: %s", ", ".join(f"{k} {v}" for k, v in record.counts.items()))
    return record
