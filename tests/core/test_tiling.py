"""Tile plans: coverage, halos, blend weights, on odd and prime lengths."""

import numpy as np
import pytest

from srbio.core.tiling import (
    ITERATE,
    AxisSettings,
    Stitcher,
    input_region,
    plan_axis,
    plan_region,
)


def _random_axes(n, seed):
    """Seeded (region, length, settings): odd and prime lengths, tiles beyond the axis."""
    rng = np.random.default_rng(seed)
    fixed = [((0, 1), 1, AxisSettings(tile=1)), ((0, 7), 7, AxisSettings(tile=5, halo=2)),
             ((3, 4), 9, AxisSettings(tile=9, halo=4)), ((0, 509), 509,
                                                         AxisSettings(tile=128, halo=8,
                                                                      overlap=16)),
             ((64, 128), 131, AxisSettings(tile=48, halo=10, overlap=8, factor=3))]
    yield from fixed
    for _ in range(n - len(fixed)):
        length = int(rng.integers(1, 600))
        a = int(rng.integers(0, length))
        b = int(rng.integers(a + 1, length + 1))
        halo = int(rng.integers(0, 12))
        overlap = int(rng.integers(0, 10))
        tile = 2 * halo + overlap + int(rng.integers(1, 80))
        yield (a, b), length, AxisSettings(tile=tile, halo=halo, overlap=overlap,
                                           factor=int(rng.integers(1, 4)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kept_parts_cover_the_region_and_every_kept_pixel_has_its_halo(seed):
    for (a, b), length, st in _random_axes(60, seed):
        plan = plan_axis(a, b, length, st)
        case = f"region {(a, b)} length {length} {st}"
        covered = np.zeros(length, int)
        for t in plan.tiles:
            covered[t.keep[0]:t.keep[1]] += 1
            # the window holds the kept part with `halo` of context, or reaches the axis end
            assert t.read[0] <= t.keep[0] and t.keep[1] <= t.read[1], case
            assert t.keep[0] - t.read[0] >= st.halo or t.read[0] == 0, case
            assert t.read[1] - t.keep[1] >= st.halo or t.read[1] == length, case
            assert 0 <= t.read[0] and t.read[1] <= length, case
        assert covered[a:b].min() >= 1 and covered[:a].sum() + covered[b:].sum() == 0, case
        # one window size per plan (so the tiles batch together), never above a tile
        sizes = {t.read[1] - t.read[0] for t in plan.tiles}
        assert len(sizes) == 1 and sizes.pop() <= min(st.tile, length), case
        assert len({t.keep[1] - t.keep[0] for t in plan.tiles}) == 1, case
        # neighbours overlap by at least `overlap` (where there are neighbours)
        for p, q in zip(plan.tiles, plan.tiles[1:], strict=False):
            assert p.keep[1] - q.keep[0] >= st.overlap and q.keep[0] > p.keep[0], case
        # as few tiles as the kept size allows
        most = st.tile - 2 * st.halo
        assert len(plan.tiles) <= max(1, -(-(b - a - st.overlap) // (most - st.overlap))), case


@pytest.mark.parametrize("seed", [0, 1])
def test_blend_weights_sum_to_one_and_are_flat_where_one_tile_covers(seed):
    for (a, b), length, st in _random_axes(60, seed):
        plan = plan_axis(a, b, length, st)
        f = st.factor
        total = np.zeros((b - a) * f)
        for t, w in zip(plan.tiles, plan.weights(), strict=True):
            assert w.shape == ((t.keep[1] - t.keep[0]) * f,) and w.min() > 0
            total[t.keep[0] * f - a * f:t.keep[1] * f - a * f] += w
        np.testing.assert_allclose(total, 1.0, atol=1e-6)
        if len(plan.tiles) == 1:
            assert np.all(plan.weights()[0] == 1)


def test_a_known_plan():
    # 100 px, tiles of 40 with halo 5 (kept ≤ 30) and overlap 4: 4 tiles of 28 kept px
    plan = plan_axis(0, 100, 100, AxisSettings(tile=40, halo=5, overlap=4))
    assert [t.keep for t in plan.tiles] == [(0, 28), (24, 52), (48, 76), (72, 100)]
    assert [t.read for t in plan.tiles] == [(0, 38), (19, 57), (43, 81), (62, 100)]
    assert plan.window == (0, 100)
    w = plan.weights()
    np.testing.assert_allclose(w[0][:24], 1)
    np.testing.assert_allclose(w[0][24:] + w[1][:4], 1)
    assert np.all(np.diff(w[0][24:]) < 0) and np.all(np.diff(w[1][:4]) > 0)


def test_a_plan_reads_its_region_plus_its_halo_only():
    plan = plan_axis(200, 300, 1000, AxisSettings(tile=64, halo=6, overlap=0))
    assert [t.keep for t in plan.tiles] == [(200, 250), (250, 300)]
    assert plan.window == (194, 306)  # no computation beyond kept part + halo
    # a region narrower than the network accepts at the end of the axis reads what it needs
    edge = plan_axis(998, 1000, 1000, AxisSettings(tile=64, halo=6, min_read=15))
    assert [(t.read, t.keep) for t in edge.tiles] == [((985, 1000), (998, 1000))]
    assert plan.output == (200, 300)


def test_iterated_axes_are_one_index_per_tile():
    plan = plan_axis(2, 5, 9, ITERATE)
    assert [(t.read, t.keep) for t in plan.tiles] == [((2, 3), (2, 3)), ((3, 4), (3, 4)),
                                                      ((4, 5), (4, 5))]


def test_settings_that_keep_nothing_are_refused():
    with pytest.raises(ValueError, match="leaves no kept part"):
        AxisSettings(tile=20, halo=8, overlap=4)


def test_output_regions_must_fall_on_input_pixels():
    assert input_region([(0, 6), (4, 12)], (3, 6), (2, 2)) == [(0, 3), (2, 6)]
    with pytest.raises(ValueError, match="does not fall on the input pixels"):
        input_region([(1, 6)], (3,), (2,))


def test_stitching_an_identity_gives_back_the_input():
    rng = np.random.default_rng(0)
    image = rng.random((37, 53)).astype(np.float32)
    settings = [AxisSettings(tile=16, halo=3, overlap=4), AxisSettings(tile=20, halo=2,
                                                                       overlap=5)]
    plan = plan_region([(5, 37), (0, 41)], image.shape, settings)
    window = image[plan.window]
    stitcher = Stitcher(plan)
    for index in plan.indices():
        stitcher.add(index, window[plan.read(index)])
    np.testing.assert_allclose(stitcher.result(), image[5:37, 0:41], atol=1e-6)
    assert len(plan) == len(list(plan.indices())) > 4
