import numpy as np
import pytest

from srbio.core.metrics import nrmse, psnr, ssim, upsample


def test_metrics_known_values():
    t = np.zeros((32, 32))
    p = t + 0.1
    assert psnr(p, t, data_range=1.0) == pytest.approx(20.0)
    assert psnr(t, t, data_range=1.0) == float("inf")
    r = np.random.default_rng(0).random((32, 32))
    assert ssim(r, r, data_range=1.0) == 1.0
    assert nrmse(r, r) == 0.0


def test_upsample_is_pixel_area_aligned():
    lr = np.arange(12, dtype=np.float32).reshape(3, 4)
    near = upsample(lr, 2, order=0)
    np.testing.assert_array_equal(near, np.kron(lr, np.ones((2, 2))))
    cubic = upsample(lr[None], 2, order=3)
    assert cubic.shape == (1, 6, 8)
    # block means of the cubic upsampling come back to the LR values inside the image
    blocks = cubic[0].reshape(3, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(blocks[1:-1, 1:-1], lr[1:-1, 1:-1], atol=0.05)


def test_masked_metrics_ignore_invalid_pixels():
    rng = np.random.default_rng(1)
    t = rng.random((40, 40))
    p = t.copy()
    p[:, :10] = 5.0  # garbage where the mask says invalid
    mask = np.zeros_like(t, bool)
    mask[:, 10:] = True
    assert psnr(p, t, data_range=1.0, mask=mask) == float("inf")
    assert nrmse(p, t, mask=mask) == 0.0
    assert ssim(p, t, data_range=1.0, mask=mask) == pytest.approx(1.0)
    assert ssim(p, t, data_range=1.0) < 0.9  # unmasked, the garbage counts
    with pytest.raises(ValueError, match="no valid pixel"):
        psnr(p, t, data_range=1.0, mask=np.zeros_like(mask))
    with pytest.raises(ValueError, match="SSIM window"):
        ssim(p, t, data_range=1.0, mask=np.eye(40, dtype=bool))


def test_linear_fit_recovers_gain_and_offset_over_the_mask():
    from srbio.core.metrics import linear_fit

    rng = np.random.default_rng(0)
    pred = rng.random((30, 40))
    target = 2.5 * pred - 0.3
    mask = np.ones_like(pred, bool)
    mask[:5] = False
    target[:5] = 99.0  # outside the mask: ignored
    a, b = linear_fit(pred, target, mask=mask)
    assert a == pytest.approx(2.5) and b == pytest.approx(-0.3)
    assert linear_fit(np.full((4, 4), 3.0), np.arange(16.0).reshape(4, 4)) == (0.0, 7.5)


def test_near_duplicates_are_found_by_correlation():
    from srbio.core.metrics import correlation, near_duplicates

    rng = np.random.default_rng(1)
    a = rng.random((20, 30))
    images = {"a": a, "a-again": 3 * a + 10 + 0.001 * rng.random((20, 30)),
              "other": rng.random((20, 30)), "bigger": np.pad(a, ((0, 4), (0, 2)))}
    found = near_duplicates(images)
    assert [(x, y) for x, y, _ in found] == [("a", "a-again"), ("a", "bigger"),
                                            ("a-again", "bigger")]
    assert all(r > 0.99 for *_, r in found)
    assert abs(correlation(a, images["other"])) < 0.2

