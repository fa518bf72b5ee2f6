"""Training: patch datasets, the Lightning module and the loop.

``fit`` and ``SRModule`` import torch and Lightning on first use, so that light modules of
this package (:mod:`srbio.train.layout`) can check inputs before they are loaded.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PatchDataset", "SRModule", "fit"]


def __getattr__(name: str) -> Any:
    """Import the training machinery when one of its names is first used."""
    if name == "PatchDataset":
        from srbio.train.data import PatchDataset

        return PatchDataset
    if name in ("SRModule", "fit"):
        from srbio.train import module

        return getattr(module, name)
    raise AttributeError(f"module 'srbio.train' has no attribute {name!r}")
