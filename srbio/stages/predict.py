"""Stage ``predict``: a model and any 2D/3D TIFF or zarr volume in; a pyramidal OME-Zarr out.

The output store is written in place, block by block, and is resumable: a rerun of the same
job (same model, input and settings: its *fingerprint*) skips the blocks already finished; a
store of another job is refused (replaced only with ``--overwrite``). Work is shared by local
worker processes (``workers``) and by ``--part i/N`` jobs whose ``--gather`` builds the pyramid
and writes the record. Every route calls the same chunk function and writes the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srbio.config import PredictConfig
from srbio.core.grid import check_resampling, resample_plane
from srbio.io import image_origin
from srbio.io.axes import SeriesAxis
from srbio.io.checksums import sha256_file
from srbio.io.image import load_pixels, open_series
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim, remove
from srbio.io.records import ModelHeader, Prediction, prediction_record_path
from srbio.io.store import PredictionStore, progress_folder
from srbio.models.registry import network_info
from srbio.provenance import provenance
from srbio.stages.common import as_spacing, lineage

if TYPE_CHECKING:
    from srbio.inference.monitor import Monitor

log = logging.getLogger(__name__)


class PlaneCache:
    """A lazily read volume whose planes are decoded whole, optionally resampled, and kept.

    For inputs stored a whole plane per chunk (TIFF pages), where reading a block's window
    would decode the whole plane again for every block, and for inputs resampled onto the
    training pixel size (``lateral``: new pixel counts per plane). Indexed like a numpy
    array; the ``keep`` most recent planes are kept (a slab of a 3D network). Every axis in
    front of the last two (z, and a time / position axis) indexes planes.
    """

    def __init__(self, data, *, keep: int = 2, lateral: tuple[int, int] | None = None) -> None:
        self.data, self.lateral, self._keep = data, lateral, keep
        self.shape = (*data.shape[:-2], *(lateral or data.shape[-2:]))
        self.ndim = data.ndim
        self.dtype = np.dtype(np.float32) if lateral else np.dtype(data.dtype)
        self._planes: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()

    def plane(self, *index: int) -> np.ndarray:
        """The plane at ``index`` (one int per leading axis), decoded (and resampled) once."""
        if index not in self._planes:
            plane = load_pixels(self.data[index], source=f"plane {list(index)}")
            self._planes[index] = resample_plane(plane, self.lateral) if self.lateral else plane
            while len(self._planes) > self._keep:
                self._planes.popitem(last=False)
        self._planes.move_to_end(index)
        return self._planes[index]

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        lead, lateral = key[:-2], key[-2:]
        ranges = [[int(k)] if isinstance(k, int | np.integer) else range(*k.indices(n))
                  for k, n in zip(lead, self.shape, strict=False)]
        dropped = [isinstance(k, int | np.integer) for k in lead]
        width = [len(range(*k.indices(n))) for k, n in zip(lateral, self.shape[-2:],
                                                             strict=True)]
        planes = [self.plane(*idx)[lateral] for idx in itertools.product(*ranges)]
        out = (np.stack(planes) if planes else np.zeros((0, *width), self.dtype)).reshape(
            *(len(r) for r in ranges), *width)
        return out[tuple(0 if d else slice(None) for d in dropped)]


def _whole_planes(data) -> bool:
    """Whether a lazily opened input is stored in whole rows (dask chunks).

    A TIFF page, or a TIFF in strips (chunks of whole rows): reading a block's window would
    decode every strip it touches again for each block along the row, so such inputs are
    decoded a whole plane at a time instead (:class:`PlaneCache`).
    """
    chunks = getattr(data, "chunks", None)
    return bool(chunks) and len(chunks[-1]) == 1 and len(chunks[-2]) >= 1


def _training_grid(data, sp: tuple[float, ...], origin: tuple[float, ...], header: ModelHeader,
                   *, resample: bool, source: str | os.PathLike, keep: int = 4
                   ) -> tuple[object, tuple[float, ...], tuple[float, ...], list | None]:
    """The input on the lateral pixel size the model was trained at (resampled if needed).

    Returns the data, its spacing, its origin and the original spacing when it was resampled
    (else None). Resampling keeps the field of view: the first pixel's centre moves by half
    the difference of the pixel sizes. ``keep`` resampled planes are cached (a slab).
    """
    if header.spacing is None:
        return data, sp, origin, None
    trained = tuple(float(s) for s in header.spacing.lr[-2:])
    if np.allclose(sp[-2:], trained, rtol=0.01):
        return data, sp, origin, None
    found = [float(s) for s in sp[-2:]]
    if not resample:
        raise ValueError(f"{source}: lateral pixel size {found} µm is not the {list(trained)} µm "
                         f"the model was trained at; let srbio resample it (drop --no-resample) "
                         f"or resample it yourself")
    check_resampling(sp, trained, tuple(data.shape), override="--spacing (or `spacing` of "
                     "the predict volume in config.yaml)",
                     what=f"{source} (for a model trained at {list(trained)} µm)")
    lateral = tuple(max(1, round(n * s / t)) for n, s, t in zip(data.shape[-2:], sp[-2:],
                                                                    trained, strict=True))
    log.warning("%s: lateral pixel size %s µm resampled onto the %s µm the model was trained at "
                "(%s → %s pixels per plane)", source, found, list(trained), data.shape[-2:],
                lateral)
    new_sp = tuple(n * s / m for n, s, m in zip(data.shape[-2:], sp[-2:], lateral, strict=True))
    moved = tuple(o - s / 2 + t / 2 for o, s, t in zip(origin[-2:], sp[-2:], new_sp, strict=True))
    return (PlaneCache(data, lateral=lateral, keep=keep), (*sp[:-2], *new_sp),
            (*origin[:-2], *moved), list(sp))


@dataclass(frozen=True)
class PredictJob:
    """Everything a process needs to predict blocks of one store (picklable, for workers)."""

    model: str
    input: str
    output: str
    cfg: PredictConfig
    spacing: tuple[float, ...] | None
    allow_missing_chunks: bool
    halo: int


def _device(cfg: PredictConfig):
    """The configured device; worker ``SRBIO_WORKER`` of several gets its own CUDA device."""
    import torch

    from srbio.inference import resolve_device

    device = resolve_device(cfg.device)
    worker = os.environ.get("SRBIO_WORKER")
    if device.type == "cuda" and device.index is None and worker is not None:
        device = torch.device("cuda", int(worker) % torch.cuda.device_count())
    return device


def load_for_prediction(model_path: str | os.PathLike, cfg: PredictConfig):
    """The network on ``cfg``'s device, its header and the device; tiles checked against it."""
    from srbio.inference import load_model

    device = _device(cfg)
    model, header = load_model(model_path, device=device)
    smallest = network_info(header.network.name).min_input
    if min(cfg.tile_shape) < smallest:
        raise ValueError(f"tile {list(cfg.tile_shape)} is smaller than the {smallest} pixels "
                         f"network {header.network.name!r} needs (predict.tile_shape)")
    return model, header, device


