import numpy as np
import pytest

from srbio.core.crop import largest_valid_box, scale_box
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
