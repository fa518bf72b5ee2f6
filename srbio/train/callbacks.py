"""Lightning callbacks of srbio's training."""

from __future__ import annotations

import time

import lightning as L


class DataWait(L.Callback):
    """Log ``data_wait_share``: the fraction of each training epoch spent waiting for batches.

    The wait is the time from the end of one step (or the start of the epoch) to the start of
    the next: loading, augmenting and collating the batch that the loader workers had not
    prepared in advance. Well-fed training keeps it near 0.
    """

    def __init__(self) -> None:
        self.epoch_start = self.step_end = 0.0
        self.wait = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Start the clocks."""
        self.epoch_start = self.step_end = time.perf_counter()
        self.wait = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, *_) -> None:
        """Count the time since the previous step as waiting for data."""
        self.wait += time.perf_counter() - self.step_end

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *_) -> None:
        """Mark the end of a step."""
        self.step_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Log the share of the epoch spent waiting."""
        total = max(time.perf_counter() - self.epoch_start, 1e-9)
        module.log("data_wait_share", self.wait / total, on_epoch=True, sync_dist=True)