def _input(job: PredictJob, header: ModelHeader):
    """The input as the network sees it.

    Returns the data (axes ``[series,] [z,] y, x``), the spacing and origin of its space
    axes, the original spacing if resampled, and its time / position axis (or None).
    """
    data, sp, series = open_series(job.input, spacing=as_spacing(job.spacing),
                                   allow_missing_chunks=job.allow_missing_chunks)
    dims = network_info(header.network.name).dims
    if dims == 3 and len(sp) != 3:
        raise ValueError(f"{job.input}: the model is a 3D network ({header.network.name}) and "
                         f"predicts volumes (zyx); this input has shape {data.shape}"
                         + (f" with a {series.kind} axis" if series else ""))
    origin = image_origin(job.input, len(sp))
    keep = job.cfg.tile_depth + 2 * job.cfg.depth_margin + 1 if dims == 3 else 2
    data, sp, origin, resampled_from = _training_grid(
        data, sp, origin, header, resample=job.cfg.resample, source=job.input, keep=keep)
    if resampled_from is None and _whole_planes(data):  # decode each plane once, not per block
        data = PlaneCache(data, keep=keep)
    return data, sp, origin, resampled_from, series


def _predictor(model, header: ModelHeader, cfg: PredictConfig, device, halo: int):
    from srbio.inference import TiledPredictor

    net = header.network
    slab = {}
    if network_info(net.name).dims == 3:
        slab = {"depth": cfg.tile_depth, "depth_margin": cfg.depth_margin,
                "z_scale": int(net.params.get("z_scale", 1))}
    return TiledPredictor(model, scale=net.scale, lr_range=header.normalisation.lr.pair,
                          hr_range=header.normalisation.hr.pair, tile_shape=cfg.tile_shape,
                          overlap=cfg.overlap, halo=halo, batch_size=cfg.batch_size,
                          device=device, precision=cfg.precision, tta=cfg.tta,
                          min_input=network_info(net.name).min_input, **slab)


