"""The budget-driven learning-rate schedule and the fitted validation PSNR, with known answers."""

import math

import numpy as np
import pytest
import torch

from srbio.core.metrics import linear_fit, psnr
from srbio.train.module import FLOOR, fit_sums, fitted_psnr, lr_factor


@pytest.mark.parametrize(("progress", "expected"), [
    (0.0, 1.0), (0.5, FLOOR + (1 - FLOOR) / 2), (1.0, FLOOR), (1.7, FLOOR), (-0.1, 1.0)])
def test_the_cosine_runs_from_the_rate_to_its_floor_over_the_run(progress, expected):
    assert lr_factor(progress) == pytest.approx(expected)


def test_the_warm_up_ramps_linearly_from_a_tenth():
    assert lr_factor(0.0, 0.0) == pytest.approx(0.1)
    assert lr_factor(0.0, 0.5) == pytest.approx(0.55)
    assert lr_factor(0.25, 1.0) == pytest.approx(FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(
        math.pi / 4)))


def test_fitted_psnr_equals_a_least_squares_fit_of_the_pooled_pixels():
    rng = np.random.default_rng(0)
    target = rng.random((3, 1, 16, 16)).astype(np.float32)
    pred = (0.6 * target + 0.2 + 0.01 * rng.standard_normal(target.shape)).astype(np.float32)
    sums = sum(fit_sums(torch.from_numpy(p), torch.from_numpy(t))  # batch by batch
               for p, t in zip(pred, target, strict=True))
    a, b = linear_fit(pred, target)
    assert float(fitted_psnr(sums)) == pytest.approx(psnr(a * pred + b, target, data_range=1.0),
                                                     abs=1e-4)
    # the raw PSNR is far lower: the gain and offset are what the fit forgives
    assert psnr(pred, target, data_range=1.0) < float(fitted_psnr(sums)) - 5


def test_a_prediction_exact_up_to_gain_and_offset_scores_the_cap():
    t = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    assert float(fitted_psnr(fit_sums(3 * t - 1, t))) == pytest.approx(120, abs=1e-3)
    flat = fitted_psnr(fit_sums(torch.zeros_like(t), t))  # a constant: the fit is the mean
    assert float(flat) == pytest.approx(-10 * math.log10(float(t.var(unbiased=False))))
