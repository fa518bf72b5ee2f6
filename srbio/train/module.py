"""Lightning module (L1 loss, Adam, validation PSNR) and the training entry point."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from srbio.train.data import EpochSampler, PatchDataset
from srbio.train.losses import PixelLoss

log = logging.getLogger(__name__)


class SRModule(L.LightningModule):
    """Super-resolution training: L1 loss, Adam with cosine decay, PSNR on validation.

    Parameters
    ----------
    net : torch.nn.Module
        The network.
    learning_rate : float
        Initial Adam learning rate.
    max_epochs : int
        Length of the cosine schedule.
    """

    def __init__(self, net: torch.nn.Module, *, learning_rate: float = 2e-4,
                 max_epochs: int = 10, loss: dict[str, float] | None = None,
                 schedule: str = "cosine", milestones: list[int] | None = None,
                 warmup_epochs: int = 0) -> None:
        super().__init__()
        self.net = net
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.loss = PixelLoss(loss or {"l1": 1.0})
        self.schedule, self.milestones = schedule, list(milestones or [])
        self.warmup_epochs = warmup_epochs
        self.save_hyperparameters({"network": dict(getattr(net, "config", {})),
                                   "learning_rate": learning_rate, "max_epochs": max_epochs,
                                   "loss": dict(self.loss.weights), "schedule": schedule,
                                   "milestones": self.milestones, "warmup_epochs": warmup_epochs})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the network."""
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """The configured loss of one batch."""
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        """The loss and PSNR (data range 1 of the normalised HR) of one batch."""
        x, y = batch
        pred = self(x).float()
        mse = ((pred - y) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
        self.log("val_loss", self.loss(pred, y), on_epoch=True)
        self.log("val_psnr", (-10 * torch.log10(mse)).mean(), prog_bar=True, on_epoch=True)

    def configure_optimizers(self):  # noqa: D102 (Lightning hook)
        sch = torch.optim.lr_scheduler
        opt = torch.optim.Adam(self.parameters(), lr=self.learning_rate, betas=(0.9, 0.999))
        rest = self.max_epochs - self.warmup_epochs
        if self.schedule == "multistep":
            marks = self.milestones or [self.max_epochs // 2, 3 * self.max_epochs // 4]
            main = sch.MultiStepLR(opt, [m - self.warmup_epochs for m in marks], gamma=0.5)
        else:
            main = sch.CosineAnnealingLR(opt, T_max=max(1, rest), eta_min=self.learning_rate * 0.05)
        if self.warmup_epochs:
            warm = sch.LinearLR(opt, start_factor=0.1, total_iters=self.warmup_epochs)
            main = sch.SequentialLR(opt, [warm, main], milestones=[self.warmup_epochs])
        return {"optimizer": opt, "lr_scheduler": main}


def fit(net: torch.nn.Module, train: PatchDataset, val: PatchDataset, *,
        checkpoints: str | os.PathLike, logs: str | os.PathLike, epochs: int, batch_size: int,
        learning_rate: float, precision: str = "32", accelerator: str = "auto",
        num_workers: int = 0, seed: int = 0, resume: bool = False, progress: bool = True,
        grad_clip: float | None = None, patience: int | None = None, **options: object
        ) -> tuple[torch.nn.Module, Path]:
    """Train ``net`` with Lightning; checkpoints go to ``checkpoints``, metrics CSVs to ``logs``.

    With ``resume``, training continues from ``checkpoints/last.ckpt`` of an interrupted run
    (loaded with ``weights_only=True``), at its global step with its optimiser, scheduler and
    data order; otherwise earlier checkpoints and logs there are removed first. Returns the
    network with the best validation PSNR and the log folder (``version_<n>/metrics.csv``, one
    per run; :func:`srbio.stages.train.epochs_table` merges them). ``options`` go to
    :class:`SRModule` (``loss``, ``schedule``, ``milestones``, ``warmup_epochs``);
    ``grad_clip`` clips the gradient norm; ``patience`` stops training when validation PSNR
    has not improved for that many epochs.
    """
    ckpt_dir, log_dir = Path(checkpoints), Path(logs)
    last = ckpt_dir / "last.ckpt"
    if resume and not last.exists():
        raise FileNotFoundError(f"{last}: no checkpoint to resume from")
    if not resume:  # a fresh run: never mix in checkpoints or logs of an earlier one
        for stale in (ckpt_dir, log_dir):
            if stale.exists():
                shutil.rmtree(stale)
    L.seed_everything(seed, workers=True, verbose=False)
    module = SRModule(net, learning_rate=learning_rate, max_epochs=epochs, **options)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_psnr",
                                 mode="max", enable_version_counter=False)
    # every epoch, whether or not it is the best: what --resume continues from
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename=last.stem, enable_version_counter=False)
    # one version folder per run (resumed runs add one): nothing of an earlier log is deleted
    logger = CSVLogger(log_dir.parent, name=log_dir.name)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=1, precision=precision,
        gradient_clip_val=grad_clip,
        callbacks=[checkpoint, latest,
                   *([EarlyStopping("val_psnr", mode="max", patience=patience)]
                     if patience else []),
                   *([TQDMProgressBar(refresh_rate=10)] if progress else [])],
        logger=logger,
        enable_progress_bar=progress, log_every_n_steps=1, deterministic=False,
        enable_model_summary=False,
    )
    loader_kw = {"batch_size": batch_size, "num_workers": num_workers,
                 "persistent_workers": num_workers > 0}
    order = EpochSampler(len(train), seed=seed)  # the same batches after a resume
    trainer.fit(module, DataLoader(train, sampler=order, drop_last=len(train) > batch_size,
                                   **loader_kw),
                DataLoader(val, shuffle=False, **loader_kw),
                ckpt_path=str(last) if resume else None, weights_only=True)
    best = checkpoint.best_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
        log.info("best checkpoint %s (val_psnr %.3f)", best, float(checkpoint.best_model_score))
    return module.net.cpu().eval(), log_dir