def build_predictor(model, header: ModelHeader, cfg: PredictConfig, device):
    """The tiled predictor of ``cfg`` for a loaded model; an ``auto`` halo is measured.

    The measured lateral reach of the network is kept as ``predictor.reach``.
    """
    from srbio.inference import halo_for

    halo, reach = halo_for(model, cfg.halo, dims=network_info(header.network.name).dims,
                           device=device, tile_shape=cfg.tile_shape, overlap=cfg.overlap,
                           depth_margin=cfg.depth_margin)
    predictor = _predictor(model, header, cfg, device, halo)
    predictor.reach = reach
    return predictor


def open_job(job: PredictJob):
    """Build a process's (predictor, input, store) for ``job`` (a worker's initialiser)."""
    model, header, device = load_for_prediction(job.model, job.cfg)
    data = _input(job, header)[0]
    return _predictor(model, header, job.cfg, device, job.halo), data, PredictionStore(job.output)


def _stamp(path: str | os.PathLike) -> list:
    """Size and modification time of a file, or of a zarr store's metadata files.

    A rewritten input gets another fingerprint, so its new pixels are never mixed into a
    store begun on the old ones. (Chunks of a zarr rewritten in place, metadata untouched,
    are not noticed: that would need every chunk file.)
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(
        p for pattern in ("zarr.json", "*/zarr.json", ".z*", "*/.z*") for p in path.glob(pattern))
    return [[str(f.relative_to(path)) if f != path else "", f.stat().st_size,
             f.stat().st_mtime_ns] for f in files]


def fingerprint(model_path, input_path, data, sp, origin, cfg: PredictConfig,
                series: SeriesAxis | None = None) -> str:
    """A digest of what decides the output's pixels: model, input, settings, srbio version.

    The model file's bytes are hashed; the input by its path, size and modification time
    (:func:`_stamp`), shape, dtype, pixel size, position and time / position axis. Settings that do not change
    pixels (workers, parts, batch size, device) are left out, so a rerun may change them.
    An ``auto`` halo enters as ``auto``: the value measured when the store was created is
    kept in the store and used by every later run, whatever its device.
    """
    settings = cfg.model_dump(mode="json", exclude={"volumes", "model", "workers", "parts",
                                                    "batch_size", "device"})
    payload = {"model": sha256_file(model_path), "input": str(Path(input_path).resolve()),
               "stamp": _stamp(input_path),
               "shape": list(data.shape), "dtype": str(data.dtype), "spacing": list(sp),
               "origin": list(origin), "settings": settings, "srbio": provenance()["srbio"]}
    if series is not None:
        payload["series"] = series.__dict__
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _layout(predictor, shape: tuple[int, ...], sp, origin, cfg: PredictConfig,
            series: SeriesAxis | None = None) -> dict:
    """Output shape, chunks, shards, axes, spacing and translation of level 0.

    ``sp`` and ``origin`` are of the space axes; a time / position axis in front keeps its
    own step and origin (chunks of one time point / position).
    """
    factors = predictor.factors(len(shape))
    out_shape = predictor.output_shape(shape)
    s = predictor.scale
    lateral = max(s, cfg.chunk // s * s)  # chunks fall on LR pixel boundaries
    zc = [predictor.depth * predictor.z_scale] if predictor.depth is not None else [1]
    front = [1] * (len(shape) - len(sp)) + zc[:len(sp) - 2]
    chunks = (*front, *(min(lateral, n) for n in out_shape[-2:]))
    axes = [{"name": n, "type": "space", "unit": "micrometer"}
            for n in ("z", "y", "x")[-len(sp):]]
    if series is not None:
        axes.insert(0, series.ngff())
        sp, origin = (series.step, *sp), (series.origin, *origin)
    shards = None
    if cfg.shard is not None and any(n > c for n, c in zip(out_shape[-2:], chunks[-2:],
                                                            strict=True)):
        per = max(1, cfg.shard // lateral)
        shards = (*chunks[:-2], *(min(c * per, -(-n // c) * c) for c, n in
                                  zip(chunks[-2:], out_shape[-2:], strict=True)))
    out_spacing = tuple(v / f for v, f in zip(sp, factors, strict=True))
    # output pixel j of an axis upsampled f× has its centre (f-1)/2 output pixels before LR 0's
    translation = tuple(o - (f - 1) / 2 * v for o, f, v in zip(origin, factors, out_spacing,
                                                               strict=True))
    return {"shape": out_shape, "chunks": chunks, "shards": shards, "spacing": out_spacing,
            "translation": translation, "axes": axes}


def _existing_store(output: Path, fp: str, *, overwrite: bool, may_replace: bool
                    ) -> PredictionStore | None:
    """The store of this job at ``output`` to resume (or complete already), or None.

    Another job's store is refused, or removed with ``overwrite`` (never by a ``--part``).
    A complete store of this job is kept whatever ``overwrite`` says: the same job would
    write the same bytes (delete it to recompute).
    """
    if output.is_dir() and not any(output.iterdir()):
        output.rmdir()  # an empty folder (made by a workflow engine): nothing to keep
    if not output.exists():
        return None
    store = PredictionStore(output)
    if store.fingerprint == fp:
        return store  # resume it, or nothing to do when it is complete
    if not (overwrite and may_replace):
        hint = ("pass --overwrite to replace it" if may_replace else
                "run the job without --part first (or the workflow's init step) to replace it")
        raise ValueError(f"{output}: holds the prediction of another job (its fingerprint "
                         f"{store.fingerprint} is not this job's {fp}: model, input or "
                         f"settings differ); {hint} (nothing was changed)")
    log.info("%s: replacing the prediction of another job", output)
    prediction_record_path(output).unlink(missing_ok=True)
    remove(progress_folder(output))
    remove(output)
    return None


def _create_store(output: Path, layout: dict, fp: str, cfg: PredictConfig, predictor, *,
                  name: str) -> tuple[PredictionStore, bool]:
    """Create this job's store, or open the one a parallel ``--part`` job created first.

    Returns the store and whether this call created it.
    """
    try:
        return PredictionStore.create(
            output, fingerprint=fp, dtype=cfg.dtype, name=name, **layout,
            metadata={"provenance": provenance(), "halo": predictor.halo,
                      "reach": predictor.reach}), True
    except FileExistsError:
        store = PredictionStore(output)
        if store.fingerprint != fp:
            raise ValueError(f"{output}: another job created a store here meanwhile "
                             f"(fingerprint {store.fingerprint}, not {fp})") from None
        return store, False


def _precision_error(predictor, source, store: PredictionStore, index: int
                     ) -> tuple[float | None, float | None]:
    """Max |prediction − fp32| on the first batch of a block's tiles (None at fp32)."""
    runner = predictor.runner
    if runner.precision == "fp32":
        return None, None
    plan, window = predictor.read(source, store.blocks(0)[index])
    tiles = predictor.tiles(plan, window, list(plan.indices())[:max(1, runner.batch_size or 1)])
    err = float(np.abs(runner(tiles) - runner(tiles, precision="fp32")).max())
    runner.tiles_computed -= 2 * len(tiles)
    span = runner.hr_range[1] - runner.hr_range[0]
    log.info("%s forward: max |error| against fp32 %.4g (%.3g%% of the HR range)",
             runner.precision, err, 100 * err / span)
    return err, err / span


