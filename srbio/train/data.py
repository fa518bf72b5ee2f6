"""Dataset over 16-bit patch pairs, normalised with fixed values, with 8-fold augmentation."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from srbio.core.normalise import normalise


class PatchDataset(Dataset):
    """LR/HR patch pairs as normalised float tensors of shape (1, h, w).

    Parameters
    ----------
    lr, hr : numpy.ndarray
        (N, h, w) and (N, h*scale, w*scale) uint16 patches.
    lr_range, hr_range : (float, float)
        Fixed normalisation (vmin, vmax) of each modality.
    augment : bool
        Apply a random one of the 8 flips/rotations (the dihedral group) to each pair.
    gain : (float, float) or None
        With ``augment``, multiply both normalised images by one factor drawn log-uniformly
        from this range (intensity scaling about the fixed vmin of each modality), so the
        network also handles structures brighter or dimmer than the training ones.
    """

    def __init__(self, lr: np.ndarray, hr: np.ndarray, *, lr_range: tuple[float, float],
                 hr_range: tuple[float, float], augment: bool,
                 gain: tuple[float, float] | None = None) -> None:
        if len(lr) != len(hr):
            raise ValueError(f"{len(lr)} LR patches but {len(hr)} HR patches")
        if len(lr) == 0:
            raise ValueError("no patches: check the patch extraction settings")
        self.lr = np.asarray(lr)
        self.hr = np.asarray(hr)
        self.lr_range = lr_range
        self.hr_range = hr_range
        self.augment = augment
        self.gain = gain

    def __len__(self) -> int:
        return len(self.lr)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalise(self.lr[i], *self.lr_range)
        y = normalise(self.hr[i], *self.hr_range)
        if self.augment:
            k = int(torch.randint(0, 8, ()).item())
            x, y = np.rot90(x, k % 4), np.rot90(y, k % 4)
            if k >= 4:
                x, y = x[:, ::-1], y[:, ::-1]
            if self.gain is not None:
                lo, hi = np.log(self.gain[0]), np.log(self.gain[1])
                g = np.float32(np.exp(lo + (hi - lo) * float(torch.rand(()))))
                x, y = x * g, y * g
        return (torch.from_numpy(np.ascontiguousarray(x))[None],
                torch.from_numpy(np.ascontiguousarray(y))[None])
