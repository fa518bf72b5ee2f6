"""Grid geometry: the resampling limits."""

import pytest


def test_resampling_limits_refuse_absurd_factors_and_planes():
    from srbio.core.grid import MAX_PLANE_PIXELS, check_resampling

    check_resampling((1.6, 1.6), (0.1, 0.1), (512, 512), what="x", override="--spacing")
    check_resampling((0.1, 0.1), (1.6, 1.6), (512, 512), what="x", override="--spacing")
    with pytest.raises(ValueError, match=r"x: resampling \[1.7, 1.6\] µm onto \[0.1, 0.1\] µm "
                                         r"is a factor of 17, beyond the 16x.*--spacing"):
        check_resampling((1.7, 1.6), (0.1, 0.1), (512, 512), what="x", override="--spacing")
    with pytest.raises(ValueError, match="factor of 20"):  # shrinking counts too
        check_resampling((0.1, 0.1), (2.0, 2.0), (512, 512), what="x", override="--spacing")
    side = int(MAX_PLANE_PIXELS ** 0.5) // 4
    check_resampling((0.4, 0.4), (0.1, 0.1), (side, side), what="x", override="o")
    with pytest.raises(ValueError, match="would make planes of 1.07e\\+09 pixels"):
        check_resampling((0.4, 0.4), (0.1, 0.1), (side, side + 1), what="x", override="o")
