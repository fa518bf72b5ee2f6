import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from srbio.models import build_network
from srbio.train.losses import PixelLoss, charbonnier, ssim_map
from srbio.train.module import FLOOR, SRModule, lr_factor


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random((40, 50)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    return a, b


def test_ssim_map_equals_scikit_image_where_the_window_fits():
    a, b = _pair()
    _, ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, full=True)
    ours = ssim_map(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])[0, 0]
    np.testing.assert_allclose(ours.numpy(), ref[5:-5, 5:-5], atol=1e-5)


def test_losses_have_their_known_values():
    a, b = (torch.from_numpy(x)[None, None] for x in _pair())
    assert float(PixelLoss({"ssim": 1.0})(a, a)) == pytest.approx(0, abs=1e-6)
    assert float(charbonnier(a, a)) == pytest.approx(1e-3)  # eps where they agree
    big = a + 5
    assert float(charbonnier(big, a)) == pytest.approx(5.0, rel=1e-6)  # ≈ L1 far away
    loss = PixelLoss({"l1": 1.0, "mse": 2.0, "ssim": 0.5})
    terms = loss.terms(b, a)
    assert float(loss(b, a)) == pytest.approx(float(terms["l1"] + 2 * terms["mse"]
                                                    + 0.5 * terms["ssim"]))
    with pytest.raises(ValueError, match="'perceptual'"):
        PixelLoss({"perceptual": 1.0})


class _Clock:
    """What the schedule reads of Lightning's trainer: 1 step an epoch, 8 epochs."""

    global_step, num_training_batches, estimated_stepping_batches, callbacks = 0, 1, 8, []


def _rates(**options):
    module = SRModule(build_network("rcan", scale=2, preset="tiny"), learning_rate=1e-3,
                      max_epochs=8, **options)
    module._trainer = clock = _Clock()
    sched = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(9):
        rates.append(sched.optimizer.param_groups[0]["lr"])
        sched.optimizer.step()
        clock.global_step += 1
        sched.step()
    return rates


def test_warm_up_then_cosine_and_multistep_halving():
    rates = _rates(warmup_epochs=2)
    assert rates[0] == pytest.approx(1e-4) and rates[1] == pytest.approx(
        1e-3 * lr_factor(1 / 8, 0.5))
    assert rates[2] == pytest.approx(1e-3 * lr_factor(2 / 8))  # warm: the cosine alone
    assert all(later < earlier for earlier, later in zip(rates[2:], rates[3:], strict=False))
    assert rates[-1] == pytest.approx(FLOOR * 1e-3)  # the run's last step: the floor
    assert _rates(schedule="multistep", milestones=[3, 6])[:8] == pytest.approx(
        [1e-3] * 3 + [5e-4] * 3 + [2.5e-4] * 2)
