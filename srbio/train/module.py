"""Lightning module (configured losses, Adam, validation PSNR) and the training entry point."""

from __future__ import annotations

import logging
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    EarlyStopping,
    EMAWeightAveraging,
    ModelCheckpoint,
    Timer,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from srbio.io.outputs import process_rank
from srbio.train.callbacks import (
    CheckpointOnSignal,
    DataWait,
    Fingerprint,
    ResumeMidEpoch,
    StopAtStep,
    StoppedBySignal,
    _SignalInTraining,
)
from srbio.train.data import EpochSampler, PatchDataset
from srbio.train.layout import per_process_batch, process_layout
from srbio.train.losses import PixelLoss

log = logging.getLogger(__name__)

# what the kept checkpoint and early stopping go by: the report's figure (after a linear fit)
SELECTED = "val_psnr_fit"


class SRModule(L.LightningModule):
    """Super-resolution training: pixel (+ perceptual) loss, Adam, PSNR on validation.

    Parameters
    ----------
    net : torch.nn.Module
        The network.
    learning_rate : float
        Initial Adam learning rate.
    max_epochs : int
        Epochs of the run (the multistep schedule's default milestones).
    loss : dict
        Weights of the pixel losses (:class:`~srbio.train.losses.PixelLoss`).
    schedule, milestones, warmup_epochs
        Learning-rate schedule: cosine or multistep halving, after a linear warm-up.
    max_steps : int, optional
        The run's last step, when it ends before its epochs do.
    budget_seconds : float, optional
        The run's wall-time budget: the cosine then decays over whichever of the budget and
        the steps of the run (epochs, or ``max_steps``) runs out first (:meth:`progress`).
    perceptual : torch.nn.Module, optional
        A perceptual loss (:class:`~srbio.train.perceptual.PerceptualLoss`) added to the
        pixel loss with weight ``perceptual_weight``.
    """

    def __init__(self, net: torch.nn.Module, *, learning_rate: float = 2e-4,
                 max_epochs: int = 10, loss: dict[str, float] | None = None,
                 schedule: str = "cosine", milestones: list[int] | None = None,
                 warmup_epochs: int = 0, perceptual: torch.nn.Module | None = None,
                 perceptual_weight: float = 0.0, max_steps: int | None = None,
                 budget_seconds: float | None = None) -> None:
        super().__init__()
        self.net = net
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.loss = PixelLoss(loss or {"l1": 1.0})
        self.perceptual, self.perceptual_weight = perceptual, perceptual_weight
        self.schedule, self.milestones = schedule, list(milestones or [])
        self.warmup_epochs = warmup_epochs
        self.max_steps, self.budget_seconds = max_steps, budget_seconds
        self._fit_sums = torch.zeros(6, dtype=torch.float64)  # validation sums of the fit
        self.save_hyperparameters({"network": dict(getattr(net, "config", {})),
                                   "learning_rate": learning_rate, "max_epochs": max_epochs,
                                   "loss": dict(self.loss.weights), "schedule": schedule,
                                   "milestones": self.milestones, "warmup_epochs": warmup_epochs,
                                   "perceptual_weight": perceptual_weight if perceptual else 0,
                                   "max_steps": max_steps, "budget_seconds": budget_seconds})

    def content_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The pixel loss, plus the weighted perceptual loss when one is configured."""
        loss = self.loss(pred, target)
        if self.perceptual is not None:
            loss = loss + self.perceptual_weight * self.perceptual(pred, target)
        return loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network."""
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """The configured loss of one batch."""
        x, y = batch
        loss = self.content_loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        """Start the sums of the epoch's linear fit."""
        self._fit_sums = torch.zeros(6, dtype=torch.float64, device=_float64_device(self.device))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        """The loss and PSNR (data range 1 of the normalised HR) of one batch."""
        x, y = batch
        pred = self(x).float()
        mse = ((pred - y) ** 2).flatten(1).mean(dim=1).clamp_min(1e-12)
        self.log("val_loss", self.content_loss(pred, y), on_epoch=True, sync_dist=True)
        self.log("val_psnr", (-10 * torch.log10(mse)).mean(), prog_bar=True, on_epoch=True,
                 sync_dist=True)
        self._fit_sums += fit_sums(pred, y)

    def on_validation_epoch_end(self) -> None:
        """Log ``val_psnr_fit``: PSNR after the least-squares fit of gain and offset to HR.

        One fit over every validation pixel, as the evaluation fits each method over a pair's
        test region: the figure the report compares, which checkpoints are chosen on.
        """
        sums = self._fit_sums
        if self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        self.log("val_psnr_fit", fitted_psnr(sums).float(), prog_bar=True)

    def progress(self) -> float:
        """Share of the run done, 0 to 1: steps over the run's steps, or time over the budget.

        Whichever is further decides, so a run stopped by its time budget ends its cosine at
        the budget's end, and one that reaches its last step first ends it there.
        """
        trainer = self.trainer
        if trainer.global_step == 0:
            return 0.0
        steps = trainer.estimated_stepping_batches
        done = trainer.global_step / max(1, min(steps, self.max_steps or steps))
        return min(1.0, max(done, self._time_share()))

    def _time_share(self) -> float:
        """Wall time spent over the budget (Lightning's timer, which a resume restores)."""
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)
        if not self.budget_seconds or timer is None:
            return 0.0
        return (timer.time_elapsed("train") or 0.0) / self.budget_seconds

    def warmed(self) -> float:
        """Share of the warm-up done (1 without a warm-up)."""
        if not self.warmup_epochs:
            return 1.0
        steps = self.warmup_epochs * self.trainer.num_training_batches
        return min(1.0, self.trainer.global_step / steps)

    def schedule_for(self, opt: torch.optim.Optimizer) -> dict:
        """The configured learning-rate schedule of ``opt``, as Lightning's scheduler config.

        Cosine follows :meth:`progress` step by step, down to 5 % of the rate at the run's end,
        multiplied during a warm-up by a linear ramp from a tenth; multistep halves the rate at epoch
        milestones (after a warm-up of ``warmup_epochs``).
        """
        sch = torch.optim.lr_scheduler
        if self.schedule == "cosine":
            return {"scheduler": sch.LambdaLR(opt, lambda _: lr_factor(self.progress(),
                                                                       self.warmed())),
                    "interval": "step"}
        marks = self.milestones or [self.max_epochs // 2, 3 * self.max_epochs // 4]
        main = sch.MultiStepLR(opt, [m - self.warmup_epochs for m in marks], gamma=0.5)
        if self.warmup_epochs:
            warm = sch.LinearLR(opt, start_factor=0.1, total_iters=self.warmup_epochs)
            main = sch.SequentialLR(opt, [warm, main], milestones=[self.warmup_epochs])
        return {"scheduler": main, "interval": "epoch"}

    def configure_optimizers(self):  # noqa: D102 (Lightning hook)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.learning_rate, betas=(0.9, 0.999))
        return {"optimizer": opt, "lr_scheduler": self.schedule_for(opt)}


FLOOR = 0.05  # the cosine's last learning rate, a share of the initial one


def lr_factor(progress: float, warmed: float = 1.0) -> float:
    """Learning-rate factor: a cosine from 1 to :data:`FLOOR`, times a linear warm-up.

    The cosine follows ``progress`` 0 → 1, the warm-up (0.1 → 1) ``warmed`` 0 → 1.
    """
    cosine = FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return cosine * (0.1 + 0.9 * min(max(warmed, 0.0), 1.0))


def fit_sums(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """n, Σp, Σt, Σp², Σpt, Σt² of predictions and targets, in float64.

    What :func:`fitted_psnr` needs, summable over batches and processes.
    """
    device = _float64_device(pred.device)
    p, t = (a.detach().flatten().to(device).double() for a in (pred, target))  # move, then cast
    return torch.stack([p.new_tensor(p.numel()), p.sum(), t.sum(), (p * p).sum(), (p * t).sum(),
                        (t * t).sum()])


def _float64_device(device: torch.device) -> torch.device:
    """``device``, or the CPU where it has no float64 (Apple's MPS)."""
    return torch.device("cpu") if device.type == "mps" else device


def fitted_psnr(sums: torch.Tensor) -> torch.Tensor:
    """PSNR (data range 1) after the least-squares fit ``a·p + b`` of predictions to targets.

    ``sums`` holds n, Σp, Σt, Σp², Σpt, Σt² (float64): the fit's residual mean square is
    var(t) − cov(p, t)² / var(p).
    """
    n, sp, st, spp, spt, stt = sums
    var_p, var_t = spp / n - (sp / n) ** 2, stt / n - (st / n) ** 2
    cov = spt / n - (sp / n) * (st / n)
    residual = var_t - cov ** 2 / var_p if var_p > 0 else var_t
    return -10 * torch.log10(residual.clamp_min(1e-12))


def _module(net: torch.nn.Module, epochs: int, learning_rate: float, grad_clip: float | None,
            perceptual: dict | None, adversarial: dict | None, options: dict) -> SRModule:
    """The Lightning module: plain, with a perceptual loss, and/or with a discriminator."""
    if perceptual:
        from srbio.train.perceptual import PerceptualLoss, load_vgg_features

        options["perceptual"] = PerceptualLoss(load_vgg_features(perceptual["weights"],
                                                                 perceptual["layer"]))
        options["perceptual_weight"] = perceptual["weight"]
    if not adversarial:
        return SRModule(net, learning_rate=learning_rate, max_epochs=epochs, **options)
    from srbio.models.discriminator import Discriminator
    from srbio.train.gan import GANModule

    channels = int(getattr(net, "config", {}).get("in_channels", 1))
    return GANModule(net, discriminator=Discriminator(in_channels=channels,
                                                      n_feats=adversarial["discriminator_feats"]),
                     start_epoch=adversarial["start_epoch"], weight=adversarial["weight"],
                     discriminator_lr=adversarial["learning_rate"], kind=adversarial["loss"],
                     grad_clip=grad_clip, learning_rate=learning_rate, max_epochs=epochs,
                     **options)


def _callbacks(ckpt_dir: Path, *, patience: int | None, ema: float | None, progress: bool,
               every_steps: int | None = None, max_steps: int | None = None,
               fingerprint: str | None = None) -> tuple[ModelCheckpoint, list[L.Callback]]:
    """The checkpoint of the best fitted validation PSNR, and every callback of the run."""
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=SELECTED, mode="max",
                           enable_version_counter=False)
    # every epoch, whether or not it is the best: what --resume continues from
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename="last", enable_version_counter=False)
    extra: list[L.Callback] = [DataWait()]
    if every_steps:  # and every N steps, into the same file: a resume continues mid-epoch
        extra.append(ModelCheckpoint(dirpath=ckpt_dir, filename="last", every_n_train_steps=
                                     every_steps, enable_version_counter=False))
    if patience:
        extra.append(EarlyStopping(SELECTED, mode="max", patience=patience))
    if ema:  # checkpoints, validation and the final weights use the average
        extra.append(EMAWeightAveraging(decay=ema))
    if progress:
        extra.append(TQDMProgressBar(refresh_rate=10))
    if max_steps:
        extra.append(StopAtStep(max_steps))
    if fingerprint:
        extra.append(Fingerprint(fingerprint))
    return best, [best, latest, *extra]


