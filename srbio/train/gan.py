"""Adversarial training (SRGAN, ESRGAN's relativistic loss) after pixel-loss pre-training.

Until ``start_epoch`` the generator learns from the content loss alone (the discriminator is
idle); from then on each step updates the generator with content + ``weight`` × adversarial
loss, then the discriminator, each with its own Adam optimiser and learning rate. Only the
generator goes into the model file; the discriminator lives in the Lightning checkpoints, so
``--resume`` continues both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srbio.train.module import SRModule


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def generator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Adversarial loss of the generator, from the discriminator's logits of HR and SR.

    ``standard``: −log D(SR) (Ledig et al. 2017). ``relativistic``: the relativistic average
    GAN loss of ESRGAN (Wang et al. 2018), where each side is judged against the other's mean.
    """
    if kind == "standard":
        return _bce(fake, True)
    return (_bce(real - fake.mean(), False) + _bce(fake - real.mean(), True)) / 2


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Loss of the discriminator (see :func:`generator_loss`)."""
    if kind == "standard":
        return (_bce(real, True) + _bce(fake, False)) / 2
    return (_bce(real - fake.mean(), True) + _bce(fake - real.mean(), False)) / 2


class GANModule(SRModule):
    """:class:`SRModule` with a discriminator and an adversarial phase (manual optimisation).

    Parameters
    ----------
    net : torch.nn.Module
        The generator.
    discriminator : torch.nn.Module
        Maps (N, C, H, W) images to (N,) logits of "real HR".
    start_epoch : int
        Epochs of content-loss pre-training before the adversarial phase.
    weight : float
        Weight of the adversarial term in the generator's loss.
    discriminator_lr : float
        Adam learning rate of the discriminator.
    kind : str
        ``relativistic`` or ``standard``.
    grad_clip : float, optional
        Clip the generator's gradient norm (manual optimisation clips itself).
    **options
        As for :class:`SRModule`.
    """

    def __init__(self, net: torch.nn.Module, *, discriminator: torch.nn.Module,
                 start_epoch: int, weight: float = 5e-3, discriminator_lr: float = 1e-4,
                 kind: str = "relativistic", grad_clip: float | None = None,
                 **options) -> None:
        super().__init__(net, **options)
        self.automatic_optimization = False
        self.discriminator = discriminator
        self.start_epoch, self.weight, self.kind = start_epoch, weight, kind
        self.discriminator_lr, self.grad_clip = discriminator_lr, grad_clip
        self.hparams.update({"adversarial": {"start_epoch": start_epoch, "weight": weight,
                                             "discriminator_lr": discriminator_lr,
                                             "kind": kind}})

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        """One generator step and, in the adversarial phase, one discriminator step."""
        opt_g, opt_d = self.optimizers()
        x, y = batch
        sr = self(x)
        content = self.content_loss(sr, y)
        adversarial = self.current_epoch >= self.start_epoch
        loss = content
        if adversarial:
            self.discriminator.requires_grad_(False)
            loss = content + self.weight * generator_loss(self.discriminator(y),
                                                          self.discriminator(sr), self.kind)
            self.discriminator.requires_grad_(True)
        opt_g.zero_grad()
        self.manual_backward(loss)
        if self.grad_clip:
            self.clip_gradients(opt_g, gradient_clip_val=self.grad_clip,
                                gradient_clip_algorithm="norm")
        opt_g.step()
        if adversarial:
            d_loss = discriminator_loss(self.discriminator(y), self.discriminator(sr.detach()),
                                        self.kind)
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
            self.log("d_loss", d_loss, on_step=False, on_epoch=True)
        self.log("train_loss", content, prog_bar=True, on_step=False, on_epoch=True)
        self.log("g_loss", loss, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        """Step the generator's schedule (manual optimisation steps it itself), per epoch."""
        self.lr_schedulers().step()

    def progress(self) -> float:
        """Share of the run done after the epoch ending now (epochs, or time over the budget).

        Both optimisers' steps count in ``global_step`` here, so epochs measure the run.
        """
        if self.trainer.global_step == 0:
            return 0.0
        done = (self.current_epoch + 1) / max(1, self.max_epochs)
        return min(1.0, max(done, self._time_share()))

    def warmed(self) -> float:
        """Share of the warm-up epochs done after the epoch ending now."""
        if not self.warmup_epochs:
            return 1.0
        return 0.0 if self.trainer.global_step == 0 else \
            min(1.0, (self.current_epoch + 1) / self.warmup_epochs)

    def configure_optimizers(self):  # noqa: D102 (Lightning hook)
        opt_g = torch.optim.Adam(self.net.parameters(), lr=self.learning_rate,
                                 betas=(0.9, 0.999))
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.discriminator_lr,
                                 betas=(0.9, 0.999))
        return [opt_g, opt_d], [self.schedule_for(opt_g)]
