"""Helpers shared by the stages: JSON outputs and spacing handling."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srbio.config import SplitConfig
from srbio.core.crop import expand_mask
from srbio.core.patches import split_bounds
from srbio.core.registration import lateral_factors
from srbio.io import read_image, read_mask
from srbio.io.atomic import atomic_path

log = logging.getLogger(__name__)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (numpy scalars converted)."""

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=default) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming it in errors."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def split_regions(lr: np.ndarray, split: SplitConfig) -> tuple[int, dict[str, tuple[int, int]]]:
    """The split axis of a cropped LR image and its train/val/test bounds (LR pixels)."""
    axis = -2 if split.axis == "y" else -1
    return axis, split_bounds(lr.shape[axis], split.val_fraction, split.test_fraction)


def as_spacing(values: list[float] | tuple[float, ...] | None) -> tuple[float, ...] | None:
    """Config list → tuple (or None)."""
    return None if values is None else tuple(float(v) for v in values)


def load_crops(crop_dirs: Sequence[str | os.PathLike]) -> list[Crop]:
    """The cropped (or enhanced) pairs that passed registration QC; failed ones are named."""
    crops, skipped = [], []
    for d in map(Path, crop_dirs):
        box = read_json(d / "box.json")
        if not box.get("qc_passed", True):
            skipped.append(d.name)
            log.warning("%s: left out (registration QC failed: %s)", d,
                        "; ".join(box.get("qc_failures", [])))
            continue
        lr, _ = read_image(d / "lr.tif")
        hr, _ = read_image(d / "hr.tif")
        mask = read_mask(d / "mask.tif") if (d / "mask.tif").exists() else np.ones(lr.shape, bool)
        if mask.shape != lr.shape:
            raise ValueError(f"{d / 'mask.tif'}: shape {mask.shape} differs from lr.tif {lr.shape}")
        crops.append(Crop(d.name, lr, hr, mask, box))
    if not crops:
        raise ValueError(f"every pair failed registration QC ({', '.join(skipped)}): nothing to "
                         f"train on; see the qc.png of each pair")
    return crops


@dataclass
class Crop:
    """One registered, cropped pair and its valid mask (LR grid)."""

    name: str
    lr: np.ndarray
    hr: np.ndarray
    mask: np.ndarray
    box: dict

    @property
    def scale(self) -> int:
        """HR pixels per LR pixel laterally."""
        return int(self.box["scale"])

    @property
    def hr_mask(self) -> np.ndarray:
        """The valid mask on the HR grid."""
        return expand_mask(self.mask, lateral_factors(self.lr.ndim, self.scale))
