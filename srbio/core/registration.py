"""Registration of an LR acquisition (moving) onto its HR partner (fixed) with SimpleITK.

Conventions: arrays are numpy ``yx``/``zyx``; spacings are µm in array axis order; physical
points passed in or out are in array axis order too. SimpleITK's own (x, y, z) order is confined
to this module. The transform maps HR (fixed) physical points to LR (moving) physical points.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

log = logging.getLogger(__name__)

TRANSFORMS = ("rigid", "affine", "bspline")


def to_sitk(array: np.ndarray, spacing: tuple[float, ...],
            origin: tuple[float, ...] | None = None) -> sitk.Image:
    """Wrap a numpy array as a SimpleITK image with spacing/origin given in array axis order."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    if origin is not None:
        img.SetOrigin(tuple(float(o) for o in origin[::-1]))
    return img


def lr_grid(hr_shape: tuple[int, ...], hr_spacing: tuple[float, ...], scale: int
            ) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    """The LR grid aligned with HR: shape, spacing and origin (array axis order, HR frame).

    Lateral axes (the last two) are ``scale`` times coarser; z is unchanged. LR pixel ``i``
    covers HR pixels ``i*scale … i*scale+scale-1``, so its centre sits at
    ``(i*scale + (scale-1)/2) * hr_spacing``.
    """
    factors = lateral_factors(len(hr_shape), scale)
    shape = tuple(n // f for n, f in zip(hr_shape, factors, strict=True))
    spacing = tuple(s * f for s, f in zip(hr_spacing, factors, strict=True))
    origin = tuple((f - 1) / 2 * s for s, f in zip(hr_spacing, factors, strict=True))
    return shape, spacing, origin


def lateral_factors(ndim: int, scale: int) -> tuple[int, ...]:
    """Per-axis upsampling factors: ``scale`` on y and x, 1 on z."""
    return (1,) * (ndim - 2) + (scale, scale)


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


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of two arrays inside ``mask``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if mask is not None:
        a, b = a[mask], b[mask]
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


@dataclass
class RegistrationResult:
    """Outcome of :func:`register`."""

    transform: sitk.Transform
    metric_value: float
    stages: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _sampling(n_pixels: int, samples: int) -> float:
    return float(min(1.0, samples / max(n_pixels, 1)))


def _set_linear_optimizer(reg: sitk.ImageRegistrationMethod, iterations: int,
                          first_step_um: float) -> None:
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=first_step_um, minStep=1e-6, numberOfIterations=iterations,
        relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()


def _run_stage(fixed: sitk.Image, moving: sitk.Image, initial: sitk.Transform,
               *, moving_initial: sitk.Transform | None, kind: str, metric: str,
               fixed_mask: sitk.Image | None, moving_mask: sitk.Image | None,
               shrink: list[int], smooth_um: list[float], iterations: int, samples: int,
               seed: int) -> tuple[sitk.Transform, float, int]:
    reg = sitk.ImageRegistrationMethod()
    if metric == "mattes":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=48)
    elif metric == "correlation":
        reg.SetMetricAsCorrelation()
    else:
        raise ValueError(f"unknown registration metric {metric!r} (expected 'mattes' or 'correlation')")
    n_fixed = int(np.prod(fixed.GetSize()))
    fractions = [_sampling(n_fixed // (f ** fixed.GetDimension()), samples) for f in shrink]
    if min(fractions) < 1.0:
        # random sampling draws with replacement: use it only where the budget is below the
        # pixel count, otherwise every pixel is used (a less noisy metric)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentagePerLevel(fractions, seed)
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        reg.SetMetricMovingMask(moving_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel(smooth_um)
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    if kind == "bspline":
        reg.SetOptimizerAsGradientDescentLineSearch(
            learningRate=1.0, numberOfIterations=iterations, convergenceMinimumValue=1e-6,
            convergenceWindowSize=10)
        reg.SetOptimizerScalesFromPhysicalShift()
    else:
        # rigid starts from the geometric centring (large first steps); affine refines the
        # rigid result, and large first steps there can throw it out of the basin
        _set_linear_optimizer(reg, iterations, 1.0 if kind == "rigid" else 0.1)
    if moving_initial is not None:
        reg.SetMovingInitialTransform(moving_initial)
    reg.SetInitialTransform(initial, inPlace=False)
    iters = [0]
    reg.AddCommand(sitk.sitkIterationEvent, lambda: iters.__setitem__(0, iters[0] + 1))
    out = reg.Execute(fixed, moving)
    return out, float(reg.GetMetricValue()), iters[0]


def _unwrap(t: sitk.Transform) -> sitk.Transform:
    """Return the single transform inside a one-element composite."""
    if t.GetName() == "CompositeTransform":
        comp = sitk.CompositeTransform(t)
        if comp.GetNumberOfTransforms() == 1:
            return comp.GetNthTransform(0)
    return t


def register(
    fixed: np.ndarray,
    moving: np.ndarray,
    *,
    fixed_spacing: tuple[float, ...],
    moving_spacing: tuple[float, ...],
    transform: str | list[str] = "affine",
    metric: str = "correlation",
    fixed_mask: np.ndarray | None = None,
    moving_mask: np.ndarray | None = None,
    shrink_factors: tuple[int, ...] = (4, 2, 1),
    iterations: int = 300,
    samples: int = 200_000,
    bspline_mesh_um: float = 8.0,
    seed: int = 1,
) -> RegistrationResult:
    """Register ``moving`` (LR) onto ``fixed`` (HR) in physical space.

    The chain always starts from a geometric centring, then runs rigid, then affine, then
    B-spline up to the requested ``transform`` (or exactly the stages of a list), each stage
    initialised from the previous one; every stage is multi-resolution.

    Parameters
    ----------
    fixed, moving : numpy.ndarray
        2D or 3D images of the same dimensionality.
    fixed_spacing, moving_spacing : tuple of float
        Pixel sizes in µm, array axis order.
    transform : str or list of str
        ``"rigid"``, ``"affine"``, ``"bspline"`` (implies the preceding stages), or a list
        such as ``["rigid", "bspline"]``.
    metric : {"mattes", "correlation"}
        Similarity metric.
    fixed_mask, moving_mask : numpy.ndarray of bool, optional
        Pixels outside are excluded from the metric (black borders, fill regions).
    shrink_factors : tuple of int
        Pyramid levels.
    iterations : int
        Maximum optimiser iterations per level.
    samples : int
        Metric samples per level (random sampling).
    bspline_mesh_um : float
        Control-point spacing of the B-spline grid, µm.
    seed : int
        Seed of the metric sampling.

    Returns
    -------
    RegistrationResult
        ``transform`` maps HR physical points to LR physical points.
    """
    if fixed.ndim != moving.ndim:
        raise ValueError(f"fixed is {fixed.ndim}D but moving is {moving.ndim}D; both must match")
    chain = _chain(transform)
    start = time.perf_counter()
    f_img = to_sitk(fixed.astype(np.float32), fixed_spacing)
    m_img = to_sitk(moving.astype(np.float32), moving_spacing)
    f_mask = to_sitk(fixed_mask.astype(np.uint8), fixed_spacing) if fixed_mask is not None else None
    m_mask = (to_sitk(moving_mask.astype(np.uint8), moving_spacing)
              if moving_mask is not None else None)
    ndim = fixed.ndim
    base = sitk.Euler3DTransform() if ndim == 3 else sitk.Euler2DTransform()
    current: sitk.Transform = sitk.CenteredTransformInitializer(
        f_img, m_img, base, sitk.CenteredTransformInitializerFilter.GEOMETRY)
    coarse = max(moving_spacing)
    smooth = [coarse * f / 2 for f in shrink_factors]
    shrink = list(shrink_factors)
    stages = []
    for kind in chain:
        t0 = time.perf_counter()
        if kind == "rigid":
            init = current if current.GetName().startswith("Euler") else base
            out, value, n_it = _run_stage(
                f_img, m_img, init, moving_initial=None, kind=kind, metric=metric,
                fixed_mask=f_mask, moving_mask=m_mask, shrink=shrink, smooth_um=smooth,
                iterations=iterations, samples=samples, seed=seed)
            current = _unwrap(out)
        elif kind == "affine":
            aff = sitk.AffineTransform(ndim)
            cur = _unwrap(current)
            if hasattr(cur, "GetMatrix"):
                aff.SetMatrix(cur.GetMatrix())
                aff.SetTranslation(cur.GetTranslation())
                aff.SetCenter(cur.GetCenter())
            out, value, n_it = _run_stage(
                f_img, m_img, aff, moving_initial=None, kind=kind, metric=metric,
                fixed_mask=f_mask, moving_mask=m_mask, shrink=shrink, smooth_um=smooth,
                iterations=iterations, samples=samples, seed=seed)
            current = _unwrap(out)
        else:  # bspline, composed after the linear part
            extent = [sz * sp for sz, sp in zip(f_img.GetSize(), f_img.GetSpacing(), strict=True)]
            mesh = [max(1, int(round(e / bspline_mesh_um))) for e in extent]
            bsp = sitk.BSplineTransformInitializer(f_img, mesh, order=3)
            out, value, n_it = _run_stage(
                f_img, m_img, bsp, moving_initial=current, kind=kind, metric=metric,
                fixed_mask=f_mask, moving_mask=m_mask, shrink=shrink[-2:],
                smooth_um=smooth[-2:], iterations=min(iterations, 100), samples=samples,
                seed=seed)
            comp = sitk.CompositeTransform(ndim)
            comp.AddTransform(current)
            comp.AddTransform(_unwrap(out))
            current = comp
        stages.append({"transform": kind, "metric": value, "iterations": n_it,
                       "seconds": round(time.perf_counter() - t0, 3)})
        log.info("registration stage %s: metric %.5f after %d iterations", kind, value, n_it)
    return RegistrationResult(current, stages[-1]["metric"], stages,
                              time.perf_counter() - start)


def _chain(transform: str | list[str]) -> list[str]:
    if isinstance(transform, str):
        if transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {transform!r} (expected one of {TRANSFORMS})")
        return list(TRANSFORMS[: TRANSFORMS.index(transform) + 1])
    chain = list(transform)
    bad = [t for t in chain if t not in TRANSFORMS]
    if bad or not chain:
        raise ValueError(f"unknown transform chain {chain} (stages must be among {TRANSFORMS})")
    return chain


def resample(
    moving: np.ndarray,
    transform: sitk.Transform,
    *,
    moving_spacing: tuple[float, ...],
    shape: tuple[int, ...],
    spacing: tuple[float, ...],
    origin: tuple[float, ...],
    order: str = "linear",
    default: float = 0.0,
) -> np.ndarray:
    """Resample ``moving`` onto a grid (shape/spacing/origin in the fixed frame) through ``transform``.

    Returns float32 for linear/bspline interpolation, the input dtype for nearest.
    """
    interp = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor,
              "bspline": sitk.sitkBSpline}[order]
    src = moving if order == "nearest" else moving.astype(np.float32)
    img = to_sitk(src, moving_spacing)
    ref = sitk.Image([int(s) for s in shape[::-1]], img.GetPixelID())
    ref.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    ref.SetOrigin(tuple(float(o) for o in origin[::-1]))
    out = sitk.Resample(img, ref, transform, interp, default, img.GetPixelID())
    return sitk.GetArrayFromImage(out)


def _blocks(array: np.ndarray, factors: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """View ``array`` (trimmed to whole blocks) as (n0, f0, n1, f1, …); returns the block axes."""
    shape = tuple(n // f for n, f in zip(array.shape, factors, strict=True))
    trimmed = array[tuple(slice(0, n * f) for n, f in zip(shape, factors, strict=True))]
    paired = [d for n, f in zip(shape, factors, strict=True) for d in (n, f)]
    return trimmed.reshape(paired), tuple(range(1, 2 * len(shape), 2))


def block_all(mask: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Downsample a boolean mask: a coarse pixel is True when all its fine pixels are."""
    blocks, axes = _blocks(mask, factors)
    return blocks.all(axis=axes)


def block_mean(image: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Downsample by averaging non-overlapping blocks (float32)."""
    blocks, axes = _blocks(image.astype(np.float32), factors)
    return blocks.mean(axis=axes)


def erode(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Binary erosion that treats outside the array as invalid."""
    if iterations <= 0:
        return mask.copy()
    return ndi.binary_erosion(mask, iterations=iterations, border_value=0)
