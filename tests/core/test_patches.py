import numpy as np
import pytest

from srbio.core.dtypes import to_uint16
from srbio.core.grid import split_bounds
from srbio.core.patches import sample_patches, window_corners


def test_split_bounds_are_disjoint_and_cover_the_axis():
    b = split_bounds(146, 0.2, 0.2)
    assert b == {"train": (0, 88), "val": (88, 117), "test": (117, 146)}


def test_patches_stay_inside_their_region_and_pair_exactly():
    rng = np.random.default_rng(0)
    lr = np.arange(3 * 60 * 50, dtype=np.uint16).reshape(3, 60, 50)
    hr = np.kron(lr, np.ones((1, 2, 2), np.uint16))  # HR = LR upsampled: patches must match
    plr, phr = sample_patches(lr, hr, scale=2, size=8, n=50, axis=-2, bounds=(40, 60),
                              min_foreground=0.0, threshold=0, rng=rng)
    assert plr.shape == (50, 8, 8) and phr.shape == (50, 16, 16) and plr.dtype == np.uint16
    np.testing.assert_array_equal(np.kron(plr, np.ones((1, 2, 2), np.uint16)), phr)
    rows = (plr.astype(int) % (60 * 50)) // 50
    assert rows.min() >= 40 and rows.max() < 60


def test_foreground_sampling_prefers_structures():
    rng = np.random.default_rng(0)
    hr = np.full((1, 200, 200), 100, np.uint16)
    hr[0, 150:, 150:] = 1000  # one bright corner (6% of the image)
    lr = hr[:, ::2, ::2]
    _, phr = sample_patches(lr, hr, scale=2, size=10, n=20, axis=-2, bounds=(0, 100),
                            min_foreground=0.2, threshold=500, rng=rng,
                            max_tries=200)  # P(no foreground in 200 tries) ~ 2e-6
    assert np.mean([(p > 500).mean() >= 0.2 for p in phr]) == 1.0


def test_region_smaller_than_a_patch_and_out_of_range_floats_are_errors():
    with pytest.raises(ValueError, match="smaller than the patch size"):
        sample_patches(np.zeros((10, 10), np.uint16), np.zeros((20, 20), np.uint16), scale=2,
                       size=8, n=1, axis=-2, bounds=(0, 5), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="do not fit 16-bit"):
        to_uint16(np.array([-5.0, 3.0], np.float32), source="x")
    assert to_uint16(np.array([1.4, 2.6], np.float32), source="x").tolist() == [1, 3]


def test_window_corners_match_a_brute_force_check():
    rng = np.random.default_rng(2)
    mask = rng.random((2, 20, 24)) > 0.1
    corners = window_corners(mask, 3)
    assert corners.shape == (2, 18, 22)
    for z, y, x in [(0, 0, 0), (1, 5, 7), (0, 17, 21), (1, 10, 3)]:
        assert corners[z, y, x] == mask[z, y:y + 3, x:x + 3].all()
    assert window_corners(mask, 30).size == 0


def test_patches_never_touch_invalid_pixels_of_real_wedges(sample):
    """LR/HR from the real sample (with its deskew wedges): every patch is wholly valid."""
    from srbio.core.grid import block_all, block_mean
    from srbio.core.validity import valid_mask

    image, _ = sample
    valid = block_all(valid_mask(image), (1, 2, 2))
    lr = np.rint(block_mean(image, (1, 2, 2))).astype(np.uint16)
    hr = image[:, :lr.shape[1] * 2, :lr.shape[2] * 2]
    # mark invalid LR pixels with a sentinel, so any touched one would show in a patch
    lr = np.where(valid, lr, 0).astype(np.uint16)
    assert (lr[valid] > 0).all()
    plr, _ = sample_patches(lr, hr, scale=2, size=16, n=300, axis=-2, bounds=(0, lr.shape[1]),
                            rng=np.random.default_rng(0), mask=valid)
    assert (plr > 0).all()
    # without the mask the sampler does land on the wedges
    plr_any, _ = sample_patches(lr, hr, scale=2, size=16, n=300, axis=-2,
                                bounds=(0, lr.shape[1]), rng=np.random.default_rng(0),
                                min_foreground=0.0)
    assert (plr_any == 0).any()
