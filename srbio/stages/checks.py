"""Checks of a configuration against its input files, before any work (``srbio validate``).

The schema (:mod:`srbio.config`) checks values and their combinations; what depends on the
images (their sizes) is checked here from the files' headers only (nothing is decoded).
"""

from __future__ import annotations

from pathlib import Path

from srbio.config import Config
from srbio.core.grid import split_bounds
from srbio.core.registration import choose_scale
from srbio.io import open_lazy
from srbio.stages.common import as_spacing


def _lateral_fov(pair, scale: int | None) -> tuple[float, float] | None:
    """LR-grid pixels (y, x) the pair can cover at most: the HR / scale, within the LR's view.

    ``scale`` None: the integer ratio registration chooses. None when a file does not exist
    yet (a simulated LR, made by the workflow: checked when it exists).
    """
    try:
        hr, hr_sp = open_lazy(pair.hr, spacing=as_spacing(pair.hr_spacing))
        lr, lr_sp = open_lazy(pair.lr, spacing=as_spacing(pair.lr_spacing))
    except FileNotFoundError:
        return None
    scale = scale or choose_scale(hr_sp, lr_sp)
    grid = [n / scale for n in hr.shape[-2:]]
    view = [n * s / (h * scale) for n, s, h in zip(lr.shape[-2:], lr_sp[-2:], hr_sp[-2:],
                                                   strict=True)]
    return tuple(min(a, b) for a, b in zip(grid, view, strict=True))  # type: ignore[return-value]


def check_paths(cfg: Config) -> list[str]:
    """The results folder must be a folder (or not exist yet)."""
    results = Path(cfg.results)
    for parent in (results, *results.parents):
        if parent.exists() and not parent.is_dir():
            return [f"results: {cfg.results!r} cannot be a folder: {parent} is a file (every "
                    f"stage writes its outputs under results)"]
    return []


def check_pairs(cfg: Config) -> list[str]:
    """What cannot work with these files: patches larger than a pair's bands.

    Returns one message per problem (empty: nothing found). Sizes are upper bounds: cropping
    the black borders after registration only makes the bands smaller. Pairs whose files do
    not exist yet (simulated by the workflow) are skipped.
    """
    problems = []
    axis = 0 if cfg.split.axis == "y" else 1
    scale = cfg.registration.scale if isinstance(cfg.registration.scale, int) else None
    for pair in cfg.pairs:
        fov = _lateral_fov(pair, scale)
        if fov is None:
            continue
        bands = split_bounds(int(fov[axis]), cfg.split.val_fraction, cfg.split.test_fraction)
        across = int(fov[1 - axis])
        for part in ("train", "val"):
            length = bands[part][1] - bands[part][0]
            if min(length, across) < cfg.patches.size:
                problems.append(
                    f"pair {pair.name!r} ({pair.lr}, {pair.hr}): its {part} band is at most "
                    f"{length}×{across} LR pixels ({cfg.split.axis} split, val_fraction "
                    f"{cfg.split.val_fraction}, test_fraction {cfg.split.test_fraction}), "
                    f"smaller than patches.size {cfg.patches.size}")
    return problems
