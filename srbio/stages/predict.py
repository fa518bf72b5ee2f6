"""Stage ``predict``: a model and any 2D/3D TIFF or zarr volume in; an OME-Zarr out."""

from __future__ import annotations

import logging
import os
import resource
import time
from pathlib import Path

import numpy as np

from srbio.config import PredictConfig
from srbio.core.grid import lateral_factors, resample_plane
from srbio.io import create_ome_zarr, open_lazy, set_ome_zarr_attrs
from srbio.io.atomic import atomic_path
from srbio.io.image import load_pixels
from srbio.io.outputs import claim
from srbio.io.records import ModelHeader, Prediction, prediction_record_path
from srbio.models.registry import network_info
from srbio.stages.common import as_spacing, slab_settings

log = logging.getLogger(__name__)


class ResampledVolume:
    """A lazily read volume resampled plane by plane onto new lateral pixel counts.

    Indexing by a z index (3D) gives that resampled plane; a 2D volume is indexed by slices.
    The last plane is kept, so the tiles of one plane resample it once.
    """

    def __init__(self, data, lateral: tuple[int, int]) -> None:
        self.data, self.lateral = data, lateral
        self.shape = (*data.shape[:-2], *lateral)
        self.ndim, self.dtype = data.ndim, np.dtype(np.float32)
        self._cached: tuple[int, np.ndarray] | None = None

    def plane(self, z: int) -> np.ndarray:
        """The resampled plane ``z`` (0 for a 2D volume)."""
        if self._cached is None or self._cached[0] != z:
            src = self.data[z] if self.ndim == 3 else self.data
            self._cached = (z, resample_plane(load_pixels(src, source=f"plane {z}"), self.lateral))
        return self._cached[1]

    def __getitem__(self, key):
        if self.ndim == 3 and isinstance(key, int | np.integer):
            return self.plane(int(key))
        return self.plane(0)[key]


def _training_grid(data, sp: tuple[float, ...], header: ModelHeader, *, resample: bool,
                   source: str | os.PathLike) -> tuple[object, tuple[float, ...], list | None]:
    """The input on the lateral pixel size the model was trained at (resampled if needed).

    Returns the data, its spacing and the original spacing when it was resampled (else None).
    """
    if header.spacing is None:
        return data, sp, None
    trained = tuple(float(s) for s in header.spacing.lr[-2:])
    if np.allclose(sp[-2:], trained, rtol=0.01):
        return data, sp, None
    found = [float(s) for s in sp[-2:]]
    if not resample:
        raise ValueError(f"{source}: lateral pixel size {found} µm is not the {list(trained)} µm "
                         f"the model was trained at; let srbio resample it (drop --no-resample) "
                         f"or resample it yourself")
    lateral = tuple(max(1, round(n * s / t)) for n, s, t in zip(data.shape[-2:], sp[-2:],
                                                                    trained, strict=True))
    log.warning("%s: lateral pixel size %s µm resampled onto the %s µm the model was trained at "
                "(%s → %s pixels per plane)", source, found, list(trained), data.shape[-2:],
                lateral)
    return ResampledVolume(data, lateral), (*sp[:-2], *trained), list(sp)


def _load(model_path: str | os.PathLike, cfg: PredictConfig) -> tuple:
    """The network on its device, its header, the device; tiles checked against the network."""
    from srbio.inference import load_model, resolve_device

    device = resolve_device(cfg.device)
    model, header = load_model(model_path, device=device)
    smallest = network_info(header.network.name).min_input
    if min(cfg.tile_shape) < smallest:
        raise ValueError(f"tile {list(cfg.tile_shape)} is smaller than the {smallest} pixels "
                         f"network {header.network.name!r} needs (predict.tile_shape)")
    return model, header, device


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
    from srbio.inference import TiledPredictor, predict_to_zarr

    model, header, device = _load(model_path, cfg)
    scale, norm = header.network.scale, header.normalisation
    data, sp = open_lazy(input_path, spacing=as_spacing(spacing),
                         allow_missing_chunks=allow_missing_chunks)
    data, sp, resampled_from = _training_grid(data, sp, header, resample=cfg.resample,
                                              source=input_path)
    factors = lateral_factors(data.ndim, scale)
    out_shape = tuple(int(n * f) for n, f in zip(data.shape, factors, strict=True))
    out_spacing = tuple(s / f for s, f in zip(sp, factors, strict=True))
    chunks = (1,) * (data.ndim - 2) + (min(cfg.chunk, out_shape[-2]), min(cfg.chunk, out_shape[-1]))
    predictor = TiledPredictor(model, scale=scale, lr_range=norm.lr.pair, hr_range=norm.hr.pair,
                               tile_shape=cfg.tile_shape, overlap=cfg.overlap,
                               batch_size=cfg.batch_size, device=device,
                               **slab_settings(header.network.name, cfg))
    log.info("predict %s %s at %s µm → %s %s at %s µm on %s", input_path, data.shape, sp,
             output_path, out_shape, tuple(round(s, 5) for s in out_spacing), device)
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
            input_spacing=list(sp), resampled_from=resampled_from,
            output_spacing=list(out_spacing), output_shape=list(out_shape),
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
