"""Stage ``train``: patches + normalisation in; a model file, a training curve and a record out."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from srbio.config import ModelConfig, TrainConfig
from srbio.io.atomic import atomic_files
from srbio.io.checksums import sha256_file
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim, mark_folder, process_rank, read_json_or_none
from srbio.io.records import (
    LINEAGE,
    InputFile,
    ModelHeader,
    NetworkSpec,
    Normalisation,
    Patches,
    PixelSizes,
    TrainFiles,
    Training,
    patches_record_path,
)
from srbio.models.registry import check_scale, network_info
from srbio.provenance import provenance
from srbio.stages.common import input_checksums
from srbio.train.layout import check_layout, check_warmup, processes

log = logging.getLogger(__name__)
LINEAGE_KEYS = set(LINEAGE)


def epochs_table(logs: Path) -> list[dict[str, float]]:
    """Per-epoch train/val loss and val PSNR from Lightning's CSV logs of every run.

    A resumed run logs into a new ``version_<n>`` folder; later runs override earlier ones
    epoch by epoch, so the table covers the whole training.
    """
    epochs: dict[int, dict[str, float]] = {}
    runs = sorted(logs.glob("version_*/metrics.csv"),
                  key=lambda p: int(p.parent.name.removeprefix("version_")))
    for metrics_csv in runs:
        with metrics_csv.open() as f:
            for row in csv.DictReader(f):
                e = int(float(row["epoch"]))
                for key in ("train_loss", "val_loss", "val_psnr", "val_psnr_fit",
                            "data_wait_share", "g_loss", "d_loss", "step"):
                    if row.get(key):
                        epochs.setdefault(e, {"epoch": e})[key] = float(row[key])
    if not epochs:
        raise ValueError(f"{logs}: no training metrics were logged")
    return [epochs[e] for e in sorted(epochs)]


def _digest(path: Path) -> str:
    """sha256 of a file, or of a folder's file names and sizes (a zarr store), 16 hex digits.

    A record's what-made-it fields (time, versions, checksums: ``LINEAGE``) are left out, so
    an upstream stage run again to the same result leaves the fingerprint as it was.
    """
    if not path.is_dir():
        data = read_json_or_none(path) if path.suffix == ".json" else None
        if data and LINEAGE_KEYS & data.keys():
            kept = {k: v for k, v in data.items() if k not in LINEAGE_KEYS}
            return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]
        return sha256_file(path)[:16]
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(path)}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def read_inputs(patches_path: str | os.PathLike, norm_json: str | os.PathLike,
                model_cfg: ModelConfig) -> tuple[Patches, Normalisation]:
    """The patch and normalisation records; checks the network can train at their scale.

    Reads only small JSON files (no torch import), so a wrong input fails in a second.
    """
    patches = Patches.read(patches_record_path(patches_path))
    norm = Normalisation.read(norm_json)
    dims = network_info(model_cfg.name).dims
    if (dims == 3) != (patches.depth is not None):
        have = f"3D patches ({patches.depth} planes)" if patches.depth else "2D patches"
        raise ValueError(f"{patches_path}: {have} cannot train the {dims}D network "
                         f"{model_cfg.name!r}; set patches.depth for 3D networks only")
    z_scale = int(model_cfg.params.get("z_scale", 1))
    if z_scale != 1:
        raise ValueError(f"model.params.z_scale {z_scale}: srbio's patches hold LR and HR on the "
                         f"same z grid (registration resamples laterally only); train z_scale 1")
    try:
        check_scale(model_cfg.name, patches.scale)
    except ValueError as exc:
        raise ValueError(f"{patches_path}: patches of scale {patches.scale} cannot train "
                         f"model.name {model_cfg.name!r}: {exc}") from None
    return patches, norm


def _datasets(patches_path: str | os.PathLike, norm: Normalisation, cfg: TrainConfig) -> tuple:
    """The training (augmented) and validation datasets of a patch store."""
    from srbio.io.patches import open_patches
    from srbio.train import PatchDataset

    arrays = open_patches(patches_path)  # read a patch at a time, never whole
    ranges = {"lr_range": norm.lr.pair, "hr_range": norm.hr.pair}
    train = PatchDataset(arrays["train/lr"], arrays["train/hr"], augment=True,
                         dihedral=cfg.dihedral, gain=cfg.gain_augment, seed=cfg.seed, **ranges)
    return train, PatchDataset(arrays["val/lr"], arrays["val/hr"], augment=False, **ranges)


def bicubic_psnr(val) -> tuple[float, float]:
    """PSNR (data range 1) of bicubic upsampling over the validation patches.

    The mean over patches, and after one linear fit over them all (training's
    ``val_psnr_fit``).
    """
    import torch

    from srbio.core.metrics import psnr, upsample
    from srbio.train.module import fit_sums, fitted_psnr

    values, sums = [], torch.zeros(6, dtype=torch.float64)
    for k in range(len(val)):
        x, y = (t.numpy()[0] for t in val[k])
        up = upsample(x, y.shape[-1] // x.shape[-1], order=3)
        values.append(psnr(up, y, data_range=1.0))
        sums += fit_sums(torch.from_numpy(up), torch.from_numpy(y))
    return float(np.mean(values)), float(fitted_psnr(sums))


def _write(out: TrainFiles, net, header: ModelHeader, record: Training, cfg: TrainConfig
           ) -> None:
    from srbio.io.modelfile import save_model_file
    from srbio.stages import plots

    with atomic_files(out.root, last=TrainFiles.record.name) as tmp:
        staged = TrainFiles(tmp)
        save_model_file(staged.model, header, net.state_dict())
        plots.training_curve(staged.curve, record.epochs, bicubic_psnr=record.bicubic_val_psnr,
                             bicubic_psnr_fit=record.bicubic_val_psnr_fit,
                             loss=" + ".join(f"{w:g}·{k}" if w != 1 else k
                                             for k, w in cfg.loss.items()))
        record.write(staged.record)


def _init_from(net, path: str, scale: int) -> None:
    """Copy the weights of model file ``path`` whose name and shape match; log what was done."""
    from srbio.io.modelfile import read_model_file
    from srbio.models.transfer import copy_matching

    header, state = read_model_file(path)
    if header.network.scale != scale:
        raise ValueError(f"{path}: train.init_from is a scale {header.network.scale} model; "
                         f"the patches are scale {scale}")
    channels = net.config.get("in_channels", 1)
    if header.network.in_channels != channels:  # slicing them would drop or mix images
        raise ValueError(f"{path}: train.init_from reads {header.network.in_channels} image "
                         f"channels; the network to train reads {channels}")
    done = copy_matching(net, state)
    if not done.copied:
        raise ValueError(f"{path}: train.init_from shares no weight (by name, whole or its "
                         f"leading channels) with {net.config['name']} {net.config}; nothing "
                         f"to fine-tune from")
    log.info("train.init_from %s (%s): %s", path, header.network.name, done.summary())
    for name in done.new:
        log.info("  left new: %s", name)


def _fit_options(cfg: TrainConfig) -> dict:
    """Keyword arguments of :func:`srbio.train.fit` from the train section."""
    return {"epochs": cfg.epochs, "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate, "precision": cfg.precision,
            "accelerator": cfg.accelerator, "num_workers": cfg.num_workers, "seed": cfg.seed,
            "grad_clip": cfg.grad_clip, "patience": cfg.patience, "loss": cfg.loss,
            "schedule": cfg.schedule, "milestones": cfg.milestones,
            "warmup_epochs": cfg.warmup_epochs, "ema": cfg.ema,
            "perceptual": cfg.perceptual.model_dump() if cfg.perceptual else None,
            "adversarial": cfg.adversarial.model_dump() if cfg.adversarial else None,
            "devices": cfg.devices, "strategy": cfg.strategy, "compile": cfg.compile,
            "max_minutes": cfg.max_minutes, "max_steps": cfg.max_steps,
            "checkpoint_every_steps": cfg.checkpoint_every_steps}


def _lineage(patches_path: str | os.PathLike, norm_json: str | os.PathLike,
             model_cfg: ModelConfig, train_cfg: TrainConfig) -> tuple[dict, list[InputFile]]:
    """The run's provenance (with its config sections) and its inputs' checksums."""
    prov = provenance(config={"model": model_cfg.model_dump(), "train": train_cfg.model_dump()},
                      inputs={p: _digest(Path(p))
                              for p in train_inputs(patches_path, norm_json, train_cfg)})
    roles = [("patches", patches_path), ("patches record", patches_record_path(patches_path)),
             ("normalisation", norm_json), *train_cfg.input_files().items()]
    return prov, input_checksums(roles)


def train_inputs(patches_path: str | os.PathLike, norm_json: str | os.PathLike,
                 cfg: TrainConfig) -> list[str]:
    """Every file training reads: patches, their record, normalisation, init and VGG files."""
    return [str(patches_path), str(patches_record_path(patches_path)), str(norm_json),
            *cfg.input_files().values()]


def _check_resume(last: Path, net, spec: NetworkSpec) -> None:
    """A checkpoint resumed must hold the weights of the network the configuration builds."""
    import torch

    if not last.is_file():
        raise FileNotFoundError(f"{last}: no checkpoint to resume from")
    try:
        saved = torch.load(last, map_location="cpu", weights_only=True, mmap=True)["state_dict"]
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise ValueError(f"{last}: cannot be read as a checkpoint to resume from ({exc})") from None
    wanted = {f"net.{k}": tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in saved.items() if k.startswith("net.")}
    if wanted != found:
        diff = sorted(set(wanted.items()) ^ set(found.items()))[:3]
        raise ValueError(f"{last}: holds the weights of another network than the configured "
                         f"{spec.name} ({spec.params}, scale {spec.scale}; first differences, "
                         f"name and shape: {diff}); resume with the "
                         f"configuration the run was started with, or start afresh (--overwrite "
                         f"without --resume)")


# settings that do not change what training computes: a run may resume across them
_NEUTRAL = {"num_workers", "checkpoint_every_steps"}


def fingerprint(patches_path: str | os.PathLike, norm_json: str | os.PathLike,
                model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    """What a training run computes from: its settings and its input files, as one digest.

    Stored in every checkpoint; a run may continue from a checkpoint only with the same one.
    """
    settings = {"model": model_cfg.model_dump(mode="json"),
                "train": train_cfg.model_dump(mode="json", exclude=_NEUTRAL)}
    inputs = {Path(p).name: _digest(Path(p))
              for p in train_inputs(patches_path, norm_json, train_cfg)}
    text = json.dumps({"settings": settings, "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _saved_fingerprint(last: Path) -> str | None:
    """The fingerprint a checkpoint was written with (None: unreadable, or older srbio)."""
    import torch

    from srbio.train.callbacks import FINGERPRINT_KEY

    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - torch raises many types for corrupt files
        return None
    return ckpt.get(FINGERPRINT_KEY)


def decide_resume(last: Path, wanted: str) -> bool:
    """``--auto-resume``: continue when ``last`` was written for this very run, else start afresh.

    Says which, and why a checkpoint that exists is not continued.
    """
    if not last.is_file():
        log.info("no checkpoint in %s: training starts", last.parent)
        return False
    found = _saved_fingerprint(last)
    if found == wanted:
        log.info("resuming from %s (same settings and data)", last)
        return True
    why = ("it cannot be read or was written by an older srbio" if found is None else
           "the settings or the data changed since it was written")
    log.warning("not resuming from %s: %s; training starts afresh (its checkpoints and logs "
                "are replaced)", last, why)
    return False


def _check_files(cfg: TrainConfig) -> None:
    """Missing init_from or VGG weights fail before any training."""
    for key, path in cfg.input_files().items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: {key} not found")


@releases_claims
def run_train(patches_path: str | os.PathLike, norm_json: str | os.PathLike,
              out_dir: str | os.PathLike, model_cfg: ModelConfig, train_cfg: TrainConfig, *,
              resume: bool = False, progress: bool = True, overwrite: bool = False,
              auto_resume: bool = False) -> TrainFiles | None:
    """Train a network; write ``model.pt``, ``training_curve.png`` and ``training.json``.

    The model file's header (:class:`~srbio.io.records.ModelHeader`) holds the network spec,
    scale, normalisation, the pairs' pixel sizes, the patch size and provenance. Lightning
    checkpoints (resumable with ``resume``) go to ``out_dir/checkpoints``. ``out_dir`` must be
    new, empty, or an earlier train output (replaced with ``overwrite``, continued with
    ``resume``). With ``auto_resume`` (what the workflow does, so that a retried or requeued
    job continues), an interrupted run of the same settings and data is continued and anything
    else in ``out_dir/checkpoints`` is started afresh, saying so. In a multi-process (DDP) run
    only rank 0 writes; the others return ``None``.
    """
    rank0 = process_rank() == 0
    if rank0:
        claim(out_dir, "train", overwrite=overwrite or resume or auto_resume,
              inputs=train_inputs(patches_path, norm_json, train_cfg))
    patches, norm = read_inputs(patches_path, norm_json, model_cfg)
    _check_files(train_cfg)
    check_layout(train_cfg.devices, train_cfg.strategy, train_cfg.batch_size)
    run_id = fingerprint(patches_path, norm_json, model_cfg, train_cfg)
    last = Path(out_dir) / "checkpoints" / "last.ckpt"
    if auto_resume:
        resume = decide_resume(last, run_id)
    elif resume and last.is_file() and _saved_fingerprint(last) not in (None, run_id):
        log.warning("%s was written with other settings or data; continuing it as asked "
                    "(--auto-resume would start afresh)", last)
    from srbio.models import build_network, count_parameters
    from srbio.train import fit

    train, val = _datasets(patches_path, norm, train_cfg)
    check_warmup(train_cfg.warmup_epochs, train_cfg.max_steps, len(train), train_cfg.batch_size)
    import torch

    torch.manual_seed(train_cfg.seed)
    net = build_network(model_cfg.name, scale=patches.scale, preset=model_cfg.preset,
                        params=model_cfg.params)
    if train_cfg.init_from and not resume:
        _init_from(net, train_cfg.init_from, patches.scale)
    spec = NetworkSpec.from_config(net.config)
    if resume:
        _check_resume(last, net, spec)
    log.info("training %s (%d parameters) on %d patches, validating on %d", spec,
             count_parameters(net), len(train), len(val))
    out = TrainFiles(mark_folder(out_dir, "train") if rank0 else Path(out_dir))
    if rank0:  # an earlier run's model never stays beside this run's checkpoints
        for done in (out.model, out.record, out.curve):
            done.unlink(missing_ok=True)
    start = time.perf_counter()
    net, logs = fit(net, train, val, checkpoints=out.checkpoints, logs=out.logs, resume=resume,
                    progress=progress, fingerprint=run_id, **_fit_options(train_cfg))
    if net is None:
        return None
    prov, inputs = _lineage(patches_path, norm_json, model_cfg, train_cfg)
    record = _record(train, val, net, spec, model_cfg, train_cfg, resume,
                     time.perf_counter() - start, logs, prov, inputs)
    _write(out, net, _header(patches, norm, spec, prov, inputs), record, train_cfg)
    return out


def _header(patches: Patches, norm: Normalisation, spec: NetworkSpec, prov: dict,
            inputs: list[InputFile]) -> ModelHeader:
    """The model file's header."""
    return ModelHeader(network=spec, normalisation=norm, patch_size=patches.size,
                       spacing=PixelSizes(lr=patches.lr_spacing, hr=patches.hr_spacing)
                       if patches.lr_spacing and patches.hr_spacing else None, provenance=prov,
                       inputs=inputs)


