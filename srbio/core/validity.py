"""Valid-region masks: which pixels hold real data rather than a border fill."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _border_values(image: np.ndarray) -> np.ndarray:
    faces = []
    for axis in range(image.ndim):
        faces.append(np.take(image, 0, axis=axis).ravel())
        faces.append(np.take(image, -1, axis=axis).ravel())
    return np.concatenate(faces)


def detect_fill_value(image: np.ndarray, *, min_fraction: float = 0.005) -> float | None:
    """Guess the constant value that fills invalid border regions, if any.

    The candidate is the most frequent value on the array's faces; it is accepted when one
    connected region of exactly that value touches the border and covers at least
    ``min_fraction`` of the image (camera noise never forms such regions).

    Parameters
    ----------
    image : numpy.ndarray
        2D or 3D image.
    min_fraction : float
        Minimum size of the fill region, as a fraction of the image size.

    Returns
    -------
    float or None
        The fill value, or None when the image has no fill region.
    """
    values, counts = np.unique(_border_values(image), return_counts=True)
    candidate = values[np.argmax(counts)]
    regions = _border_regions(image == candidate)
    if regions.sum() >= max(16, min_fraction * image.size):
        return float(candidate)
    return None


def _border_regions(flags: np.ndarray, min_size: int = 1) -> np.ndarray:
    labels, n = ndi.label(flags)
    if n == 0:
        return np.zeros(flags.shape, bool)
    on_border = np.unique(_border_values(labels))
    on_border = on_border[on_border > 0]
    if min_size > 1 and on_border.size:
        sizes = ndi.sum_labels(np.ones(flags.shape, np.int32), labels, on_border)
        on_border = on_border[sizes >= min_size]
    return np.isin(labels, on_border)


def valid_mask(
    image: np.ndarray, *, fill: float | str | None = "auto", min_fraction: float = 0.005
) -> np.ndarray:
    """Mask of valid pixels: everything except fill-valued regions connected to the border.

    Parameters
    ----------
    image : numpy.ndarray
        2D or 3D image (not modified).
    fill : float, "auto" or None
        The fill value of invalid regions; ``"auto"`` detects it with
        :func:`detect_fill_value`; None declares every pixel valid.
    min_fraction : float
        With ``fill="auto"``, the minimum size of a fill region (fraction of the image);
        with an explicit fill, border-connected regions smaller than this are still invalid
        only if they hold at least 16 pixels.

    Returns
    -------
    numpy.ndarray of bool
        True where the pixel holds data.
    """
    if fill == "auto":
        fill = detect_fill_value(image, min_fraction=min_fraction)
    if fill is None:
        return np.ones(image.shape, bool)
    min_size = max(16, int(min_fraction * image.size)) if min_fraction else 1
    return ~_border_regions(image == fill, min_size=min_size)
