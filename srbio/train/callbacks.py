"""Lightning callbacks of srbio's training."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import lightning as L
import torch

FINGERPRINT_KEY = "srbio_fingerprint"


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


class ResumeMidEpoch(L.Callback):
    """After a resume from a mid-epoch checkpoint, skip the batches that epoch already trained.

    Lightning restores the step, optimiser and scheduler, but restarts the loader at the
    epoch's first batch. The sampler's order is a function of (seed, epoch) and one step is
    one batch, so skipping the items of the steps the epoch already took gives the
    uninterrupted run's remaining batches exactly. (An adversarial run steps two optimisers
    per batch by hand; it restarts the interrupted epoch, as Lightning does.)
    """

    def __init__(self, sampler, batch_size: int) -> None:
        self.sampler, self.batch_size = sampler, int(batch_size)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Before the first batch is drawn: skip what the resumed epoch already trained on."""
        loop, per_epoch = trainer.fit_loop.epoch_loop, trainer.num_training_batches
        exact = module.automatic_optimization and per_epoch != float("inf")
        # one optimiser step per batch; a GAN (two optimisers, manual steps) restarts the epoch
        done = trainer.global_step - trainer.current_epoch * per_epoch \
            if loop.restarting and exact else 0
        self.sampler.skip = max(0, int(done)) * self.batch_size


class StopAtStep(L.Callback):
    """End training after ``steps`` optimiser steps, validating the last weights.

    (Lightning's own ``max_steps`` ends mid-epoch without a validation, so the weights at the
    end of the schedule would never be scored or kept.)
    """

    def __init__(self, steps: int) -> None:
        self.steps = int(steps)

    def _stop_when_done(self, trainer: L.Trainer, *_) -> None:
        """Ask the loop to stop (after a validation) once the last step is taken."""
        if trainer.global_step >= self.steps:
            trainer.should_stop = True

    # at the start too: a resumed run that has already taken its steps trains no further
    on_train_start = on_train_batch_end = _stop_when_done


class Fingerprint(L.Callback):
    """Stamp every checkpoint with the run's fingerprint (its settings and input files).

    ``srbio train --auto-resume`` continues only from a checkpoint of the same fingerprint.
    """

    def __init__(self, value: str) -> None:
        self.value = value

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule,
                           checkpoint: dict) -> None:
        """Add the fingerprint to the checkpoint being written."""
        checkpoint[FINGERPRINT_KEY] = self.value


class StoppedBySignal(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint (``signum``: which signal)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class _SignalInTraining(Exception):  # noqa: N818 - carried out of Lightning, then re-raised
    def __init__(self, signum: int, step: int) -> None:
        super().__init__(signum, step)
        self.signum, self.step = signum, step


class CheckpointOnSignal(L.Callback):
    """SIGTERM, SIGUSR1 or SIGHUP while training: checkpoint at the end of the step, then stop.

    A scheduler's pre-emption (SIGTERM, then SIGKILL after a grace time) or its warning before
    a time limit (``--signal=USR1@300``) so loses nothing: ``last.ckpt`` holds the step just
    finished, and ``srbio train --auto-resume`` continues there, mid-epoch, exactly. Lightning's
    own SLURM requeue handling is left off (``SLURMEnvironment(auto_requeue=False)``): it would
    write its checkpoint elsewhere and requeue behind the workflow's back.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _note(self, signum: int, frame) -> None:
        self.received = signum

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Listen for the signals (main thread only: Python sets handlers there)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            previous = signal.getsignal(sig)
            if previous is not signal.SIG_IGN:  # SIGHUP under nohup stays ignored
                self._previous[sig] = previous
                signal.signal(sig, self._note)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *_) -> None:
        """After a signal: save the step just finished, then leave the loop.

        In a DDP run SLURM signals each process on its own, maybe a step apart: the processes
        agree after every step whether any of them was signalled, so all save the same step
        and leave together (one saving while another waits in the next step's gradient
        exchange would wait for ever).
        """
        signum = self.received or 0
        if trainer.world_size > 1:
            signum = int(trainer.strategy.reduce(torch.tensor(float(signum), device=module.device),
                                                 reduce_op="max").item())
        if signum:
            trainer.save_checkpoint(self.path)
            raise _SignalInTraining(signum, trainer.global_step)

    def restore(self) -> None:
        """Give the signals back to the handlers they had."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Training ended normally: the signals go back."""
        self.restore()
