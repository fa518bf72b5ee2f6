"""Pictures of a registration, as arrays: what QC shows and measures, for ``qc.png`` and viewers.

Everything is computed on the LR grid aligned with HR (spacing ``hr_spacing × scale``, see
:func:`srbio.core.grid.lr_grid`): HR averaged onto it, the LR resampled onto it before (identity)
and after registration, where both hold data, and for B-spline transforms how far the
deformable part moves each point (µm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from srbio.core import grid
from srbio.core import registration as reg
from srbio.core import transforms as tf


@dataclass
class RegistrationViews:
    """A registered pair on the LR grid aligned with HR (every array of ``shape``).

    Attributes
    ----------
    hr_lr : numpy.ndarray
        HR averaged over each LR pixel's HR pixels.
    before, after : numpy.ndarray
        The LR resampled onto the grid with the identity and with the found transform.
    before_mask, mask : numpy.ndarray of bool
        Where HR and the resampled LR both hold data (before / after).
    displacement : numpy.ndarray or None
        Magnitude of the B-spline part of the transform in µm (None for linear transforms).
    spacing, origin : tuple of float
        The grid's pixel size and first pixel centre in the HR frame, µm.
    """

    hr_lr: np.ndarray
    before: np.ndarray
    after: np.ndarray
    before_mask: np.ndarray
    mask: np.ndarray
    displacement: np.ndarray | None
    spacing: tuple[float, ...]
    origin: tuple[float, ...]


def registration_views(fixed: np.ndarray, moving: np.ndarray, transform: sitk.Transform, *,
                       fixed_spacing: tuple[float, ...], moving_spacing: tuple[float, ...],
                       scale: int, fixed_valid: np.ndarray, moving_valid: np.ndarray
                       ) -> RegistrationViews:
    """The QC views of LR ``moving`` registered onto HR ``fixed`` by ``transform``.

    Parameters
    ----------
    fixed, moving : numpy.ndarray
        HR and LR, same dimensionality (not modified).
    transform : SimpleITK.Transform
        HR physical points → LR physical points (µm), as :func:`~srbio.core.registration.register`
        returns it.
    fixed_spacing, moving_spacing : tuple of float
        Pixel sizes (µm, array axis order).
    scale : int
        HR pixels per grid pixel laterally.
    fixed_valid, moving_valid : numpy.ndarray of bool
        Where each image holds data (the LR's already eroded by the interpolation margin).
    """
    shape, spacing, origin = grid.lr_grid(fixed.shape, fixed_spacing, scale)
    factors = tuple(int(f) for f in grid.lateral_factors(fixed.ndim, scale))
    hr_valid = grid.block_all(fixed_valid, factors)
    identity = sitk.Transform(fixed.ndim, sitk.sitkIdentity)

    def on_grid(image: np.ndarray, t: sitk.Transform, order: str = "linear") -> np.ndarray:
        return reg.resample(image, t, moving_spacing=moving_spacing, shape=shape,
                            spacing=spacing, origin=origin, order=order)

    def support(t: sitk.Transform) -> np.ndarray:
        return on_grid(moving_valid.astype(np.uint8), t, "nearest").astype(bool) & hr_valid

    return RegistrationViews(
        hr_lr=grid.block_mean(fixed, factors), before=on_grid(moving, identity),
        after=on_grid(moving, transform), before_mask=support(identity),
        mask=support(transform),
        displacement=tf.bspline_displacement_um(transform, shape, spacing, origin),
        spacing=tuple(spacing), origin=tuple(origin))


def contrast_range(image: np.ndarray, mask: np.ndarray | None = None,
                   percentiles: tuple[float, float] = (1.0, 99.5)) -> tuple[float, float]:
    """The ``percentiles`` of ``image`` inside ``mask`` (all pixels when empty or None)."""
    values = image[mask] if mask is not None and mask.any() else np.asarray(image).ravel()
    lo, hi = np.percentile(values, percentiles)
    return float(lo), float(max(hi, lo + 1e-9))


def overlay(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Magenta (a) / green (b) RGB overlay, each scaled by its own 1–99.5 percentiles in ``mask``.

    Grey where the two agree, magenta where only ``a`` is bright, green where only ``b`` is.
    """
    def scaled(x: np.ndarray) -> np.ndarray:
        lo, hi = contrast_range(x, mask)
        return np.clip((x - lo) / (hi - lo), 0, 1) * mask
    sa, sb = scaled(a), scaled(b)
    return np.stack([sa, sb, sa], axis=-1)


def checkerboard(a: np.ndarray, b: np.ndarray, square: int) -> np.ndarray:
    """``a`` and ``b`` in alternating squares of ``square`` pixels (last two axes).

    Edges that continue across squares show a good registration; a jump at every square
    border shows a misregistration. Both images must have one shape (one grid).
    """
    if a.shape != b.shape:
        raise ValueError(f"checkerboard of images of shapes {a.shape} and {b.shape}: they must "
                         f"lie on one grid")
    if int(square) < 1:
        raise ValueError(f"checkerboard square is {square} pixels; expected at least 1")
    yy, xx = np.indices(a.shape[-2:])
    first = ((yy // int(square)) + (xx // int(square))) % 2 == 0
    return np.where(first, a, b)
