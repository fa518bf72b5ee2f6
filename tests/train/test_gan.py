"""Adversarial losses with known answers, and the sharded epoch order of DDP."""

import math

import pytest
import torch

from srbio.train import data
from srbio.train.gan import discriminator_loss, generator_loss


def test_standard_gan_losses_at_an_undecided_discriminator_are_log_2():
    zero = torch.zeros(4)
    assert float(generator_loss(zero, zero, "standard")) == pytest.approx(math.log(2))
    assert float(discriminator_loss(zero, zero, "standard")) == pytest.approx(math.log(2))


def test_relativistic_losses_judge_each_side_against_the_other_mean():
    real, fake = torch.full((3,), 2.0), torch.full((3,), -1.0)  # D prefers HR by 3
    softplus = torch.nn.functional.softplus
    # D: log(1+e^-3) for HR above SR, the same for SR below HR
    assert float(discriminator_loss(real, fake, "relativistic")) == pytest.approx(
        float(softplus(torch.tensor(-3.0))))
    # G wants the opposite: log(1+e^3) on each side
    assert float(generator_loss(real, fake, "relativistic")) == pytest.approx(
        float(softplus(torch.tensor(3.0))))


def test_ddp_processes_share_each_epoch_without_overlap(monkeypatch):
    seen = []
    for rank in (0, 1, 2):
        monkeypatch.setattr(data, "_world", lambda rank=rank: (rank, 3))
        sampler = data.EpochSampler(10, seed=4)
        sampler.set_epoch(2)
        items = list(sampler)
        assert len(items) == len(sampler) == 3 and {e for e, _ in items} == {2}
        seen += [i for _, i in items]
    assert len(set(seen)) == len(seen) == 9  # cut to a multiple of 3: no patch twice
    monkeypatch.setattr(data, "_world", lambda: (0, 1))
    one = data.EpochSampler(10, seed=4)
    one.set_epoch(2)
    order = [i for _, i in one]
    assert seen == [order[k] for r in range(3) for k in range(r, 9, 3)]  # interleaved shares
    for rank in (0, 1, 2):  # fewer patches than processes: they wrap round
        monkeypatch.setattr(data, "_world", lambda rank=rank: (rank, 3))
        assert len(list(data.EpochSampler(2, seed=4))) == 1
    monkeypatch.setattr(data, "_world", lambda: (0, 1))
    whole = [i for _, i in data.EpochSampler(10, seed=4).__iter__()]
    assert sorted(whole) == list(range(10))
