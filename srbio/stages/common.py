"""Helpers shared by the stages: spacing arguments, the split, and loading prepared pairs."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from srbio.config import SplitConfig
from srbio.core.grid import expand_mask, lateral_factors, split_bounds
from srbio.io import read_image, read_mask
from srbio.io.checksums import checksum
from srbio.io.records import Crop, CropFiles, InputFile
from srbio.provenance import provenance

log = logging.getLogger(__name__)


def as_spacing(values: Sequence[float] | None) -> tuple[float, ...] | None:
    """Config list → tuple (or None)."""
    return None if values is None else tuple(float(v) for v in values)


def input_checksums(inputs: Sequence[tuple[str, str | os.PathLike]]) -> list[InputFile]:
    """Every ``(role, path)`` a stage read, with its checksum as it is now."""
    return [InputFile(role=role, path=str(path), **checksum(path)) for role, path in inputs]


def lineage(config: dict[str, BaseModel], inputs: Sequence[tuple[str, str | os.PathLike]]
            ) -> dict:
    """What made a stage's record: its ``provenance``, ``config`` and ``inputs`` fields.

    ``config`` holds the sections the run used by name, ``inputs`` the (role, path) of every
    file or folder it read (checksummed here, by :func:`srbio.io.checksums.checksum`).
    """
    return {"provenance": provenance(),
            "config": {name: section.model_dump(mode="json") for name, section in config.items()},
            "inputs": input_checksums(inputs)}


def split_regions(lr: np.ndarray, split: SplitConfig) -> tuple[int, dict[str, tuple[int, int]]]:
    """The split axis of a cropped LR image and its train/val/test bounds (LR pixels)."""
    axis = -2 if split.axis == "y" else -1
    return axis, split_bounds(lr.shape[axis], split.val_fraction, split.test_fraction)


@dataclass
class PreparedPair:
    """One registered, cropped (maybe enhanced) pair, its valid mask (LR grid) and record."""

    name: str
    lr: np.ndarray
    hr: np.ndarray
    mask: np.ndarray
    record: Crop

    @property
    def scale(self) -> int:
        """HR pixels per LR pixel laterally."""
        return self.record.scale

    @property
    def hr_mask(self) -> np.ndarray:
        """The valid mask on the HR grid."""
        return expand_mask(self.mask, lateral_factors(self.lr.ndim, self.scale))


def load_pair(folder: str | os.PathLike, record: Crop | None = None) -> PreparedPair:
    """Read one crop (or enhance) folder through its record (read here unless given)."""
    files = CropFiles(folder)
    record = record or Crop.read(files.record)
    lr, _ = read_image(files.lr)
    hr, _ = read_image(files.hr)
    mask = read_mask(files.mask)
    if mask.shape != lr.shape:
        raise ValueError(f"{files.mask}: shape {mask.shape} differs from {files.lr} {lr.shape}")
    expected = tuple(n * f for n, f in zip(lr.shape, lateral_factors(lr.ndim, record.scale),
                                           strict=True))
    if hr.shape != expected:
        raise ValueError(f"{files.hr}: shape {hr.shape} is not the LR's {lr.shape} × scale "
                         f"{record.scale} ({expected}); the folder mixes two runs")
    return PreparedPair(Path(folder).name, lr, hr, mask, record)


def load_pairs(folders: Sequence[str | os.PathLike]) -> list[PreparedPair]:
    """The prepared pairs that passed registration QC; the others are named and left out."""
    pairs, skipped = [], []
    for folder in folders:
        record = Crop.read(CropFiles(folder).record)
        if not record.qc.passed:
            skipped.append(Path(folder).name)
            log.warning("%s: left out (registration QC failed: %s)", folder,
                        "; ".join(record.qc.failures))
            continue
        pairs.append(load_pair(folder, record))
    if not pairs:
        raise ValueError(f"every pair failed registration QC ({', '.join(skipped)}): nothing to "
                         f"train on; see the qc.png of each pair")
    return pairs
