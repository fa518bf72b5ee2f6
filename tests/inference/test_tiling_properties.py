"""Tiled prediction on odd plane shapes: every output pixel is covered and correctly weighted.

A nearest-neighbour upsampler is purely local, so the exact answer is known: each tile's
prediction equals the upsampled input on the tile, and the blended plane must equal the
upsampled plane everywhere (an uncovered pixel would be NaN, a wrongly normalised weight
would scale it).
"""

import numpy as np
import pytest
import torch
from torch import nn

from srbio.inference import TiledPredictor

SHAPES = [(17, 53), (101, 7), (1, 1), (1, 9), (2, 3), (5, 97), (13, 13), (31, 29), (64, 63),
          (97, 41), (3, 128)]


class Nearest(nn.Module):
    """Nearest-neighbour upsampling by ``scale``: the output is known exactly."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=scale, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


def _cases(n, seed):
    """Seeded (shape, tile shape, overlap, scale); tiles are sometimes larger than the plane."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        shape = SHAPES[i % len(SHAPES)]
        tile = tuple(int(rng.integers(3, 72)) for _ in range(2))
        overlap = 0 if i % 4 == 0 else int(rng.integers(1, 20))
        yield shape, tile, overlap, int(rng.choice([1, 2, 3]))


@pytest.mark.parametrize("seed", [0, 1])
def test_tiled_nearest_upsampling_is_exact_on_odd_shapes(seed):
    rng = np.random.default_rng(100 + seed)
    for shape, tile, overlap, s in _cases(33, seed):
        predictor = TiledPredictor(Nearest(s), scale=s, lr_range=(0, 1), hr_range=(0, 1),
                                   tile_shape=tile, overlap=overlap, batch_size=64)
        plane = rng.random(shape).astype(np.float32)
        expected = plane.repeat(s, axis=0).repeat(s, axis=1)
        case = f"shape={shape} tile={tile} overlap={overlap} scale={s}"
        out = predictor.predict_plane(plane)
        assert out.shape == (shape[0] * s, shape[1] * s), case
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6, err_msg=case)
        sy, sx, _ = predictor.grid(shape)
        assert predictor.tiles_computed == len(sy) * len(sx), case
        # any output region is the same slice of the whole plane (one global grid)
        (y0, y1), (x0, x1) = (np.sort(rng.choice(n * s + 1, 2, replace=False)) for n in shape)
        region = predictor.predict_region(lambda a, b, c, d, p=plane: p[a:b, c:d], shape,
                                          (slice(y0, y1), slice(x0, x1)))
        np.testing.assert_allclose(region, out[y0:y1, x0:x1], rtol=0, atol=1e-6, err_msg=case)
