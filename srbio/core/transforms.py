"""SimpleITK transforms on numpy conventions: wrapping arrays, mapping points, measuring errors.

SimpleITK's own (x, y, z) order is confined to this module and :mod:`srbio.core.registration`;
points and spacings here are in array axis order.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def to_sitk(array: np.ndarray, spacing: tuple[float, ...],
            origin: tuple[float, ...] | None = None) -> sitk.Image:
    """Wrap a numpy array as a SimpleITK image with spacing/origin given in array axis order."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    if origin is not None:
        img.SetOrigin(tuple(float(o) for o in origin[::-1]))
    return img


def transform_points(transform: sitk.Transform, points: np.ndarray) -> np.ndarray:
    """Apply a SimpleITK transform to physical points given as rows in array axis order."""
    pts = np.asarray(points, float)
    out = [transform.TransformPoint(tuple(p[::-1])) for p in pts]
    return np.asarray(out)[:, ::-1]


def point_error_px(t_est: sitk.Transform, t_true: sitk.Transform, points: np.ndarray,
                   spacing: tuple[float, ...]) -> np.ndarray:
    """Distance between two transforms' images of the same points, in pixels of ``spacing``."""
    diff = transform_points(t_est, points) - transform_points(t_true, points)
    return np.sqrt(((diff / np.asarray(spacing)) ** 2).sum(axis=1))


def grid_points(mask: np.ndarray, spacing: tuple[float, ...], *, n: int = 2000,
                origin: tuple[float, ...] | None = None, seed: int = 0) -> np.ndarray:
    """Physical positions of up to ``n`` random True pixels of ``mask``."""
    idx = np.argwhere(mask)
    if len(idx) > n:
        idx = idx[np.random.default_rng(seed).choice(len(idx), n, replace=False)]
    org = np.zeros(mask.ndim) if origin is None else np.asarray(origin)
    return idx * np.asarray(spacing) + org


def bspline_displacement_um(transform: sitk.Transform, shape: tuple[int, ...],
                     spacing: tuple[float, ...], origin: tuple[float, ...]) -> np.ndarray | None:
    """Magnitude (µm) of the B-spline part of ``transform`` on a grid; None without one."""
    if transform.GetName() != "CompositeTransform":
        return None
    comp = sitk.CompositeTransform(transform)
    parts = [comp.GetNthTransform(i) for i in range(comp.GetNumberOfTransforms())]
    bsp = [t for t in parts if t.GetName().startswith("BSpline")]
    if not bsp:
        return None
    field = sitk.TransformToDisplacementField(
        bsp[-1], sitk.sitkVectorFloat64, [int(n) for n in shape[::-1]],
        [float(o) for o in origin[::-1]], [float(s) for s in spacing[::-1]])
    return np.sqrt((sitk.GetArrayFromImage(field) ** 2).sum(-1))
