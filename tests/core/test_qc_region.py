"""Registration pictures and world-coordinate regions, as arrays (what viewers show)."""

import numpy as np
import pytest

from srbio.core.qc import checkerboard, contrast_range, overlay
from srbio.core.region import line_profile, to_pixels, world_box


def test_a_checkerboard_alternates_squares_of_the_two_images():
    a, b = np.zeros((6, 8)), np.ones((6, 8))
    board = checkerboard(a, b, 2)
    assert board[0, 0] == 0 and board[0, 2] == 1 and board[2, 0] == 1 and board[2, 2] == 0
    assert board[:2, :2].sum() == 0 and board[:2, 2:4].sum() == 4
    stack = checkerboard(np.zeros((3, 4, 4)), np.ones((3, 4, 4)), 1)
    assert (stack[:, 0, 1] == 1).all() and (stack[:, 1, 1] == 0).all()  # same squares per plane
    with pytest.raises(ValueError, match="one grid"):
        checkerboard(a, np.ones((6, 7)), 2)
    with pytest.raises(ValueError, match="at least 1"):
        checkerboard(a, b, 0)


def test_overlay_is_grey_where_both_agree_and_coloured_where_one_is_alone():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    rgb = overlay(a, a, np.ones_like(a, bool))
    assert np.allclose(rgb[..., 0], rgb[..., 1])  # magenta + green of equal weight: grey
    only_a = overlay(a, np.zeros_like(a), np.ones_like(a, bool))
    assert only_a[..., 1].max() == 0 and only_a[..., 0].max() > 0.9
    lo, hi = contrast_range(np.arange(1000.0))
    assert lo == pytest.approx(9.99) and hi == pytest.approx(994.005)


def test_a_world_box_picks_the_pixels_whose_centres_lie_inside():
    # pixel i at 10 + 0.5 i µm: the box [10.4, 11.6] holds the centres of pixels 1, 2 and 3
    assert world_box([10.4], [11.6], scale=[0.5], translate=[10.0], shape=[100]) == ((1, 4),)
    assert world_box([-5.0], [100.0], scale=[0.5], translate=[10.0], shape=[8]) == ((0, 8),)
    assert world_box([1.0], [2.0], scale=[0.5], translate=[10.0], shape=[8]) is None
    # a plane (low == high) picks its nearest pixel
    assert world_box([10.76, 0], [10.76, 3], scale=[0.5, 1], translate=[10, 0],
                     shape=[8, 8]) == ((2, 3), (0, 4))
    assert np.allclose(to_pixels([[11.0, 2.0]], [0.5, 2.0], [10.0, 0.0]), [[2.0, 1.0]])


def test_a_line_profile_is_sampled_in_world_units_on_any_grid():
    ramp = np.tile(np.arange(10, dtype=np.float32), (4, 1))  # value = x index
    d, v = line_profile(ramp, (1.0, 0.0), (1.0, 4.5), scale=(1.0, 0.5), translate=(0.0, 0.0),
                        num=10)
    assert d[-1] == pytest.approx(4.5) and np.allclose(v, d / 0.5)
    # the same physical line on a grid twice as fine gives the same values at the same µm
    fine = np.tile(np.arange(20, dtype=np.float32) / 2, (4, 1))
    d2, v2 = line_profile(fine, (1.0, 0.0), (1.0, 4.5), scale=(1.0, 0.25),
                          translate=(0.0, 0.0), num=10)
    assert np.allclose(d, d2) and np.allclose(v, v2, atol=1e-5)  # both read 2 per µm
    _, outside = line_profile(ramp, (1.0, 0.0), (1.0, 9.0), scale=(1.0, 0.5),
                              translate=(0.0, 0.0), num=3)
    assert np.isnan(outside[-1]) and not np.isnan(outside[0])
