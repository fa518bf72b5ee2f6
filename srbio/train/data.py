"""Dataset over 16-bit patch pairs, normalised with fixed values, with 8-fold augmentation.

Randomness is a pure function of ``(seed, epoch, index)``: :class:`EpochSampler` draws the
order of each epoch from ``(seed, epoch)`` and hands the dataset ``(epoch, index)``, and the
augmentation of an item is drawn from ``(seed, epoch, index)``. An interrupted run resumed
from its last checkpoint therefore sees exactly the batches an uninterrupted run would, with
any number of loader workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from srbio.core.normalise import normalise


def _world() -> tuple[int, int]:
    """(rank, number of processes) of an initialised torch.distributed group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochSampler(Sampler):
    """A shuffled order per epoch, drawn from ``(seed, epoch)``; yields ``(epoch, index)``.

    Lightning calls :meth:`set_epoch` at the start of every epoch, also after a resume. In a
    distributed (DDP) run each process takes every ``world``-th item of the same order, from
    its rank on, so the processes' i-th batches (each ``1/world`` of a step's batch) together
    are the one-process run's i-th batch. The order is cut to a multiple of ``world`` (at most
    ``world - 1`` patches of an epoch's order left out) so every process takes as many items
    and no patch is seen twice in an epoch; fewer patches than processes wrap round instead.
    """

    def __init__(self, n: int, *, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0
        self.skip = 0  # items of the next epoch's order already trained on (a mid-epoch resume)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
        rank, world = _world()
        if world > 1:
            order = np.resize(order, len(self) * world)[rank::world]  # a cut, or a wrap
        skip, self.skip = self.skip, 0
        return iter([(self.epoch, int(i)) for i in order[skip:]])

    def __len__(self) -> int:
        _, world = _world()
        return self.n // world if self.n >= world else 1


class PatchDataset(Dataset):
    """LR/HR patch pairs as normalised float tensors of shape (1, h, w) or (1, d, h, w).

    Parameters
    ----------
    lr, hr : numpy.ndarray or array-like
        (N, h, w) and (N, h*scale, w*scale) uint16 patches: arrays, or lazy readers such as
        :class:`srbio.io.patches.LazyPatches` (``len`` and ``[i]``), read one item at a time.
    lr_range, hr_range : (float, float)
        Fixed normalisation (vmin, vmax) of each modality.
    augment : bool
        Augment each pair (the draws below); off for validation.
    dihedral : bool
        With ``augment``, apply a random one of the 8 lateral flips/rotations (the dihedral
        group) to each pair.
    gain : (float, float) or None
        With ``augment``, multiply both normalised images by one factor drawn log-uniformly
        from this range (intensity scaling about the fixed vmin of each modality), so the
        network also handles structures brighter or dimmer than the training ones.
    seed : int
        Seed of the augmentation draws (with the epoch and the index of each item).
    """

    def __init__(self, lr: np.ndarray, hr: np.ndarray, *, lr_range: tuple[float, float],
                 hr_range: tuple[float, float], augment: bool, dihedral: bool = True,
                 gain: tuple[float, float] | None = None, seed: int = 0) -> None:
        if len(lr) != len(hr):
            raise ValueError(f"{len(lr)} LR patches but {len(hr)} HR patches")
        if len(lr) == 0:
            raise ValueError("no patches: check the patch extraction settings")
        self.lr, self.hr = lr, hr
        self.lr_range = lr_range
        self.hr_range = hr_range
        self.augment, self.dihedral = augment, dihedral
        self.gain = gain
        self.seed = seed

    def __len__(self) -> int:
        return len(self.lr)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``i``, or ``(epoch, i)`` as :class:`EpochSampler` yields it."""
        epoch, i = key if isinstance(key, tuple) else (0, key)
        x = normalise(self.lr[i], *self.lr_range)
        y = normalise(self.hr[i], *self.hr_range)
        if self.augment:
            rng = np.random.default_rng((self.seed, epoch, int(i)))
            k = int(rng.integers(8))  # drawn either way: the gain draws stay the same
            if self.dihedral:
                x, y = np.rot90(x, k % 4, axes=(-2, -1)), np.rot90(y, k % 4, axes=(-2, -1))
                if k >= 4:
                    x, y = x[..., ::-1], y[..., ::-1]
            if self.gain is not None:
                lo, hi = np.log(self.gain[0]), np.log(self.gain[1])
                g = np.float32(np.exp(lo + (hi - lo) * rng.random()))
                x, y = x * g, y * g
        return (torch.from_numpy(np.ascontiguousarray(x))[None],
                torch.from_numpy(np.ascontiguousarray(y))[None])
