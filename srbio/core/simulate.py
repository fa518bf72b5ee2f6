"""Simulate a realistic LR acquisition from an HR image, keeping the true transform.

The simulated LR is what a faster, gentler acquisition of the same sample would record:
optical blur (Gaussian or a measured PSF) and pixel integration, coarser lateral sampling by
an integer factor, a random rigid/affine misalignment plus a small smooth deformation,
Poisson (shot) and Gaussian (read) noise, and a black border. The ground truth is returned
in the registration convention (HR physical point → LR physical point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from scipy.signal import fftconvolve

from srbio.core.dtypes import cast_clipped
from srbio.core.enhance import prepare_psf
from srbio.core.grid import lateral_factors, lr_grid
from srbio.core.transforms import to_sitk
from srbio.core.validity import valid_mask


@dataclass
class SimulatedLR:
    """An LR acquisition simulated from an HR image."""

    lr: np.ndarray
    """uint16 LR image (0 marks the black border and unmapped regions)."""
    spacing: tuple[float, ...]
    """LR pixel size in µm, array axis order."""
    transform: sitk.Transform
    """Ground truth: maps HR physical points (µm) to LR physical points."""
    parameters: dict
    """The drawn misalignment parameters, for provenance."""


def _rotation(ndim: int, yaw_deg: float, tilt_deg: tuple[float, float]) -> np.ndarray:
    """Rotation in array axis order: yaw in the yx plane, small tilts about y and x in 3D."""
    a = np.deg2rad(yaw_deg)
    ryx = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    if ndim == 2:
        return ryx
    rot = np.eye(3)
    rot[1:, 1:] = ryx
    for axis, t in zip((1, 2), tilt_deg, strict=True):
        t = np.deg2rad(t)
        r = np.eye(3)
        other = 2 if axis == 1 else 1
        r[0, 0] = r[other, other] = np.cos(t)
        r[0, other], r[other, 0] = -np.sin(t), np.sin(t)
        rot = r @ rot
    return rot


def _smooth_field(shape: tuple[int, ...], spacing: tuple[float, ...], *, amplitude_um: float,
                  control_um: float, rng: np.random.Generator, lateral_only: bool) -> np.ndarray:
    """Smooth random displacement field (…, ndim) in µm, array axis order, max norm = amplitude."""
    ndim = len(shape)
    coarse = tuple(max(2, int(np.ceil(n * s / control_um)) + 1) for n, s in zip(shape, spacing,
                                                                                strict=True))
    comps = []
    for axis in range(ndim):
        if lateral_only and axis < ndim - 2:
            comps.append(np.zeros(shape))
            continue
        c = rng.standard_normal(coarse)
        zoom = [n / m for n, m in zip(shape, coarse, strict=True)]
        comps.append(ndi.zoom(c, zoom, order=3, mode="nearest", grid_mode=True)[
            tuple(slice(0, n) for n in shape)])
    field = np.stack(comps, axis=-1)
    peak = np.sqrt((field ** 2).sum(-1)).max()
    return field * (amplitude_um / peak) if peak > 0 and amplitude_um > 0 else field * 0


def _blur(hr: np.ndarray, spacing: tuple[float, ...], sigma_um: tuple[float, ...],
          psf: np.ndarray | None, psf_spacing: tuple[float, ...] | None,
          valid: np.ndarray | None = None) -> np.ndarray:
    """Blur ``hr`` by the LR optics; with ``valid``, by normalised convolution of valid pixels.

    The invalid (fill) regions of the HR are missing data, not part of the sample: the LR
    optics never saw them, so they must not bleed into the blurred signal near their edges.
    """
    if valid is not None:
        w = valid.astype(np.float32)
        num = _blur(np.where(valid, hr, 0).astype(np.float32), spacing, sigma_um, psf, psf_spacing)
        den = _blur(w, spacing, sigma_um, psf, psf_spacing)
        return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0).astype(np.float32)
    img = hr.astype(np.float32)
    if psf is not None:
        if psf_spacing is None:
            raise ValueError("a PSF needs its own pixel size")
        kernel = prepare_psf(psf, psf_spacing, spacing)
        return fftconvolve(np.pad(img, [(k // 2, k // 2) for k in kernel.shape], mode="edge"),
                           kernel, mode="valid")[tuple(slice(0, n) for n in hr.shape)].astype(
            np.float32)
    sig = [s_um / s for s_um, s in zip(sigma_um, spacing, strict=True)]
    return ndi.gaussian_filter(img, sig, mode="nearest")


def _optics(hr: np.ndarray, spacing: tuple[float, ...], factor: float,
            psf_sigma_um: tuple[float, float], psf: np.ndarray | None,
            psf_spacing: tuple[float, ...] | None, fill: float | str | None
            ) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """What the LR optics see, on the HR grid: PSF blur plus integration over the LR pixel.

    Returns the blurred image, the valid HR pixels and the Gaussian sigmas used (µm).
    """
    ndim = hr.ndim
    factors = lateral_factors(ndim, factor)
    hr_valid = valid_mask(hr, fill=fill)
    pix = [(f * s) / np.sqrt(12) if f > 1 else 0.0 for f, s in zip(factors, spacing, strict=True)]
    psf_sig = ([psf_sigma_um[1]] * 2 if ndim == 2 else [psf_sigma_um[0]] + [psf_sigma_um[1]] * 2)
    sigma = tuple(float(np.hypot(a, b)) for a, b in zip(psf_sig, pix, strict=True))
    return _blur(hr, spacing, sigma, psf, psf_spacing, hr_valid), hr_valid, sigma


def _misalignment(rng: np.random.Generator, hr_shape: tuple[int, ...], spacing: tuple[float, ...],
                  lr_origin: tuple[float, ...], *, max_rotation_deg: float, max_tilt_deg: float,
                  affine_strength: float, max_shift_um: tuple[float, float],
                  rotation_deg: float | None, shift_um: tuple[float, ...] | None
                  ) -> tuple[sitk.AffineTransform, dict]:
    """Draw the rigid/affine misalignment (yaw, tilts, linear part, shift, in that order).

    The transform maps LR physical ``q`` to HR physical ``x = A (q + o - c) + c + t``, after the
    deformation (``o``: LR origin, ``c``: HR centre). Returns it and the drawn parameters.
    """
    ndim = len(hr_shape)
    centre = np.array([(n - 1) * s / 2 for n, s in zip(hr_shape, spacing, strict=True)])
    yaw = rng.uniform(-max_rotation_deg, max_rotation_deg)
    if rotation_deg is not None:  # drawn anyway: the other draws stay the same
        yaw = float(rotation_deg)
    tilts = tuple(rng.uniform(-max_tilt_deg, max_tilt_deg, 2)) if ndim == 3 else (0.0, 0.0)
    lin = np.eye(ndim) + rng.uniform(-affine_strength, affine_strength, (ndim, ndim))
    if ndim == 3:
        lin[0, :] = lin[:, 0] = 0
        lin[0, 0] = 1.0  # keep the z sampling: no scaling/shear involving z
    matrix = _rotation(ndim, yaw, tilts) @ lin
    shift_max = np.array(([max_shift_um[0]] if ndim == 3 else []) + [max_shift_um[1]] * 2)
    shift = rng.uniform(-1, 1, ndim) * shift_max
    if shift_um is not None:
        if len(shift_um) != ndim:
            raise ValueError(f"shift_um needs {ndim} values, got {list(shift_um)}")
        shift = np.asarray(shift_um, float)
    translation = matrix @ np.asarray(lr_origin) + shift

    affine = sitk.AffineTransform(ndim)
    affine.SetMatrix(tuple(matrix[::-1, ::-1].ravel()))
    affine.SetCenter(tuple(centre[::-1]))
    affine.SetTranslation(tuple(translation[::-1]))
    drawn = {"rotation_deg": yaw, "tilt_deg": list(tilts), "matrix": matrix.tolist(),
             "shift_um": shift.tolist()}
    return affine, drawn


def _deformation(rng: np.random.Generator, lr_shape: tuple[int, ...],
                 lr_spacing: tuple[float, ...], amplitude_um: float, control_um: float
                 ) -> tuple[sitk.Transform, sitk.Transform]:
    """Smooth random lateral deformation of the LR frame, and its inverse (displacement fields).

    The deformation is smooth on the scale of ``control_um``: it is sampled on a grid about 8
    times finer than that (not on every LR pixel) to keep the truth file small.
    """
    ndim = len(lr_shape)
    field_spacing = tuple(
        s if i < ndim - 2 else max(s, control_um / 8)
        for i, s in enumerate(lr_spacing))
    field_shape = tuple(int(np.ceil((n - 1) * s / fs)) + 1
                        for n, s, fs in zip(lr_shape, lr_spacing, field_spacing, strict=True))
    field = _smooth_field(field_shape, field_spacing, amplitude_um=amplitude_um,
                          control_um=control_um, rng=rng, lateral_only=True)
    field_img = sitk.GetImageFromArray(field[..., ::-1].astype(np.float64), isVector=True)
    field_img.SetSpacing(tuple(float(s) for s in field_spacing[::-1]))
    inverse_img = sitk.InvertDisplacementField(
        field_img, maximumNumberOfIterations=100, maxErrorToleranceThreshold=1e-5,
        meanErrorToleranceThreshold=1e-7, enforceBoundaryCondition=False)
    deform = sitk.DisplacementFieldTransform(sitk.Image(field_img))
    return deform, sitk.DisplacementFieldTransform(inverse_img)


def _sample_lr(blurred: np.ndarray, hr_valid: np.ndarray, spacing: tuple[float, ...],
               lr_shape: tuple[int, ...], lr_spacing: tuple[float, ...],
               lr_to_hr: sitk.Transform) -> tuple[np.ndarray, np.ndarray]:
    """Resample the blurred HR onto the LR grid; also return where the LR sees valid HR only."""
    ref = sitk.Image([int(n) for n in lr_shape[::-1]], sitk.sitkFloat32)
    ref.SetSpacing(tuple(float(s) for s in lr_spacing[::-1]))
    lr = sitk.GetArrayFromImage(sitk.Resample(to_sitk(blurred, spacing), ref, lr_to_hr,
                                              sitk.sitkLinear, 0.0, sitk.sitkFloat32))
    support = sitk.GetArrayFromImage(sitk.Resample(
        to_sitk(hr_valid.astype(np.float32), spacing), ref, lr_to_hr, sitk.sitkLinear, 0.0,
        sitk.sitkFloat32)) > 0.999
    return lr, support


def _border(shape: tuple[int, ...], fraction: float) -> np.ndarray:
    """Mask of the black border: ``fraction`` of the size on each side of the lateral axes."""
    ndim = len(shape)
    border = np.zeros(shape, bool)
    for axis in range(ndim - 2, ndim):
        w = int(round(fraction * shape[axis]))
        if w > 0:
            idx = [slice(None)] * ndim
            idx[axis] = slice(0, w)
            border[tuple(idx)] = True
            idx[axis] = slice(shape[axis] - w, None)
            border[tuple(idx)] = True
    return border


def _noise(lr: np.ndarray, valid: np.ndarray, rng: np.random.Generator,
           photons_per_count: float, read_noise: float) -> np.ndarray:
    """Add shot (Poisson) then read (Gaussian) noise; uint16, 0 outside ``valid``, 1 minimum."""
    photons = rng.poisson(np.clip(lr, 0, None) * photons_per_count) / photons_per_count
    noisy = photons + rng.normal(0.0, read_noise, lr.shape)
    return np.where(valid, cast_clipped(noisy, "uint16", low=1)[0], 0).astype(np.uint16)


def simulate_lr(
    hr: np.ndarray, *, spacing: tuple[float, ...], factor: float = 2,
    psf_sigma_um: tuple[float, float] = (0.3, 0.15), psf: np.ndarray | None = None,
    psf_spacing: tuple[float, ...] | None = None, max_shift_um: tuple[float, float] = (0.3, 2.0),
    max_rotation_deg: float = 3.0, max_tilt_deg: float = 0.5, affine_strength: float = 0.01,
    deformation_um: float = 0.03, deformation_spacing_um: float = 8.0,
    photons_per_count: float = 2.0, read_noise: float = 2.0, border_fraction: float = 0.04,
    fill: float | str | None = "auto", rotation_deg: float | None = None,
    shift_um: tuple[float, ...] | None = None, seed: int = 0,
) -> SimulatedLR:
    """Simulate an LR acquisition of the sample imaged in ``hr``.

    Parameters
    ----------
    hr, spacing : numpy.ndarray, tuple of float
        HR image (``yx`` or ``zyx``) and its pixel size in µm (array axis order).
    factor : float
        Lateral sampling factor (LR pixels are ``factor`` times larger in y and x); need not
        be an integer (a 0.65 µm camera pixel over a 0.2 µm one is 3.25).
    psf_sigma_um : (float, float)
        Gaussian PSF sigma (z, lateral) in µm added by the LR optics (z ignored in 2D);
        pixel integration over the LR pixel is always added.
    psf, psf_spacing : numpy.ndarray, tuple of float, optional
        A measured PSF (same dimensionality) used instead of the Gaussian.
    max_shift_um, max_rotation_deg, max_tilt_deg : (float, float), float, float
        Maximum random shift (z, lateral) in µm, rotation in the yx plane, tilt out of it (3D).
    affine_strength : float
        Maximum magnitude of the random non-rigid linear part (scaling/shear).
    deformation_um, deformation_spacing_um : float
        Peak amplitude and length scale (control-point spacing) of the smooth lateral deformation, µm.
    photons_per_count, read_noise : float
        Detected photons per HR intensity unit (sets the shot noise); read-noise sigma (intensity).
    border_fraction : float
        Width of the black border on each lateral side, as a fraction of the LR size.
    fill : float, "auto" or None
        Fill value of invalid HR regions (see :func:`srbio.core.validity.valid_mask`).
    rotation_deg, shift_um : optional
        Exact in-plane rotation (degrees) and shift (µm, array axis order) replacing the draws.
    seed : int
        Random seed; the same seed gives the same acquisition.
    """
    if not factor >= 1:
        raise ValueError(f"factor must be at least 1, got {factor}")
    rng = np.random.default_rng(seed)
    lr_shape, lr_spacing, lr_origin = lr_grid(hr.shape, spacing, factor)
    blurred, hr_valid, sigma = _optics(hr, spacing, factor, psf_sigma_um, psf, psf_spacing, fill)
    affine, drawn = _misalignment(
        rng, hr.shape, spacing, lr_origin, max_rotation_deg=max_rotation_deg,
        max_tilt_deg=max_tilt_deg, affine_strength=affine_strength, max_shift_um=max_shift_um,
        rotation_deg=rotation_deg, shift_um=shift_um)
    deform, deform_inv = _deformation(rng, lr_shape, lr_spacing, deformation_um, deformation_spacing_um)
    # SimpleITK composites apply the last-added transform first
    lr_to_hr = sitk.CompositeTransform([affine, deform])
    hr_to_lr = sitk.CompositeTransform([deform_inv, affine.GetInverse()])
    lr, support = _sample_lr(blurred, hr_valid, spacing, lr_shape, lr_spacing, lr_to_hr)
    out = _noise(lr, support & ~_border(lr_shape, border_fraction), rng, photons_per_count, read_noise)
    params = {"factor": factor, **drawn, "psf_sigma_um": list(sigma),
              "deformation_um": deformation_um, "photons_per_count": photons_per_count,
              "read_noise": read_noise, "border_fraction": border_fraction, "seed": seed}
    return SimulatedLR(out, lr_spacing, hr_to_lr, params)
