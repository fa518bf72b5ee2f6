"""3D networks end to end on a real volume: 3D patches, RCAN3D training, slab-wise prediction
that equals whole-volume prediction, and clear errors for 2D/3D mismatches."""

import numpy as np
import pytest
import torch
from torch import nn

from srbio.config import (
    ModelConfig,
    NormaliseConfig,
    PatchesConfig,
    PredictConfig,
    RegisterConfig,
    SplitConfig,
    TrainConfig,
)
from srbio.inference import TiledPredictor
from srbio.io import open_lazy, write_tiff
from srbio.io.patches import open_patches
from srbio.io.records import Patches, Training
from srbio.stages.crop import run_crop
from srbio.stages.evaluate import run_evaluate
from srbio.stages.predict import run_predict
from srbio.stages.prepare import run_normalise, run_patches
from srbio.stages.register import run_register
from srbio.stages.simulate import run_simulate
from srbio.stages.train import run_train

SPLIT = SplitConfig(axis="y", val_fraction=0.2, test_fraction=0.2)
MODEL = ModelConfig(name="rcan3d", preset="tiny")


@pytest.fixture(scope="module")
def prepared3d(tmp_path_factory, sample):
    """A 12-plane crop of the real volume, simulated, registered, cropped, 3D patches."""
    from srbio.config import SimulateParams

    image, spacing = sample
    res = tmp_path_factory.mktemp("res3d")
    write_tiff(res / "hr.tif", image[14:26, :, :], spacing=spacing)
    sim = run_simulate(res / "hr.tif", res / "sim", SimulateParams(seed=2, deformation_um=0.0))
    run_register(res / "hr.tif", sim.lr, res / "register", RegisterConfig(transform="rigid"))
    run_crop(res / "register", res / "hr.tif", res / "crop")
    run_normalise([res / "crop"], res / "normalisation.json", NormaliseConfig(), SPLIT)
    run_patches([res / "crop"], res / "patches.zarr",
                PatchesConfig(size=16, n_train=96, n_val=16, depth=4), SPLIT)
    return res


def test_3d_patches_are_volumes_of_the_configured_depth(prepared3d):
    arrays = open_patches(prepared3d / "patches.zarr")
    assert arrays["train/lr"].shape == (96, 4, 16, 16)
    assert arrays["train/hr"].shape == (96, 4, 32, 32)
    assert Patches.read(prepared3d / "patches.json").depth == 4


@pytest.mark.slow
def test_rcan3d_trains_evaluates_and_predicts_a_volume(prepared3d, tmp_path):
    out = run_train(prepared3d / "patches.zarr", prepared3d / "normalisation.json",
                    tmp_path / "train", MODEL, TrainConfig(epochs=5, batch_size=8,
                                                           learning_rate=1e-3), progress=False)
    record = Training.read(out.record)
    assert record.network.name == "rcan3d" and record.best_val_psnr > 15
    cfg = PredictConfig(tile_shape=(48, 48), overlap=8, tile_depth=4, depth_margin=1)
    ev = run_evaluate(out.model, [prepared3d / "crop"], tmp_path / "evaluate", SPLIT, cfg)
    # learnt something in 60 steps (measured: 31.8 vs 30.1 dB; 24 steps of a cosine that
    # decays over them were not enough)
    assert ev.mean["network"].psnr > ev.mean["nearest"].psnr
    lr, _ = open_lazy(prepared3d / "crop" / "lr.tif")
    rec = run_predict(out.model, prepared3d / "crop" / "lr.tif", tmp_path / "p.ome.zarr", cfg,
                      progress=False)
    assert rec.output_shape == [lr.shape[0], lr.shape[1] * 2, lr.shape[2] * 2]
    pred, _ = open_lazy(tmp_path / "p.ome.zarr")
    assert np.asarray(pred).max() > 0


def test_slabs_with_context_equal_the_whole_volume():
    """A network seeing one plane either side (one 3×3×3 conv): slabs with a margin of 1 give
    exactly the whole-volume result."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 1, 3, padding=1), nn.Upsample(scale_factor=(1, 2, 2)))
    volume = np.random.default_rng(0).random((11, 20, 24)).astype(np.float32)
    kw = {"scale": 2, "lr_range": (0.0, 1.0), "hr_range": (0.0, 1.0), "tile_shape": (20, 24),
          "overlap": 0, "halo": 1}
    slabs = TiledPredictor(net, depth=3, depth_margin=1, **kw).predict_image(volume)
    with torch.no_grad():
        whole = net(torch.from_numpy(volume)[None, None])[0, 0].numpy()
    assert slabs.shape == whole.shape == (11, 40, 48)
    np.testing.assert_allclose(slabs, whole, atol=1e-5)
    no_context = TiledPredictor(net, depth=3, depth_margin=0, **kw).predict_image(volume)
    assert np.abs(no_context - whole).max() > 1e-3  # the margin is what makes them equal
    plan = TiledPredictor(net, depth=4, depth_margin=2, **kw).plan(
        (11, 20, 24), (slice(0, 11), slice(0, 40), slice(0, 48))).axes[0]
    assert [(t.keep, t.read) for t in plan.tiles] == [((0, 4), (0, 8)), ((3, 7), (1, 9)),
                                                      ((7, 11), (3, 11))]


def test_2d_and_3d_mismatches_are_named(prepared, prepared3d, tmp_path):
    with pytest.raises(ValueError, match="2D patches cannot train the 3D network 'rcan3d'"):
        run_train(prepared / "patches.zarr", prepared / "normalisation.json", tmp_path / "a",
                  MODEL, TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match=r"3D patches \(4 planes\) cannot train the 2D network "
                                         "'rcan'"):
        run_train(prepared3d / "patches.zarr", prepared3d / "normalisation.json",
                  tmp_path / "b", ModelConfig(preset="tiny"), TrainConfig(epochs=1),
                  progress=False)
    with pytest.raises(ValueError, match="z_scale 2: srbio's patches hold LR and HR on the "
                                         "same z grid"):
        run_train(prepared3d / "patches.zarr", prepared3d / "normalisation.json",
                  tmp_path / "c", ModelConfig(name="rcan3d", preset="tiny",
                                              params={"z_scale": 2}),
                  TrainConfig(epochs=1), progress=False)
    net3d = nn.Conv3d(1, 1, 1)
    with pytest.raises(ValueError, match=r"a 3D network predicts volumes \(zyx\); got 2 axes"):
        TiledPredictor(net3d, scale=1, lr_range=(0, 1), hr_range=(0, 1), depth=4
                       ).predict_image(np.zeros((20, 24), np.float32))