def _loggers(log_dir: Path) -> list:
    """CSV and TensorBoard loggers writing into one new ``version_<n>`` folder.

    Each run (resumed runs too) gets its own folder: nothing of an earlier log is deleted.
    """
    version = len(list(log_dir.glob("version_*")))
    return [CSVLogger(log_dir.parent, name=log_dir.name, version=version),
            TensorBoardLogger(log_dir.parent, name=log_dir.name, version=version,
                              default_hp_metric=False)]


def _prepare_folders(ckpt_dir: Path, log_dir: Path, resume: bool) -> Path:
    """The checkpoint to resume from (which must exist), or a clean start.

    A fresh run removes the checkpoints and logs of a past run, so they never mix.
    """
    last = ckpt_dir / "last.ckpt"
    if resume and not last.exists():
        raise FileNotFoundError(f"{last}: no checkpoint to resume from")
    if not resume and process_rank() == 0:
        for stale in (ckpt_dir, log_dir):
            if stale.exists():
                shutil.rmtree(stale)
    return last


def _cluster() -> list:
    """Under SLURM: its environment (ranks from srun), without Lightning's own requeue."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    # CheckpointOnSignal handles the signals; the workflow (a retry) or SLURM requeues
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def _fit_or_interrupt(trainer: L.Trainer, *args: Any, stop: CheckpointOnSignal,
                      **kwargs: Any) -> None:
    """``trainer.fit``; a signal that stopped it is raised as :class:`KeyboardInterrupt`.

    Lightning answers SIGTERM by ending the loop with ``SIGTERMException`` and Ctrl-C with
    ``sys.exit(1)``: both are ``SystemExit``, which a caller would take for a normal end (exit
    status 0 for SIGTERM) and nothing would say why no model exists. The checkpoints of
    finished epochs stay for ``--resume``.
    """
    try:
        with warnings.catch_warnings():  # ResumeMidEpoch makes the loader resume mid-epoch
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that "
                                    "ended before the epoch ended")
            trainer.fit(*args, **kwargs)
    except _SignalInTraining as exc:
        raise StoppedBySignal(exc.signum, f"training checkpointed at step {exc.step} "
                              f"({stop.path}); the same command with --auto-resume (or "
                              f"--resume) continues from there") from None
    except SystemExit as exc:
        raise KeyboardInterrupt(
            f"training was stopped ({type(exc).__name__}) in epoch {trainer.current_epoch} at "
            f"step {trainer.global_step}; the checkpoint of the last finished epoch is kept "
            f"for --resume") from None
    finally:
        stop.restore()


def fit(net: torch.nn.Module, train: PatchDataset, val: PatchDataset, *,
        checkpoints: str | os.PathLike, logs: str | os.PathLike, epochs: int, batch_size: int,
        learning_rate: float, precision: str = "32", accelerator: str = "auto",
        num_workers: int = 0, seed: int = 0, resume: bool = False, progress: bool = True,
        grad_clip: float | None = None, patience: int | None = None, ema: float | None = None,
        perceptual: dict | None = None, adversarial: dict | None = None,
        devices: int | str = 1, strategy: str = "auto", compile: bool = False,
        max_minutes: float | None = None, max_steps: int | None = None,
        checkpoint_every_steps: int | None = None,
        fingerprint: str | None = None, **options: object
        ) -> tuple[torch.nn.Module | None, Path]:
    """Train ``net`` with Lightning; checkpoints go to ``checkpoints``, logs to ``logs``.

    With ``resume``, training continues from ``checkpoints/last.ckpt`` of an interrupted run
    (loaded with ``weights_only=True``), at its global step with its optimiser(s), scheduler,
    weight average and data order; otherwise earlier checkpoints and logs there are removed
    first. Returns the network with the best fitted validation PSNR (the last one after an
    adversarial phase, which trades PSNR for texture; ``None`` on DDP ranks other than 0) and
    the log folder (``version_<n>/metrics.csv`` and TensorBoard events, one per run;
    :func:`srbio.stages.train.epochs_table` merges them). ``options`` go to
    :class:`SRModule` (``loss``, ``schedule``, ``milestones``, ``warmup_epochs``);
    ``grad_clip`` clips the gradient norm; ``patience`` stops training when validation PSNR
    has not improved for that many epochs; ``ema`` averages the weights with that decay;
    ``perceptual`` and ``adversarial`` are the config sections of those losses;
    ``max_minutes`` stops training after that wall time and ``max_steps`` after that many
    optimiser steps (the cosine schedule decays over the budget that runs out first, see
    :meth:`SRModule.progress`); ``checkpoint_every_steps`` also
    writes ``last.ckpt`` every that many steps (a resume then continues mid-epoch with the
    batches the uninterrupted run would have trained on); ``fingerprint`` is stored in every
    checkpoint.
    """
    ckpt_dir, log_dir = Path(checkpoints), Path(logs)
    last = _prepare_folders(ckpt_dir, log_dir, resume)
    L.seed_everything(seed, workers=True, verbose=False)
    if compile:
        net.compile()
    module = _module(net, epochs, learning_rate, grad_clip, perceptual, adversarial,
                     {**options, "max_steps": max_steps, "budget_seconds":
                      None if max_minutes is None else 60 * max_minutes})
    order = EpochSampler(len(train), seed=seed)  # the same batches after a resume
    best, callbacks = _callbacks(ckpt_dir, patience=patience, ema=ema, progress=progress,
                                 every_steps=checkpoint_every_steps, max_steps=max_steps,
                                 fingerprint=fingerprint)
    stop, skip = CheckpointOnSignal(last), ResumeMidEpoch(order, batch_size)
    callbacks += [skip, stop]
    trainer = _trainer(callbacks, log_dir, epochs=epochs, max_minutes=max_minutes,
                       accelerator=accelerator, devices=devices, strategy=strategy,
                       precision=precision, grad_clip=None if adversarial else grad_clip,
                       progress=progress)
    skip.batch_size = per_process_batch(batch_size, trainer.world_size)
    loaders = _loaders(train, val, order, skip.batch_size, num_workers,
                       drop_last=len(train) > batch_size)
    _fit_or_interrupt(trainer, module, *loaders,
                      stop=stop, ckpt_path=str(last) if resume else None, weights_only=True)
    if trainer.global_rank != 0:
        return None, log_dir
    if not adversarial:
        _load_best(module, best)
    return module.net.cpu().eval(), log_dir


def _trainer(callbacks: list[L.Callback], log_dir: Path, *, epochs: int,
             max_minutes: float | None, accelerator: str, devices: int | str, strategy: str,
             precision: str, grad_clip: float | None, progress: bool) -> L.Trainer:
    """Lightning's trainer: one process, or DDP over the tasks srun started."""
    devices, nodes, strategy = process_layout(devices, strategy)
    return L.Trainer(
        max_epochs=epochs, max_time=None if max_minutes is None else
        {"seconds": 60 * max_minutes}, accelerator=accelerator, devices=devices,
        num_nodes=nodes, strategy=strategy, precision=precision, gradient_clip_val=grad_clip,
        callbacks=callbacks, logger=_loggers(log_dir), enable_progress_bar=progress,
        log_every_n_steps=1, enable_model_summary=False,
        use_distributed_sampler=False,  # EpochSampler shards
        plugins=_cluster())


def _loaders(train: PatchDataset, val: PatchDataset, order: EpochSampler, batch_size: int,
             num_workers: int, *, drop_last: bool) -> tuple[DataLoader, DataLoader]:
    """The training loader (in ``order``) and the validation loader.

    Both take ``batch_size`` (this process's share of a step); ``drop_last`` leaves out a last,
    smaller training batch.
    """
    kw = {"batch_size": batch_size, "num_workers": num_workers,
          "persistent_workers": num_workers > 0}
    return (DataLoader(train, sampler=order, drop_last=drop_last, **kw),
            DataLoader(val, shuffle=False, **kw))


def _load_best(module: L.LightningModule, best: ModelCheckpoint) -> None:
    """Load the weights of the best validation PSNR (when a checkpoint holds them)."""
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu",
                           weights_only=True)["state_dict"]
        module.load_state_dict(state)
        log.info("best checkpoint %s (%s %.3f)", best.best_model_path, SELECTED,
                 float(best.best_model_score))
