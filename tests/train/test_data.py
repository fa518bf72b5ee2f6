import numpy as np
import pytest
import torch

from srbio.core.normalise import normalise
from srbio.train import PatchDataset


def _pairs(n=4):
    rng = np.random.default_rng(0)
    lr = rng.integers(100, 1000, (n, 6, 6)).astype(np.uint16)
    hr = np.kron(lr, np.ones((1, 2, 2), np.uint16))  # HR = LR upsampled x2 (nearest)
    return lr, hr


def test_without_augmentation_items_are_the_normalised_patches():
    lr, hr = _pairs()
    ds = PatchDataset(lr, hr, lr_range=(100, 1000), hr_range=(50, 2000), augment=False)
    x, y = ds[2]
    assert x.shape == (1, 6, 6) and y.shape == (1, 12, 12) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0].numpy(), normalise(lr[2], 100, 1000))
    np.testing.assert_allclose(y[0].numpy(), normalise(hr[2], 50, 2000))


def test_augmentation_keeps_lr_and_hr_aligned_and_visits_all_8_orientations():
    lr, hr = _pairs(1)
    ds = PatchDataset(lr, hr, lr_range=(0, 1), hr_range=(0, 1), augment=True, gain=(0.5, 2.0))
    seen = set()
    for epoch in range(200):
        x, y = ds[(epoch, 0)]
        x, y = x[0].numpy(), y[0].numpy()
        # the same flip/rotation and the same gain were applied to both
        np.testing.assert_allclose(np.kron(x, np.ones((2, 2))), y, rtol=1e-6)
        g = x.sum() / lr[0].astype(np.float64).sum()
        assert 0.5 - 1e-6 <= g <= 2.0 + 1e-6
        seen.add(np.round(x / g).astype(np.int64).tobytes())
    assert len(seen) == 8  # the dihedral group of the square


def test_without_the_dihedral_draws_only_the_gain_changes_a_patch():
    lr, hr = _pairs(1)
    ds = PatchDataset(lr, hr, lr_range=(0, 1), hr_range=(0, 1), augment=True, dihedral=False,
                      gain=(0.5, 2.0))
    flipped = PatchDataset(lr, hr, lr_range=(0, 1), hr_range=(0, 1), augment=True,
                           gain=(0.5, 2.0))
    for epoch in range(20):
        x = ds[(epoch, 0)][0][0].numpy()
        g = x.sum() / lr[0].astype(np.float64).sum()
        np.testing.assert_allclose(x, g * lr[0], rtol=1e-5)  # upright, scaled
        assert flipped[(epoch, 0)][0].sum() == pytest.approx(x.sum())  # the same gain drawn


def test_mismatched_or_empty_patch_sets_are_errors():
    lr, hr = _pairs()
    with pytest.raises(ValueError, match="4 LR patches but 3 HR"):
        PatchDataset(lr, hr[:3], lr_range=(0, 1), hr_range=(0, 1), augment=False)
    with pytest.raises(ValueError, match="no patches"):
        PatchDataset(lr[:0], hr[:0], lr_range=(0, 1), hr_range=(0, 1), augment=False)


def test_the_order_and_the_augmentation_are_a_function_of_seed_epoch_and_index():
    from srbio.train.data import EpochSampler

    lr, hr = _pairs(6)
    sampler = EpochSampler(6, seed=3)
    sampler.set_epoch(4)
    first = list(sampler)
    assert sorted(i for _, i in first) == list(range(6)) and {e for e, _ in first} == {4}
    again = EpochSampler(6, seed=3)
    again.set_epoch(4)  # a resumed run at epoch 4 sees the same order...
    assert list(again) == first
    again.set_epoch(5)  # ...and another one at the next epoch
    assert list(again) != first
    ds = PatchDataset(lr, hr, lr_range=(0, 1), hr_range=(0, 1), augment=True, gain=(0.5, 2),
                      seed=3)
    a, b = ds[(4, 2)], ds[(4, 2)]
    torch.testing.assert_close(a, b)  # no hidden global random state
    assert not torch.equal(ds[(5, 2)][0], a[0]) or not torch.equal(ds[(6, 2)][0], a[0])
