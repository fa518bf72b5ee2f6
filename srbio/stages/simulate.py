"""Stage ``simulate``: an HR image in, a simulated LR acquisition and its true transform out."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import SimpleITK as sitk

from srbio.config import SimulateParams
from srbio.core.simulate import simulate_lr
from srbio.io import read_image, write_image
from srbio.io.atomic import atomic_path
from srbio.stages.common import as_spacing, write_json

log = logging.getLogger(__name__)


def run_simulate(hr_path: str | os.PathLike, out_dir: str | os.PathLike, params: SimulateParams,
                 *, hr_spacing: list[float] | None = None) -> dict[str, Path]:
    """Simulate an LR acquisition of ``hr_path``.

    Writes ``out_dir/lr.tif`` (with its pixel size), ``out_dir/truth.tfm`` (HR→LR physical,
    SimpleITK's fixed→moving convention) and ``out_dir/simulation.json``.
    """
    out_dir = Path(out_dir)
    hr, spacing = read_image(hr_path, spacing=as_spacing(hr_spacing))
    psf = psf_spacing = None
    if params.psf:
        psf, psf_spacing = read_image(params.psf)
    sim = simulate_lr(
        hr, spacing=spacing, scale=params.scale, psf_sigma_um=params.psf_sigma_um, psf=psf,
        psf_spacing=psf_spacing, max_shift_um=params.max_shift_um,
        max_rotation_deg=params.max_rotation_deg, max_tilt_deg=params.max_tilt_deg,
        affine_strength=params.affine_strength, deformation_um=params.deformation_um,
        deformation_spacing_um=params.deformation_spacing_um,
        photons_per_count=params.photons_per_count, read_noise=params.read_noise,
        border_fraction=params.border_fraction, seed=params.seed)
    paths = {"lr": out_dir / "lr.tif", "truth": out_dir / "truth.tfm",
             "json": out_dir / "simulation.json"}
    with atomic_path(paths["truth"]) as tmp:
        sitk.WriteTransform(sim.transform, str(tmp.with_suffix(".tfm")))
        tmp.with_suffix(".tfm").rename(tmp)
    write_image(paths["lr"], sim.lr, spacing=sim.spacing)
    write_json(paths["json"], {"hr": str(hr_path), "hr_spacing": spacing,
                               "lr_spacing": sim.spacing, "lr_shape": sim.lr.shape,
                               **sim.parameters})
    log.info("simulated %s: LR %s at %s µm", hr_path, sim.lr.shape, sim.spacing)
    return paths