def parse_part(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` (1 ≤ i ≤ N) → (i, N); None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--part {text!r}: expected i/N, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise ValueError(f"--part {text!r}: i must be between 1 and N")
    return i, n


def part_blocks(count: int, part: tuple[int, int] | None) -> range:
    """The contiguous share of ``count`` blocks of part ``(i, N)`` (all without a part)."""
    if part is None:
        return range(count)
    i, n = part
    return range((i - 1) * count // n, i * count // n)


@dataclass
class _Opened:
    """A job ready to compute: its predictor on the input, its store, and how it got them."""

    job: PredictJob
    predictor: object
    data: object
    store: PredictionStore
    header: ModelHeader
    device: object
    layout: dict
    sp: tuple[float, ...]
    resampled_from: list | None
    created: bool


def _open(model_path, input_path, output: Path, cfg: PredictConfig, *, spacing,
          allow_missing_chunks: bool, overwrite: bool, may_replace: bool) -> _Opened:
    """Load the model and the input, then resume, create or replace the store."""
    model, header, device = load_for_prediction(model_path, cfg)
    job = PredictJob(str(model_path), str(input_path), str(output), cfg, as_spacing(spacing),
                     allow_missing_chunks, 0)
    data, sp, origin, resampled_from, series = _input(job, header)
    _check_intensities(input_path, data.dtype, header)
    fp = fingerprint(model_path, input_path, data, sp, origin, cfg, series)
    store = _existing_store(output, fp, overwrite=overwrite, may_replace=may_replace)
    created = False
    if store is None:
        predictor = build_predictor(model, header, cfg, device)  # measures an auto halo
        layout = _layout(predictor, tuple(data.shape), sp, origin, cfg, series)
        store, created = _create_store(output, layout, fp, cfg, predictor,
                                       name=Path(input_path).name)
        created = created and may_replace  # a --part job never removes a shared store
    predictor = _predictor(model, header, cfg, device, int(store.srbio["halo"]))
    predictor.reach = store.srbio.get("reach")
    layout = _layout(predictor, tuple(data.shape), sp, origin, cfg, series)
    return _Opened(PredictJob(**{**job.__dict__, "halo": predictor.halo}), predictor, data,
                   store, header, device, layout, sp, resampled_from, created)


@releases_claims
def run_predict(model_path: str | os.PathLike, input_path: str | os.PathLike,
                output_path: str | os.PathLike, cfg: PredictConfig, *,
                spacing: list[float] | None = None, progress: bool = True,
                overwrite: bool = False, allow_missing_chunks: bool = False,
                part: tuple[int, int] | None = None, gather: bool = False,
                init: bool = False, monitor: Monitor | None = None) -> Prediction | None:
    """Super-resolve a volume into a pyramidal OME-Zarr 0.5 at spacing / scale, resumably.

    Without ``part``/``gather``/``init`` the whole job runs: level-0 blocks not yet finished
    (by ``cfg.workers`` processes), the pyramid, then the
    :class:`~srbio.io.records.Prediction` record beside the store (``<name>.json``, also in
    the store's ``srbio`` attributes). ``init`` only creates (or replaces, with
    ``overwrite``) the store; ``part=(i, N)`` predicts the i-th of N shares of the blocks;
    ``gather`` checks every block is finished, builds the pyramid and writes the record.
    A ``monitor`` (a GUI's) hears of every block and batch of tiles and may stop the run with
    :class:`~srbio.inference.monitor.Cancelled`; the finished blocks are kept for a resume.

    Returns
    -------
    Prediction or None
        The record, when this call finished the store.
    """
    output, record_path = Path(output_path), prediction_record_path(output_path)
    share = f"part-{part[0]}-of-{part[1]}" if part else None  # parts write one store at once
    for path in (output, record_path):
        claim(path, "predict", inputs=[model_path, input_path], overwrite=True, share=share)
    start = time.perf_counter()
    job = _open(model_path, input_path, output, cfg, spacing=spacing,
                allow_missing_chunks=allow_missing_chunks, overwrite=overwrite,
                may_replace=part is None and not gather)
    store = job.store
    if store.record is not None:  # this job already finished: nothing to compute
        log.info("%s: already complete for this job; nothing to do", output)
        return None if (init or part) else _finish_again(store, record_path)
    record_path.unlink(missing_ok=True)  # never a finished-looking record beside a partial store
    if init:
        return None
    blocks = store.blocks(0)
    if gather:
        missing = len(blocks) - len(store.finished(0))
        if missing:
            raise ValueError(f"{output}: {missing} of {len(blocks)} blocks are not finished; "
                             f"run every --part job (again) before --gather")
        return _finish(job, record_path, start, computed=None, progress=progress)
    stats, err = _compute(job, part, progress=progress, input_path=input_path, monitor=monitor)
    summary = {"seconds": time.perf_counter() - start, "blocks": stats.blocks,
               "pixels": stats.pixels, "precision_max_abs_error": err[0],
               "precision_error_of_range": err[1], "workers": cfg.workers}
    if part is not None:
        store.write_summary(f"part-{part[0]}-of-{part[1]}", summary)
        return None
    return _finish(job, record_path, start, computed=summary, progress=progress)


def _compute(job: _Opened, part: tuple[int, int] | None, *, progress: bool, input_path,
             monitor: Monitor | None = None):
    """Predict the unfinished level-0 blocks of this call's share; stats and precision error."""
    from srbio.inference.pyramid import PyramidBuilder
    from srbio.inference.schedule import predict_store

    store, cfg = job.store, job.job.cfg
    share = part_blocks(len(store.blocks(0)), part)
    finished = store.finished(0, among=share)
    todo = [i for i in share if i not in finished]
    if len(todo) < len(share):
        log.info("resuming: %d of %d blocks already finished", len(share) - len(todo),
                 len(share))
    log.info("predict %s %s at %s µm → %s %s at %s µm, halo %d (reach %s), on %s", input_path,
             job.data.shape, job.sp, store.path, job.layout["shape"],
             tuple(round(s, 5) for s in job.layout["spacing"]), job.predictor.halo,
             job.predictor.reach, job.device)
    try:
        err = _precision_error(job.predictor, job.data, store, todo[0]) if todo else (None, None)
        # a whole run builds the pyramid as it goes (a --part cannot see the other parts)
        pyramid = PyramidBuilder(store, finished0=finished) if part is None else None
        stats = predict_store(store, todo, done=len(share) - len(todo), total=len(share),
                              job=(job.predictor, job.data, store),
                              factory=functools.partial(open_job, job.job), workers=cfg.workers,
                              progress=progress, pyramid=pyramid, monitor=monitor)
    except BaseException as exc:
        _after_failure(store, job.created)
        if isinstance(exc, ValueError):  # name the input
            raise ValueError(f"{input_path}: {exc}") from None
        raise
    _log_result(stats, job.layout["shape"], cfg.dtype)
    if stats.blocks:
        _check_intensities(input_path, job.data.dtype, job.header, stats.input_range)
    return stats, err


def _finish(job: _Opened, record_path: Path, start: float, *, computed: dict | None,
            progress: bool) -> Prediction:
    """Build the pyramid, then write the record into the store and beside it.

    ``computed`` summarises this call's computing; None (``--gather``) takes the parts'.
    """
    from srbio.inference.schedule import build_pyramid

    store, cfg, layout = job.store, job.job.cfg, job.layout
    build_pyramid(store, progress=progress)
    runs = [computed] if computed is not None else list(store.summaries().values())
    seconds = sum(r["seconds"] for r in runs) + (time.perf_counter() - start) * (
        computed is None)
    pixels, blocks = sum(r["pixels"] for r in runs), sum(r["blocks"] for r in runs)
    errors = [r for r in runs if r["precision_max_abs_error"] is not None]
    worst = max(errors, key=lambda r: r["precision_max_abs_error"]) if errors else {}
    tiles, low, high = (store.counts(0) + [0, 0, 0])[:3]
    lvl0 = store.levels[0]
    record = Prediction(
        store=str(store.path), model=job.job.model, input=job.job.input,
        input_spacing=list(job.sp), resampled_from=job.resampled_from,
        axes=[a["name"] for a in layout["axes"]],
        output_spacing=list(layout["spacing"]), output_translation=list(layout["translation"]),
        output_shape=list(layout["shape"]), levels=[list(a.shape) for a in store.levels],
        chunks=list(lvl0.chunks), shards=list(lvl0.shards) if lvl0.shards else None,
        scale=job.header.network.scale, tile_shape=list(cfg.tile_shape),
        halo=job.predictor.halo, reach=job.predictor.reach, overlap=cfg.overlap,
        precision=cfg.precision,
        precision_max_abs_error=worst.get("precision_max_abs_error"),
        precision_error_of_range=worst.get("precision_error_of_range"), tta=cfg.tta,
        dtype=cfg.dtype, device=str(job.device), fingerprint=store.fingerprint,
        blocks=len(store.blocks(0)), blocks_computed=blocks,
        workers=max([r["workers"] for r in runs], default=cfg.workers),
        parts=max(1, len(runs)) if computed is None else 1, seconds=round(seconds, 3),
        megapixels_per_second=round(pixels / 1e6 / seconds, 4) if pixels else None,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        tiles=tiles, clipped_low=low, clipped_high=high,
        **lineage({"predict": cfg}, [("model", job.job.model), ("input", job.job.input)]))
    store.complete({**record.model_dump(mode="json"),
                    "model_header": job.header.model_dump(mode="json", exclude={"provenance"})})
    record.write(record_path)
    log.info("predicted %s: %d blocks computed in %.1f s (%s output Mpx/s, peak RSS %.0f MB)",
             layout["shape"], blocks, seconds, record.megapixels_per_second, record.peak_rss_mb)
    return record


def _after_failure(store: PredictionStore, created: bool) -> None:
    """Keep finished blocks for a resume; a store this run created and never wrote is removed."""
    if created and not store.finished(0, verify=False):
        remove(store.progress)
        remove(store.path)
    else:
        log.error("%s: the blocks finished so far are kept; rerun the same command to resume",
                  store.path)


def _finish_again(store: PredictionStore, record_path: Path) -> Prediction:
    data = {k: v for k, v in (store.record or {}).items() if k != "model_header"}
    record = Prediction.from_mapping(data, source=str(store.path))
    record.write(record_path)
    return record


def _check_intensities(source, dtype, header: ModelHeader, found: list[float] | None = None
                       ) -> None:
    """Warn when an input cannot hold, or does not hold, the intensities the model learnt.

    Before the work: an integer dtype whose largest value lies below the model's LR range
    (an 8-bit input to a model trained on 16-bit data). After it (``found``, the input's
    min and max): intensities entirely outside that range.
    """
    lo, hi = header.normalisation.lr.pair
    dtype = np.dtype(dtype)
    if found is None:
        if dtype.kind in "iu" and np.iinfo(dtype).max < hi:
            log.warning("%s: its dtype %s holds values up to %d, but the model was trained on "
                        "LR intensities %g … %g: another bit depth or a converted image? The "
                        "prediction will be wrong unless the intensities match training",
                        source, dtype, np.iinfo(dtype).max, lo, hi)
        return
    span = hi - lo
    if found[1] < lo - 0.5 * span or found[0] > hi + 0.5 * span:
        log.warning("%s: its intensities %g … %g lie far outside the LR range %g … %g the model "
                    "was trained on (fixed normalisation): another channel, exposure or bit "
                    "depth? The prediction is unlikely to be meaningful", source, found[0],
                    found[1], lo, hi)


def _log_result(stats, shape, dtype) -> None:
    total = int(np.prod(shape))
    if stats.clipped_low:  # typical in black borders / fill regions, which normalise below vmin
        log.info("%d predicted pixels (%.1f%%) were below 0 and were set to 0 (black borders "
                 "and fill regions normalise below vmin)", stats.clipped_low,
                 100 * stats.clipped_low / total)
    if stats.clipped_high:
        log.warning("%d predicted pixels (%.2f%%) exceeded %d and were clipped: consider "
                    "dtype float32", stats.clipped_high, 100 * stats.clipped_high / total,
                    np.iinfo(np.dtype(dtype)).max)
    lo, hi = stats.input_range
    if stats.blocks and lo == hi:
        log.warning("the input is constant (every pixel is %g): the prediction holds no "
                    "information about the sample", lo)
