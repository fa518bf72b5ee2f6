import numpy as np
import pytest

from srbio.core.normalise import denormalise, estimate_range, normalise


def test_normalise_then_denormalise_is_the_identity():
    x = np.random.default_rng(0).integers(0, 65535, (50, 60)).astype(np.uint16)
    y = normalise(x, 100.0, 4000.0)
    assert y.dtype == np.float32
    np.testing.assert_allclose(denormalise(y, 100.0, 4000.0), x, rtol=1e-6, atol=1e-3)
    # fixed values: vmin -> 0, vmax -> 1, and no clipping beyond
    np.testing.assert_allclose(normalise(np.array([100, 4000, 7900]), 100, 4000), [0, 1, 2])


def test_normalise_does_not_modify_its_input():
    x = np.arange(10, dtype=np.float32)
    before = x.copy()
    normalise(x, 0, 9)
    np.testing.assert_array_equal(x, before)


def test_estimate_range_uses_all_images_and_masks():
    a = np.arange(1000, dtype=np.float32)
    b = np.arange(1000, 2000, dtype=np.float32)
    lo, hi = estimate_range([a, b], percentiles=(0, 100))
    assert (lo, hi) == (0.0, 1999.0)
    lo, hi = estimate_range([a, b], percentiles=(0, 100), masks=[a < 10, b > 1990])
    assert (lo, hi) == (0.0, 1999.0)
    lo, hi = estimate_range([a], percentiles=(10, 90))
    assert lo == pytest.approx(99.9) and hi == pytest.approx(899.1)


def test_invalid_ranges_are_errors():
    with pytest.raises(ValueError, match="vmax"):
        normalise(np.ones(3), 5, 5)
    with pytest.raises(ValueError, match="percentiles"):
        estimate_range([np.ones(10)])
