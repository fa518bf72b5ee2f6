"""Training: patch datasets, the Lightning module and the loop."""

from srbio.train.data import PatchDataset
from srbio.train.module import SRModule, fit

__all__ = ["PatchDataset", "SRModule", "fit"]
