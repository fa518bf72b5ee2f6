"""Stage ``inspect``: what srbio's viewers show and compute, from paths (no GUI here).

The napari plugin (``srbio.napari``) is a thin layer of widgets over these functions:

- :func:`compare_pair`: a pair's registered, cropped LR, its bicubic upsampling, the network's
  prediction and HR, on one HR grid in the HR frame; :func:`region_scores` scores any region
  of it with the evaluate stage's conventions (fixed and fitted);
- :func:`pair_qc`: a registered pair's QC views (:func:`srbio.core.qc.registration_views`);
- :func:`predict_region`: a region of an image predicted in memory through the chunk
  function, at its physical place; :func:`predict_to_store` a whole file through ``predict``;
- :func:`write_layer`: any image to an OME-Zarr 0.5 with a pyramid, scale and translation
  kept exactly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from srbio.config import PredictConfig
from srbio.core.dtypes import cast_clipped
from srbio.core.grid import band, lateral_factors
from srbio.core.qc import RegistrationViews, registration_views
from srbio.core.region import Box, box_slices
from srbio.core.validity import valid_mask
from srbio.inference.monitor import Monitor
from srbio.io import read_image
from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import (
    CropFiles,
    Normalisation,
    Prediction,
    Registration,
    Results,
    Scores,
)
from srbio.io.store import PredictionStore
from srbio.io.view import resolve_recorded
from srbio.provenance import provenance
from srbio.stages.common import load_pair, split_regions
from srbio.stages.evaluate import score_methods, upsampled

log = logging.getLogger(__name__)

METHODS = ("LR (nearest)", "bicubic", "network", "HR")


# --------------------------------------------------------------------------- compare
@dataclass
class Comparison:
    """A cropped pair, upsampled three ways, beside HR: all on the HR grid, in HR units.

    Attributes
    ----------
    pair : str
        The pair's name.
    images : dict of str to numpy.ndarray
        ``LR (nearest)``, ``bicubic`` (absent at scale 1), ``network`` and ``HR`` (float32,
        HR intensity units through the model's fixed normalisation).
    lr : numpy.ndarray
        The registered, cropped LR as the network reads it (its own grid).
    valid : numpy.ndarray of bool
        The valid pixels on the HR grid.
    spacing, translate : tuple of float
        HR pixel size and the crop's first HR pixel centre in the HR frame (µm).
    lr_spacing, lr_translate : tuple of float
        The same for ``lr``.
    normalisation : Normalisation
        The model's fixed ranges (contrast limits of every image).
    test_box : tuple of (int, int)
        The held-out test band on the HR grid (what the evaluate stage scores).
    """

    pair: str
    images: dict[str, np.ndarray]
    lr: np.ndarray
    valid: np.ndarray
    spacing: tuple[float, ...]
    translate: tuple[float, ...]
    lr_spacing: tuple[float, ...]
    lr_translate: tuple[float, ...]
    normalisation: Normalisation
    test_box: Box


def crop_folder(results: str | os.PathLike, pair: str) -> CropFiles:
    """The prepared pair training read: its enhance folder when HR was enhanced, else its crop."""
    layout = Results(results)
    enhanced = layout.enhance(pair)
    return enhanced if enhanced.record.is_file() else layout.crop(pair)


def results_split(results: str | os.PathLike):
    """The split the workflow used (from ``patches.json``), or None when it is not recorded."""
    from srbio.config import SplitConfig
    from srbio.io.records import Patches

    record = Results(results).patches.record
    if not record.is_file():
        return None
    fields = Patches.read(record).split
    return SplitConfig(**{k: v for k, v in fields.items() if k in SplitConfig.model_fields})


def models(results: str | os.PathLike) -> list[Path]:
    """The trained models of a results folder (``train/<label>/model.pt``)."""
    folder = Path(results) / "train"
    return sorted(folder.glob("*/model.pt")) if folder.is_dir() else []


def compare_pair(results: str | os.PathLike, pair: str, model_path: str | os.PathLike,
                 cfg: PredictConfig, *, split=None, monitor: Monitor | None = None) -> Comparison:
    """LR, bicubic, the network's prediction and HR of one prepared pair, on one grid.

    Each band of the split (train, val, test; ``split`` is a
    :class:`~srbio.config.SplitConfig`, default the one ``patches.json`` records) is
    upsampled on its own, by nearest, bicubic and the network (``cfg``'s tiling), exactly as
    the evaluate stage treats the test band: a region inside the test band scores what the
    report says.
    """
    from srbio.config import SplitConfig

    files = crop_folder(results, pair)
    if not files.record.is_file():
        raise ValueError(f"{results}: holds no prepared pair {pair!r} ({files.record} missing); "
                         f"run the workflow's crop stage first")
    prepared = load_pair(files.root)
    lr, record = prepared.lr, prepared.record
    axis, bands = split_regions(lr, split or results_split(results) or SplitConfig())
    with _predictor(model_path, cfg, monitor) as (predictor, header):
        if header.network.scale != record.scale:
            raise ValueError(f"{model_path}: upsamples by {header.network.scale} but pair {pair} "
                             f"was cropped at scale {record.scale}")
        parts = [_methods(band(lr, axis, b).astype(np.float32), predictor, header.normalisation,
                          record.scale) for b in sorted(bands.values()) if b[1] > b[0]]
    images = {m: np.concatenate([p[m] for p in parts], axis=axis) for m in parts[0]}
    images["HR"] = prepared.hr.astype(np.float32)
    norm = header.normalisation
    box = [(0, n) for n in prepared.hr.shape]
    box[axis] = (bands["test"][0] * record.scale, bands["test"][1] * record.scale)
    hr_sp, lr_sp = tuple(record.hr_spacing), tuple(record.lr_spacing)
    origin = tuple(record.hr_origin_um)
    factors = lateral_factors(lr.ndim, record.scale)
    return Comparison(
        pair=pair, images=images, lr=lr, valid=prepared.hr_mask,
        spacing=hr_sp, translate=origin, lr_spacing=lr_sp,
        lr_translate=tuple(o + (f - 1) / 2 * s for o, f, s in zip(origin, factors, hr_sp,
                                                                  strict=True)),
        normalisation=norm, test_box=tuple(box))


def _methods(lr: np.ndarray, predictor, norm: Normalisation, scale: int
             ) -> dict[str, np.ndarray]:
    """One band's LR upsampled by nearest, bicubic and the network, in HR units (evaluate's)."""
    outputs, _ = upsampled(lr, predictor, norm, scale)
    first = outputs.pop("nearest", outputs.pop("identity", None))
    return {"LR (nearest)": first, **outputs}


def region_scores(comparison: Comparison, box: Box) -> dict[str, dict[str, Scores]]:
    """PSNR / SSIM / NRMSE of each method against HR in ``box`` (HR pixels), over valid pixels.

    The evaluate stage's conventions: values normalised by the fixed HR range (data range 1),
    scored as they are (``"fixed"``) and after each method's least-squares linear fit to HR
    (``"fitted"``).

    Raises
    ------
    ValueError
        When the region holds no valid pixel or no 7 × 7 SSIM window.
    """
    region = box_slices(box)
    valid = comparison.valid[region]
    if not valid.any():
        raise ValueError(f"the region {list(box)} holds no valid pixel of pair "
                         f"{comparison.pair}")
    hr = comparison.images["HR"][region]
    outputs = {m: img[region] for m, img in comparison.images.items() if m != "HR"}
    fixed, fitted, _ = score_methods(outputs, hr, valid, comparison.normalisation.hr.pair)
    return {"fixed": fixed, "fitted": fitted}


# --------------------------------------------------------------------------- registration QC
def pair_qc(results: str | os.PathLike, pair: str) -> tuple[Registration, RegistrationViews]:
    """A registered pair's record and QC views, recomputed from its inputs and transform."""
    files = Results(results).register(pair)
    if not files.record.is_file():
        raise ValueError(f"{results}: holds no registered pair {pair!r} ({files.record} missing)")
    rec = Registration.read(files.record)
    fixed, _ = read_image(resolve_recorded(rec.fixed, Path(results)), spacing=tuple(rec.fixed_spacing))
    moving, _ = read_image(resolve_recorded(rec.moving, Path(results)),
                           spacing=tuple(rec.moving_spacing))
    try:
        transform = sitk.ReadTransform(str(files.transform))
    except RuntimeError as exc:
        raise ValueError(f"{files.transform}: not a readable ITK transform "
                         f"({str(exc).strip()[-200:]})") from None
    from srbio.core.grid import erode

    fill: Any = rec.fill if rec.fill in (None, "auto") else float(rec.fill)
    views = registration_views(
        fixed, moving, transform, fixed_spacing=tuple(rec.fixed_spacing),
        moving_spacing=tuple(rec.moving_spacing), scale=rec.scale,
        fixed_valid=valid_mask(fixed, fill=fill),
        moving_valid=erode(valid_mask(moving, fill=fill), rec.erode_px))
    return rec, views


# --------------------------------------------------------------------------- predict
@contextlib.contextmanager
def _predictor(model_path: str | os.PathLike, cfg: PredictConfig, monitor: Monitor | None
               ) -> Iterator[tuple[Any, Any]]:
    """The tiled predictor of a model file; its device memory is released on the way out."""
    from srbio.stages.predict import build_predictor, load_for_prediction

    model, header, device = load_for_prediction(model_path, cfg)
    predictor = build_predictor(model, header, cfg, device)
    predictor.monitor = monitor
    try:
        yield predictor, header
    finally:
        predictor.monitor = None
        del predictor, model
        _release()


def _release() -> None:
    """Give CUDA's cached memory back (other programs see it free again), if CUDA was used."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@dataclass
class RegionPrediction:
    """A predicted region at its physical place (see :func:`predict_region`)."""

    data: np.ndarray
    spacing: tuple[float, ...]
    translate: tuple[float, ...]
    hr_range: tuple[float, float]  # the model's fixed HR range: the contrast to show it at


def predict_region(model_path: str | os.PathLike, data, *, spacing: Sequence[float],
                   translate: Sequence[float], box: Box | None = None,
                   cfg: PredictConfig | None = None, monitor: Monitor | None = None
                   ) -> RegionPrediction:
    """Predict ``box`` (input pixels; all of ``data`` when None) of an array, in memory.

    The chunk function predicts the output region (its input window plus halo read once),
    then the values are cast to ``cfg.dtype`` exactly as ``srbio predict`` writes them, so
    the result equals the same region of a prediction store. ``spacing`` and ``translate``
    place ``data``; the result is placed at spacing / factor, on the input pixels it covers.
    """
    cfg = cfg or PredictConfig()
    shape = tuple(int(n) for n in data.shape)
    if len(spacing) != len(shape) or len(translate) != len(shape):
        raise ValueError(f"an image of shape {shape} needs one pixel size and position per axis; "
                         f"got spacing {list(spacing)}, translate {list(translate)}")
    box = box or tuple((0, n) for n in shape)
    with _predictor(model_path, cfg, monitor) as (predictor, header):
        factors = predictor.factors(len(shape))
        region = tuple(slice(a * f, b * f) for (a, b), f in zip(box, factors, strict=True))
        chunk = predictor.predict_chunk(data, region)
    out, _, _ = cast_clipped(chunk.data, cfg.dtype)
    out_sp = tuple(float(s) / f for s, f in zip(spacing, factors, strict=True))
    out_tr = tuple(float(t) + a * float(s) - (f - 1) / 2 * o for t, (a, _), s, f, o in
                   zip(translate, box, spacing, factors, out_sp, strict=True))
    return RegionPrediction(out, out_sp, out_tr, header.normalisation.hr.pair)


def store_path_for(input_path: str | os.PathLike) -> Path:
    """Where the predict widget writes a whole file's prediction: beside it."""
    path = Path(input_path)
    stem = path.name.split(".")[0]
    return path.with_name(f"{stem}_srbio.ome.zarr")


def predict_to_store(model_path: str | os.PathLike, input_path: str | os.PathLike,
                     cfg: PredictConfig | None = None, *, monitor: Monitor | None = None
                     ) -> Prediction | None:
    """Predict a whole file into an OME-Zarr beside it through ``srbio predict`` (resumable)."""
    from srbio.stages.predict import run_predict

    output = store_path_for(input_path)
    try:
        return run_predict(model_path, input_path, output, cfg or PredictConfig(),
                           progress=False, monitor=monitor)
    finally:
        _release()


# --------------------------------------------------------------------------- sample data
def sample_path() -> Path:
    """The bundled real HR volume (``data/sample/lls_hr.tif`` of the srbio checkout)."""
    path = Path(__file__).resolve().parents[2] / "data" / "sample" / "lls_hr.tif"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: srbio's sample volume is not there; the sample data "
                                f"comes with a checkout of srbio (installed with `pip install "
                                f"-e`), see the README")
    return path