def _steps(table: list[dict[str, float]]) -> int | None:
    """Training batches taken: Lightning logs an epoch's end at the step before the next."""
    logged = [r["step"] for r in table if "step" in r]
    return int(max(logged)) + 1 if logged else None


def _record(train, val, net, spec: NetworkSpec, model_cfg: ModelConfig, train_cfg: TrainConfig,
            resume: bool, seconds: float, logs: Path, prov: dict,
            inputs: list[InputFile] | None = None) -> Training:
    """``training.json``: the run, epoch by epoch, and its provenance."""
    import torch

    from srbio.models import count_parameters

    table = epochs_table(logs)
    psnrs = [r["val_psnr"] for r in table if "val_psnr" in r]
    fits = [r["val_psnr_fit"] for r in table if "val_psnr_fit" in r]
    bicubic = bicubic_psnr(val)
    waits = [r["data_wait_share"] for r in table if "data_wait_share" in r]
    return Training(network=spec, preset=model_cfg.preset, parameters=count_parameters(net),
                    n_train=len(train), n_val=len(val), seconds=round(seconds, 1),
                    epochs=table, best_val_psnr=max(psnrs) if psnrs else None,
                    best_val_psnr_fit=max(fits) if fits else None,
                    steps=_steps(table),
                    bicubic_val_psnr=bicubic[0], bicubic_val_psnr_fit=bicubic[1],
                    stopped_early=len(table) < train_cfg.epochs, resumed=resume,
                    data_wait_share=round(float(np.mean(waits)), 4) if waits else None,
                    threads=torch.get_num_threads(),
                    processes=processes(train_cfg.devices, train_cfg.strategy),
                    provenance=prov, inputs=inputs)
