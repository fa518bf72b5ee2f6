"""Stage ``predict``: a model and any 2D/3D TIFF or zarr volume in; an OME-Zarr out."""

from __future__ import annotations

import logging
import os
import resource
import time
from pathlib import Path

import numpy as np

from srbio.config import PredictConfig
from srbio.core.grid import lateral_factors
from srbio.io import create_ome_zarr, open_lazy, set_ome_zarr_attrs
from srbio.io.atomic import atomic_path
from srbio.io.outputs import claim
from srbio.io.records import ModelHeader, Prediction, prediction_record_path
from srbio.stages.common import as_spacing

log = logging.getLogger(__name__)


def _check_spacing(header: ModelHeader, spacing: tuple[float, ...], source: str | os.PathLike
                   ) -> None:
    """Warn when the input's lateral pixel size is not the one the model was trained at."""
    if header.spacing is None:
        return
    trained = np.asarray(header.spacing.lr[-2:])
    if not np.allclose(np.asarray(spacing[-2:]), trained, rtol=0.01):
        log.warning("%s: lateral pixel size %s µm differs from the %s µm the model was trained "
                    "at; structures will come out at the wrong size (resample the input first)",
                    source, [float(s) for s in spacing[-2:]], trained.tolist())


def run_predict(model_path: str | os.PathLike, input_path: str | os.PathLike,
                output_path: str | os.PathLike, cfg: PredictConfig, *,
                spacing: list[float] | None = None, progress: bool = True,
                overwrite: bool = False, allow_missing_chunks: bool = False) -> Prediction:
    """Super-resolve a volume into an OME-Zarr at spacing / scale (lateral axes).

    The input is read lazily; the output is filled chunk by chunk in a temporary store that
    is renamed to ``output_path`` when complete; then the
    :class:`~srbio.io.records.Prediction` record is written beside it (``<name>.json``), also
    stored in the OME-Zarr's ``srbio`` attributes.
    """
    for path in (output_path, prediction_record_path(output_path)):
        claim(path, "predict", inputs=[model_path, input_path], overwrite=overwrite)
    from srbio.inference import TiledPredictor, load_model, predict_to_zarr, resolve_device

    device = resolve_device(cfg.device)
    model, header = load_model(model_path, device=device)
    scale, norm = header.network.scale, header.normalisation
    data, sp = open_lazy(input_path, spacing=as_spacing(spacing),
                         allow_missing_chunks=allow_missing_chunks)
    factors = lateral_factors(data.ndim, scale)
    out_shape = tuple(int(n * f) for n, f in zip(data.shape, factors, strict=True))
    out_spacing = tuple(s / f for s, f in zip(sp, factors, strict=True))
    chunks = (1,) * (data.ndim - 2) + (min(cfg.chunk, out_shape[-2]), min(cfg.chunk, out_shape[-1]))
    predictor = TiledPredictor(model, scale=scale, lr_range=norm.lr.pair, hr_range=norm.hr.pair,
                               tile_shape=cfg.tile_shape, overlap=cfg.overlap,
                               batch_size=cfg.batch_size, device=device)
    log.info("predict %s %s at %s µm → %s %s at %s µm on %s", input_path, data.shape, sp,
             output_path, out_shape, tuple(round(s, 5) for s in out_spacing), device)
    _check_spacing(header, sp, input_path)
    prediction_record_path(output_path).unlink(missing_ok=True)  # never beside another store
    start = time.perf_counter()
    with atomic_path(output_path) as tmp:
        out = create_ome_zarr(tmp, shape=out_shape, dtype=cfg.dtype, chunks=chunks,
                              spacing=out_spacing, name=Path(input_path).name,
                              metadata={"output": "predict"})
        try:
            stats = predict_to_zarr(predictor, data, out, progress=progress)
        except ValueError as exc:  # name the input; the partial output is removed
            raise ValueError(f"{input_path}: {exc}") from None
        seconds = time.perf_counter() - start
        record = Prediction(
            store=str(output_path), model=str(model_path), input=str(input_path),
            input_spacing=list(sp), output_spacing=list(out_spacing), output_shape=list(out_shape),
            scale=scale, tile_shape=list(cfg.tile_shape), overlap=cfg.overlap, dtype=cfg.dtype,
            device=str(device), seconds=round(seconds, 3),
            megapixels_per_second=round(float(np.prod(out_shape)) / 1e6 / seconds, 4),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            **stats)
        set_ome_zarr_attrs(tmp, {"prediction": record.model_dump(mode="json"),
                                 "model": header.model_dump(mode="json", exclude={"provenance"})})
    record.write(prediction_record_path(output_path))
    log.info("predicted %s in %.1f s (%.3f output Mpx/s, peak RSS %.0f MB)", out_shape, seconds,
             record.megapixels_per_second, record.peak_rss_mb)
    return record