def sample_pair() -> dict[str, tuple[np.ndarray, tuple[float, ...]]]:
    """The demo's pair: the bundled real HR and its LR simulated as the demo does (seed 1)."""
    from srbio.config import SimulateParams
    from srbio.stages.simulate import simulate_with

    hr, spacing = read_image(sample_path())
    sim = simulate_with(hr, spacing, SimulateParams(scale=2, seed=1))
    return {"HR": (hr, tuple(spacing)), "LR": (sim.lr, tuple(sim.spacing))}


# --------------------------------------------------------------------------- writer
_WRITABLE = ("uint8", "uint16", "int8", "int16", "float32")


def _writable(data) -> np.dtype:
    dtype = np.dtype(data.dtype)
    if dtype.kind == "b":
        return np.dtype("uint8")
    if dtype == np.float64:
        return np.dtype("float32")
    if dtype.name not in _WRITABLE:
        raise ValueError(f"cannot write pixels of type {dtype} to OME-Zarr; srbio writes "
                         f"{', '.join(_WRITABLE)} (and bool, float64 converted)")
    return dtype


@releases_claims
def write_layer(path: str | os.PathLike, data, *, spacing: Sequence[float],
                translation: Sequence[float], axes: Sequence[str] | None = None,
                name: str | None = None, chunk: int = 256) -> Path:
    """Write an image (any array, read block by block) to an OME-Zarr 0.5 with a pyramid.

    Level 0 holds ``data`` as it is; each further level is the 2× lateral mean, with its own
    scale and translation, so every level lies where level 0 does. The store is built in a
    temporary folder and renamed into place when complete; an existing ``path`` is replaced
    only when srbio wrote it.

    Parameters
    ----------
    path : path-like
        The store to write (``*.ome.zarr``).
    data : array-like
        2 to 4 axes (``[t,] [z,] y, x``); numpy, dask or zarr.
    spacing, translation : sequence of float
        Pixel size and first pixel centre per axis (µm for space axes).
    axes : sequence of str, optional
        Axis names (default the last ``ndim`` of ``t, z, y, x``).
    name : str, optional
        The image's name in the metadata (default the file name).
    chunk : int
        Lateral chunk size (pixels); one plane per chunk along leading axes.
    """
    shape = tuple(int(n) for n in data.shape)
    if not 2 <= len(shape) <= 4 or min(shape) < 1:
        raise ValueError(f"{path}: cannot write an image of shape {shape}; expected 2 to 4 "
                         f"axes ([t,] [z,] y, x), none empty")
    axes = list(axes or ("t", "z", "y", "x")[-len(shape):])
    if len(axes) != len(shape) or len(spacing) != len(shape) or len(translation) != len(shape):
        raise ValueError(f"{path}: shape {shape}, axes {axes}, spacing {list(spacing)} and "
                         f"translation {list(translation)} disagree")
    dtype = _writable(data)
    ngff = [{"name": a, "type": "time"} if a == "t" else
            {"name": a, "type": "space", "unit": "micrometer"} for a in axes]
    claim(path, "write", overwrite=True)
    chunks = (*(1,) * (len(shape) - 2), *(min(chunk, n) for n in shape[-2:]))
    with replace_folder(path, "write") as tmp:
        PredictionStore.build(tmp, shape=shape, dtype=dtype.name, chunks=chunks, shards=None,
                              spacing=tuple(float(s) for s in spacing),
                              translation=tuple(float(t) for t in translation),
                              name=name or Path(path).name.split(".")[0], axes=ngff,
                              srbio={"output": "write", "status": "incomplete",
                                     "fingerprint": "layer", "store_id": uuid.uuid4().hex,
                                     "provenance": provenance()})
        _fill(PredictionStore(tmp), data, dtype)
    return Path(path)


def _fill(store: PredictionStore, data, dtype: np.dtype) -> None:
    """Level 0 block by block, then the pyramid, then the store marked complete."""
    from srbio.inference.pyramid import PyramidBuilder

    for index, region in enumerate(store.blocks(0)):
        block = np.asarray(data[region])
        if dtype.kind == "f" and not np.isfinite(block).all():
            raise ValueError(f"{store.path}: the image holds NaN or infinite values in "
                             f"{[(r.start, r.stop) for r in region]}")
        store.write_block(0, index, block.astype(dtype, copy=False))
    PyramidBuilder(store).build_all(progress=False)
    store.complete({"levels": [list(a.shape) for a in store.levels]})
