"""The one 16-bit policy of srbio: how float results become integers, and when that is refused.

- :func:`to_uint16` (patches): lossless or refused: integers are cast, floats are rounded only
  when they lie inside 0..65535; anything else is an error naming the source.
- :func:`cast_clipped` (prediction output, simulated counts): round, clip to the dtype's range,
  and count what was clipped on each side, so the caller can report it.
- :func:`fit_uint16` (enhanced images): never clip; if the maximum exceeds 65535, multiply the
  whole image by one gain, returned so it can be recorded.
"""

from __future__ import annotations

import numpy as np

UINT16_MAX = 65535.0


def to_uint16(image: np.ndarray, *, source: str) -> np.ndarray:
    """Convert to uint16 without silent loss: integers are cast, floats must be in range.

    Raises
    ------
    ValueError
        When values fall outside 0..65535, naming ``source`` and the range found.
    """
    if image.dtype == np.uint16:
        return image
    if image.dtype == np.uint8:
        return image.astype(np.uint16)
    lo, hi = float(np.min(image)), float(np.max(image))
    if lo < 0 or hi > UINT16_MAX:
        raise ValueError(f"{source}: values {lo}..{hi} do not fit 16-bit patches (0..65535); "
                         f"rescale the data first")
    return np.rint(image).astype(np.uint16)


def cast_clipped(values: np.ndarray, dtype: np.dtype | str, *, low: float | None = None
                 ) -> tuple[np.ndarray, int, int]:
    """Cast to ``dtype``; integer dtypes are rounded and clipped, clipped pixels counted.

    Parameters
    ----------
    values : numpy.ndarray
        Float values.
    dtype : dtype
        Target dtype (float32 is a plain cast).
    low : float, optional
        A lower bound above the dtype's minimum (e.g. 1 for simulated counts, keeping 0 free
        for the fill value).

    Returns
    -------
    (array, n_low, n_high)
        The cast array and the number of pixels clipped below and above.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return values.astype(dtype), 0, 0
    info = np.iinfo(dtype)
    lo = info.min if low is None else max(info.min, low)
    n_low = int(np.count_nonzero(values < lo))
    n_high = int(np.count_nonzero(values > info.max))
    out = np.rint(values)
    return np.clip(out, lo, info.max, out=out).astype(dtype), n_low, n_high


def fit_uint16(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale ``image`` into the 16-bit range by one gain when its maximum exceeds 65535.

    Returns the (possibly) scaled float32 image and the gain applied (1.0 when none was needed).
    """
    peak = float(np.max(image))
    if peak <= UINT16_MAX:
        return image.astype(np.float32, copy=False), 1.0
    gain = UINT16_MAX / peak
    return (image * gain).astype(np.float32), gain
