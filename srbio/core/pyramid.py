"""Pyramid levels: 2× lateral mean-downsampling of blocks (pure array functions)."""

from __future__ import annotations

import numpy as np


def level_mean(block: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """2× lateral mean of a block, cast to ``dtype`` (integers rounded half to even).

    An odd last row or column is averaged with itself (edge replication), so a pixel of the
    coarser level is the mean of the pixels it covers. Sums are taken in float32, exact for
    8- and 16-bit inputs.
    """
    x = np.asarray(block).astype(np.float32, copy=False)
    if x.shape[-2] % 2:
        x = np.concatenate([x, x[..., -1:, :]], axis=-2)
    if x.shape[-1] % 2:
        x = np.concatenate([x, x[..., -1:]], axis=-1)
    mean = x[..., ::2, ::2] + x[..., 1::2, ::2]
    mean += x[..., ::2, 1::2]
    mean += x[..., 1::2, 1::2]
    mean *= 0.25
    if np.dtype(dtype).kind in "iu":
        np.rint(mean, out=mean)
    return mean.astype(dtype)
