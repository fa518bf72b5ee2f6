"""Stage ``simulate``: an HR image in, a simulated LR acquisition and its true transform out."""

from __future__ import annotations

import logging
import os

import numpy as np
import SimpleITK as sitk

from srbio.config import SimulateParams
from srbio.core.simulate import SimulatedLR, simulate_lr
from srbio.io import read_image, write_image
from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import SimulateFiles, Simulation
from srbio.stages.common import as_spacing, lineage

log = logging.getLogger(__name__)


def simulate_with(hr: np.ndarray, spacing: tuple[float, ...], params: SimulateParams, *,
                  psf: np.ndarray | None = None, psf_spacing: tuple[float, ...] | None = None
                  ) -> SimulatedLR:
    """An LR acquisition of ``hr`` simulated with ``params`` (a measured ``psf`` when given)."""
    return simulate_lr(
        hr, spacing=spacing, factor=params.scale, psf_sigma_um=params.psf_sigma_um, psf=psf,
        psf_spacing=psf_spacing, max_shift_um=params.max_shift_um,
        max_rotation_deg=params.max_rotation_deg, max_tilt_deg=params.max_tilt_deg,
        affine_strength=params.affine_strength, deformation_um=params.deformation_um,
        deformation_spacing_um=params.deformation_spacing_um,
        photons_per_count=params.photons_per_count, read_noise=params.read_noise,
        border_fraction=params.border_fraction, seed=params.seed)


@releases_claims
def run_simulate(hr_path: str | os.PathLike, out_dir: str | os.PathLike, params: SimulateParams,
                 *, hr_spacing: list[float] | None = None, overwrite: bool = False
                 ) -> SimulateFiles:
    """Simulate an LR acquisition of ``hr_path`` into ``out_dir``.

    Writes the files of :class:`~srbio.io.records.SimulateFiles`: ``lr.tif`` (with its pixel
    size), ``truth.tfm`` (HR→LR physical, SimpleITK's fixed→moving convention) and the
    :class:`~srbio.io.records.Simulation` record. An earlier simulate output there is replaced
    only with ``overwrite``; anything else there is refused.
    """
    claim(out_dir, "simulate", inputs=[hr_path, *([params.psf] if params.psf else [])],
          overwrite=overwrite)
    hr, spacing = read_image(hr_path, spacing=as_spacing(hr_spacing))
    psf = psf_spacing = None
    if params.psf:
        psf, psf_spacing = read_image(params.psf)
    sim = simulate_with(hr, spacing, params, psf=psf, psf_spacing=psf_spacing)
    out = SimulateFiles(out_dir)
    record = Simulation(hr=str(hr_path), hr_spacing=list(spacing), lr_spacing=list(sim.spacing),
                        lr_shape=list(sim.lr.shape), parameters=sim.parameters,
                        **lineage({"simulate": params},
                                  [("hr", hr_path), *([("psf", params.psf)] if params.psf else [])]))
    with replace_folder(out.root, "simulate") as tmp:
        staged = SimulateFiles(tmp)
        sitk.WriteTransform(sim.transform, str(staged.truth))
        write_image(staged.lr, sim.lr, spacing=sim.spacing)
        record.write(staged.record)
    log.info("simulated %s: LR %s at %s µm", hr_path, sim.lr.shape, sim.spacing)
    return out
