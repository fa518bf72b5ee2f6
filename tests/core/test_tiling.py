import numpy as np
import pytest

from srbio.core.tiling import balanced_tile, blend_weight, intersecting, ramp, tile_starts


@pytest.mark.parametrize(("length", "tile", "overlap"), [(100, 32, 8), (96, 32, 0), (33, 32, 8),
                                                          (20, 32, 8), (1000, 128, 16)])
def test_tiles_cover_the_axis_with_the_requested_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    t = min(tile, length)
    covered = np.zeros(length, int)
    for s in starts:
        covered[s:s + t] += 1
    assert covered.min() >= 1 and starts[0] == 0 and starts[-1] + t == length
    gaps = np.diff(starts)
    assert np.all(t - gaps >= overlap)


def test_ramp_is_symmetric_positive_and_flat_inside():
    w = ramp(40, 8)
    np.testing.assert_allclose(w, w[::-1])
    assert w.min() > 0 and np.all(w[8:-8] == 1) and np.all(np.diff(w[:8]) > 0)
    assert blend_weight((10, 12), 3).shape == (10, 12)


def test_intersecting_tiles_in_output_coordinates():
    starts = [0, 24, 48]  # LR, tile 32, scale 2 -> HR extents [0,64), [48,112), [96,160)
    assert intersecting(starts, 32, 2, 0, 40) == [0]
    assert intersecting(starts, 32, 2, 50, 60) == [0, 1]
    assert intersecting(starts, 32, 2, 100, 160) == [1, 2]


@pytest.mark.parametrize(("length", "tile", "overlap", "expected"),
                         [(160, 128, 16, 88), (100, 128, 16, 100), (1000, 256, 16, 213),
                          (240, 128, 16, 128)])
def test_balanced_tile_keeps_the_tile_count_and_shrinks_the_tiles(length, tile, overlap,
                                                                   expected):
    t = balanced_tile(length, tile, overlap)
    assert t == expected and t <= tile
    assert len(tile_starts(length, t, overlap)) == len(tile_starts(length, tile, overlap))


def _random_grids(n, seed):
    """Seeded (length, tile, overlap): odd and prime lengths, tiles beyond the axis, overlap 0."""
    rng = np.random.default_rng(seed)
    fixed = [(1, 1, 0), (1, 5, 3), (2, 1, 0), (7, 7, 6), (7, 8, 0), (97, 96, 95), (101, 3, 2),
             (127, 64, 0), (131, 2, 1), (509, 128, 16)]
    yield from fixed
    primes = [p for p in range(2, 600) if all(p % d for d in range(2, int(p ** 0.5) + 1))]
    for i in range(n - len(fixed)):
        length = int(rng.choice(primes)) if i % 2 else int(rng.integers(1, 600))
        tile = int(rng.integers(1, 2 * length + 2))
        overlap = 0 if i % 5 == 0 else int(rng.integers(0, tile))
        yield length, tile, overlap


def _check_cover(length, tile, overlap, starts):
    t = min(tile, length)
    covered = np.zeros(length, int)
    for s in starts:
        covered[s:s + t] += 1
    assert covered.min() >= 1, "a pixel is not covered"
    assert starts[0] == 0 and starts[-1] + t == length
    gaps = np.diff(starts)
    assert np.all(gaps > 0), "starts must strictly increase"
    assert np.all(t - gaps >= overlap), "neighbouring tiles overlap too little"


def test_random_grids_cover_the_axis_with_the_requested_overlap():
    for length, tile, overlap in _random_grids(400, seed=3):
        starts = tile_starts(length, tile, overlap)
        _check_cover(length, tile, overlap, starts)
        if tile < length:  # as few tiles as the stride allows
            assert len(starts) == int(np.ceil((length - overlap) / (tile - overlap)))
        balanced = balanced_tile(length, tile, overlap)
        assert 1 <= balanced <= min(tile, length)
        b_starts = tile_starts(length, balanced, overlap)
        _check_cover(length, balanced, overlap, b_starts)
        assert len(b_starts) == len(starts)
