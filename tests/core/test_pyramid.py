"""Pyramid levels: the 2× lateral mean on odd and even sides, rounded like numpy."""

import numpy as np
import pytest

from srbio.core.pyramid import level_mean


@pytest.mark.parametrize("shape", [(6, 8), (7, 9), (3, 5, 4), (1, 1), (2, 1, 3)])
@pytest.mark.parametrize("dtype", ["uint16", "uint8", "float32"])
def test_level_mean_is_the_mean_of_the_covered_pixels(shape, dtype):
    rng = np.random.default_rng(0)
    block = rng.integers(0, 250, shape).astype(dtype)
    out = level_mean(block, dtype)
    h, w = shape[-2:]
    assert out.shape == (*shape[:-2], -(-h // 2), -(-w // 2)) and out.dtype == np.dtype(dtype)
    padded = np.pad(block.astype(np.float64), [(0, 0)] * (len(shape) - 2)
                    + [(0, h % 2), (0, w % 2)], mode="edge")
    ref = padded.reshape(*shape[:-2], padded.shape[-2] // 2, 2, padded.shape[-1] // 2, 2)
    ref = ref.mean(axis=(-3, -1))
    if dtype != "float32":
        ref = np.rint(ref)  # halves to even, as numpy rounds
    np.testing.assert_allclose(out, ref.astype(dtype), rtol=1e-6)


def test_level_mean_of_a_corner_pixel_keeps_its_value():
    block = np.zeros((3, 3), np.uint16)
    block[2, 2] = 1000  # the odd corner is averaged with its own copies
    assert level_mean(block, "uint16")[1, 1] == 1000
