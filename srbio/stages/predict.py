"""Stage ``predict``: a model and any 2D/3D TIFF or zarr volume in; an OME-Zarr out."""

from __future__ import annotations

import logging
import os
import resource
import time
from pathlib import Path

import numpy as np

from srbio.config import PredictConfig
from srbio.inference import TiledPredictor, predict_to_zarr, resolve_device
from srbio.io import create_ome_zarr, open_lazy, set_ome_zarr_attrs
from srbio.io.atomic import atomic_path
from srbio.models.checkpoint import load_model
from srbio.stages.common import as_spacing

log = logging.getLogger(__name__)


def run_predict(model_path: str | os.PathLike, input_path: str | os.PathLike,
                output_path: str | os.PathLike, cfg: PredictConfig, *,
                spacing: list[float] | None = None, progress: bool = True) -> dict:
    """Super-resolve a volume into an OME-Zarr at spacing / scale (lateral axes).

    The input is read lazily; the output is filled chunk by chunk in a temporary store
    that is renamed to ``output_path`` when complete. Returns throughput figures.
    """
    device = resolve_device(cfg.device)
    model, meta = load_model(model_path, device=device)
    scale = int(meta["network"]["scale"])
    data, sp = open_lazy(input_path, spacing=as_spacing(spacing))
    lateral = (1,) * (data.ndim - 2) + (scale, scale)
    out_shape = tuple(n * f for n, f in zip(data.shape, lateral, strict=True))
    out_spacing = tuple(s / f for s, f in zip(sp, lateral, strict=True))
    chunks = (1,) * (data.ndim - 2) + (min(cfg.chunk, out_shape[-2]), min(cfg.chunk, out_shape[-1]))
    predictor = TiledPredictor(model, scale=scale, lr_range=meta["normalisation"]["lr"],
                               hr_range=meta["normalisation"]["hr"], tile_shape=cfg.tile_shape,
                               overlap=cfg.overlap, batch_size=cfg.batch_size, device=device)
    log.info("predict %s %s at %s µm → %s %s at %s µm on %s", input_path, data.shape, sp,
             output_path, out_shape, tuple(round(s, 5) for s in out_spacing), device)
    start = time.perf_counter()
    with atomic_path(output_path) as tmp:
        out = create_ome_zarr(
            tmp, shape=out_shape, dtype=cfg.dtype, chunks=chunks, spacing=out_spacing,
            name=Path(input_path).name,
            metadata={"model": str(model_path), "input": str(input_path), "scale": scale,
                      "normalisation": meta["normalisation"], "tile_shape": list(cfg.tile_shape),
                      "overlap": cfg.overlap})
        try:
            stats = predict_to_zarr(predictor, data, out, progress=progress)
        except ValueError as exc:  # name the input; the partial output is removed
            raise ValueError(f"{input_path}: {exc}") from None
        seconds = time.perf_counter() - start
        mpx = float(np.prod(out_shape)) / 1e6
        stats.update({"seconds": round(seconds, 3), "output_megapixels": round(mpx, 3),
                      "megapixels_per_second": round(mpx / seconds, 4),
                      "peak_rss_mb": round(
                          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "device": str(device), "output_shape": list(out_shape)})
        set_ome_zarr_attrs(tmp, {"prediction": stats})
    log.info("predicted %.2f Mpx in %.1f s (%.3f Mpx/s)", mpx, seconds, mpx / seconds)
    return stats
