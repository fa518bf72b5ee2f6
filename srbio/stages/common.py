"""Helpers shared by the stages: JSON outputs and spacing handling."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from srbio.config import SplitConfig
from srbio.core.patches import split_bounds
from srbio.io.atomic import atomic_path


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
