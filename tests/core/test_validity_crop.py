import itertools
import math

import numpy as np
import pytest

from srbio.core.crop import largest_valid_box, valid_bbox
from srbio.core.grid import block_all, expand_mask, scale_box
from srbio.core.validity import detect_fill_value, valid_mask


def test_real_deskew_wedges_are_detected_as_invalid(sample):
    image, _ = sample
    assert detect_fill_value(image) == 98.0
    mask = valid_mask(image)
    # the wedges hold ~35% of this crop; every invalid pixel carries the fill value
    assert 0.30 < 1 - mask.mean() < 0.40
    assert np.all(image[~mask] == 98)
    # the valid parallelogram drifts ~2.5 px in x per plane (deskew geometry)
    first = [int(np.argmax(mask[z, 160])) for z in (0, 39)]
    assert 80 < first[1] - first[0] < 115


def test_camera_noise_without_fill_is_all_valid():
    noise = np.random.default_rng(0).poisson(100, (64, 64)).astype(np.uint16)
    assert detect_fill_value(noise) is None
    assert valid_mask(noise).all()


def test_crop_box_of_a_zero_padded_image_is_exact():
    rng = np.random.default_rng(1)
    image = np.zeros((100, 120), np.uint16)
    image[7:83, 11:97] = rng.integers(1, 1000, (76, 86))
    assert largest_valid_box(valid_mask(image)) == ((7, 83), (11, 97))


def test_3d_box_trades_planes_for_width():
    mask = np.zeros((10, 50, 60), bool)
    mask[:, 5:45, 10:50] = True  # valid in every plane
    mask[:2, 5:45, 10:40] = False  # two narrow planes: all 10 planes give 10*40*10 = 4000,
    box = largest_valid_box(mask)  # planes 2..9 give 8*40*40 = 12800 voxels
    assert box == ((2, 10), (5, 45), (10, 50))
    mask[:2] = False
    mask[2:, 5:45, 10:50] = True
    assert largest_valid_box(mask) == ((2, 10), (5, 45), (10, 50))


def test_empty_mask_is_an_error():
    with pytest.raises(ValueError, match="share no valid pixel"):
        largest_valid_box(np.zeros((5, 5), bool))


def test_hr_box_is_lr_box_times_scale_laterally():
    assert scale_box(((2, 10), (5, 45), (10, 50)), (1, 2, 2)) == ((2, 10), (10, 90), (20, 100))


def test_valid_bbox_of_the_real_wedges_keeps_every_valid_voxel(sample):
    image, _ = sample
    mask = valid_mask(image)
    box = valid_bbox(mask)
    inside = mask[tuple(slice(a, b) for a, b in box)]
    assert inside.sum() == mask.sum()  # nothing valid is cut away
    # tight: every face of the box touches a valid voxel
    for axis, (a, b) in enumerate(box):
        assert mask.take(a, axis=axis).any() and mask.take(b - 1, axis=axis).any()
    # the all-valid box of the same mask keeps only part (the wedges drift across z)
    all_valid = largest_valid_box(mask)
    kept = mask[tuple(slice(a, b) for a, b in all_valid)].sum() / mask.sum()
    assert kept < 0.8


def test_expand_mask_repeats_lateral_pixels():
    m = np.array([[[1, 0], [0, 1]]], bool)
    out = expand_mask(m, (1, 2, 2))
    assert out.shape == (1, 4, 4)
    np.testing.assert_array_equal(out[0, :2, :2], True)
    np.testing.assert_array_equal(out[0, :2, 2:], False)


def _brute_force_max_volume(mask):
    """Volume of the largest all-True box, checking every box (all at once, summed-area table)."""
    nd = mask.ndim
    table = np.pad(mask.astype(np.int64), [(1, 0)] * nd)
    for axis in range(nd):
        table = table.cumsum(axis=axis)
    # every box: axis k has its start on mesh axis 2k and its stop on mesh axis 2k + 1
    starts, stops = [], []
    for k, n in enumerate(mask.shape):
        shape = [1] * (2 * nd)
        shape[2 * k] = n + 1
        starts.append(np.arange(n + 1).reshape(shape))
        stops.append(np.arange(n + 1).reshape(np.roll(shape, 1)))
    count = 0
    for corner in itertools.product((0, 1), repeat=nd):  # inclusion-exclusion
        index = tuple(starts[k] if c else stops[k] for k, c in enumerate(corner))
        count = count + (-1) ** sum(corner) * table[index]
    volume = math.prod(np.maximum(b - a, 0) for a, b in zip(starts, stops, strict=True))
    return int(volume[count == volume].max())


def _random_masks(ndim, n, seed):
    """Seeded small masks: i.i.d. at several densities, or unions of random boxes."""
    rng = np.random.default_rng(seed)
    limits = (7, 8) if ndim == 2 else (4, 5, 6)
    for i in range(n):
        shape = tuple(int(rng.integers(1, m + 1)) for m in limits)
        if i % 4 == 3:
            mask = np.zeros(shape, bool)
            for _ in range(rng.integers(1, 4)):
                lo = [int(rng.integers(0, s)) for s in shape]
                hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape, strict=True)]
                mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
        else:
            mask = rng.random(shape) < rng.choice([0.3, 0.6, 0.8, 0.9, 0.97])
        yield mask


@pytest.mark.parametrize("ndim", [2, 3])
def test_largest_valid_box_matches_brute_force_on_random_masks(ndim):
    checked = 0
    for mask in _random_masks(ndim, 300, seed=ndim):
        if not mask.any():
            with pytest.raises(ValueError, match="share no valid pixel"):
                largest_valid_box(mask)
            continue
        box = largest_valid_box(mask)
        assert len(box) == ndim
        assert all(0 <= a < b <= n for (a, b), n in zip(box, mask.shape, strict=True))
        assert mask[tuple(slice(a, b) for a, b in box)].all()
        assert np.prod([b - a for a, b in box]) == _brute_force_max_volume(mask)
        checked += 1
    assert checked > 250


def test_largest_valid_box_of_the_real_wedges_is_pinned(sample):
    """Regression: the exact boxes of the real mask and of its 2x lateral blocks (LR grid)."""
    mask = valid_mask(sample[0])
    assert largest_valid_box(mask) == ((0, 40), (0, 320), (116, 264))
    assert largest_valid_box(block_all(mask, (1, 2, 2))) == ((0, 40), (0, 160), (58, 132))
