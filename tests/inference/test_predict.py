"""Tiled inference: exact where the halo covers the network's reach, close for RCAN."""

import numpy as np
import pytest
import torch
from torch import nn

from srbio.inference import NetworkRunner, TiledPredictor, receptive_field
from srbio.inference.predict import dihedral, undo_dihedral
from srbio.models import build_network

RANGE = (100.0, 1100.0)


class LocalNet(nn.Module):
    """A purely local x2 network: two 3x3 convolutions, so it reaches 2 LR px each side."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 4, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


class LocalNet3D(nn.Module):
    """A local 3D network: 3x3x3 then 1x3x3 convolutions; reaches 1 plane and 2 px; x(1,2,2)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(),
                                  nn.Conv3d(4, 1, (1, 3, 3), padding=(0, 1, 1)),
                                  nn.Upsample(scale_factor=(1, 2, 2)))

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def lr_plane(sample):
    image, _ = sample
    return image[20, ::2, ::2][:151, :173].astype(np.float32)  # odd shape


def test_the_reach_of_local_networks_is_measured_exactly():
    assert receptive_field(LocalNet()) == (2, 0)
    # at an odd scale, some output pixels interpolate from the neighbouring input pixel
    assert receptive_field(nn.Upsample(scale_factor=3, mode="bilinear")) == (1, 0)
    assert receptive_field(LocalNet3D(), dims=3) == (2, 1)
    assert receptive_field(nn.Upsample(scale_factor=2)) == (0, 0)


TILES = [(9, 9), (16, 40), (24, 20), (37, 31), (64, 64), (151, 173)]


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("overlap", [0, 3])
def test_tiled_equals_whole_plane_for_a_local_network(lr_plane, tile, overlap):
    net = LocalNet().eval()
    whole = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE,
                           tile_shape=(4096, 4096), halo=0, overlap=0).predict_image(lr_plane)
    if 2 * 2 + overlap >= min(tile):
        pytest.skip("tile keeps nothing")
    tiled = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=tile,
                           halo=2, overlap=overlap, batch_size=3)
    out = tiled.predict_image(lr_plane)
    span = whole.max() - whole.min()
    assert np.abs(out - whole).max() <= 1e-5 * span
    if tile != (151, 173):
        assert tiled.tiles_computed > 1


def test_a_halo_short_of_the_reach_is_not_exact(lr_plane):
    """The test above can fail: halo 1 for a network reaching 2 px leaves seams."""
    net = LocalNet().eval()
    kw = dict(scale=2, lr_range=RANGE, hr_range=RANGE)
    whole = TiledPredictor(net, tile_shape=(4096, 4096), halo=0, overlap=0, **kw)
    short = TiledPredictor(net, tile_shape=(24, 24), halo=1, overlap=0, **kw)
    a, b = whole.predict_image(lr_plane), short.predict_image(lr_plane)
    assert np.abs(a - b).max() > 1e-3 * (a.max() - a.min())


@pytest.mark.parametrize(("depth", "tile"), [(1, (20, 24)), (3, (17, 33)), (5, (64, 64))])
def test_tiled_equals_whole_volume_for_a_local_3d_network(sample, depth, tile):
    image, _ = sample
    volume = image[10:21, ::3, ::3][:, :61, :77].astype(np.float32)  # 11 planes, odd sides
    net = LocalNet3D().eval()
    kw = dict(scale=2, lr_range=RANGE, hr_range=RANGE)
    whole = TiledPredictor(net, tile_shape=(4096, 4096), halo=0, overlap=0, depth=64,
                           depth_margin=0, **kw).predict_image(volume)
    tiled = TiledPredictor(net, tile_shape=tile, halo=2, overlap=2, depth=depth,
                           depth_margin=1, **kw)
    out = tiled.predict_image(volume)
    assert out.shape == (11, 122, 154)
    assert np.abs(out - whole).max() <= 1e-5 * (whole.max() - whole.min())


def test_a_2d_network_iterates_over_planes_and_regions_are_slices_of_the_whole(sample):
    image, _ = sample
    volume = image[5:8, ::2, ::2][:, :90, :101].astype(np.float32)
    pred = TiledPredictor(LocalNet().eval(), scale=2, lr_range=RANGE, hr_range=RANGE,
                          tile_shape=(32, 32), halo=2, overlap=4)
    whole = pred.predict_image(volume)
    np.testing.assert_allclose(whole[1], pred.predict_image(volume[1]), rtol=0, atol=1e-3)
    region = (slice(1, 3), slice(40, 120), slice(62, 202))
    np.testing.assert_allclose(pred.predict_chunk(volume, region).data, whole[region],
                               rtol=0, atol=1e-3)


def test_tiled_rcan_is_close_to_the_whole_plane(lr_plane):
    """RCAN's channel attention pools over each tile, so tiles cannot be exact; cropping a halo
    keeps the difference far below what a viewer could see (random weights, 48-px tiles)."""
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="small").eval()
    kw = dict(scale=2, lr_range=RANGE, hr_range=RANGE)
    whole = TiledPredictor(net, tile_shape=(4096, 4096), halo=0, overlap=0, **kw)
    tiled = TiledPredictor(net, tile_shape=(48, 48), halo=8, overlap=8, **kw)
    a, b = whole.predict_image(lr_plane), tiled.predict_image(lr_plane)
    p999 = np.percentile(np.abs(a), 99.9)
    assert np.abs(a - b).mean() <= 1e-3 * p999
    assert np.abs(a - b).max() <= 1e-2 * p999


def test_dihedral_transforms_are_undone():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    seen = set()
    for k in range(8):
        y = dihedral(x, k)
        seen.add(tuple(y.flatten().tolist()))
        assert torch.equal(undo_dihedral(y, k), x)
    assert len(seen) == 8


def test_tta_is_the_mean_of_the_transformed_predictions(lr_plane):
    net = LocalNet().eval()
    tile = lr_plane[None, :40, :48]
    plain = NetworkRunner(net, lr_range=RANGE, hr_range=RANGE, tta=1)
    tta = NetworkRunner(net, lr_range=RANGE, hr_range=RANGE, tta=8)
    expected = np.mean([_undo(plain, tile, k) for k in range(8)], axis=0)
    np.testing.assert_allclose(tta(tile), expected, rtol=0, atol=1e-3)
    assert np.abs(tta(tile) - plain(tile)).max() > 1  # a network that is not symmetric


def _undo(runner, tile, k):
    t = torch.from_numpy(np.ascontiguousarray(tile))
    y = runner(dihedral(t, k).numpy())
    return undo_dihedral(torch.from_numpy(y), k).numpy()


def test_tta_leaves_a_symmetric_network_unchanged(lr_plane):
    up = nn.Upsample(scale_factor=2)
    a = NetworkRunner(up, lr_range=RANGE, hr_range=RANGE, tta=8)(lr_plane[None])
    np.testing.assert_allclose(a[0], lr_plane.repeat(2, 0).repeat(2, 1), rtol=1e-6)


@pytest.mark.parametrize(("precision", "bound"), [("bf16", 0.01), ("fp16", 0.002)])
def test_reduced_precision_is_close_to_fp32(lr_plane, precision, bound):
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="tiny").eval()
    kw = dict(scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(64, 64), halo=8)
    a = TiledPredictor(net, **kw).predict_image(lr_plane)
    b = TiledPredictor(net, precision=precision, **kw).predict_image(lr_plane)
    err = np.abs(a - b).max() / (RANGE[1] - RANGE[0])
    assert 0 < err <= bound


def test_nan_input_is_refused(lr_plane):
    bad = lr_plane.copy()
    bad[3, 4] = np.nan
    pred = TiledPredictor(LocalNet().eval(), scale=2, lr_range=RANGE, hr_range=RANGE)
    with pytest.raises(ValueError, match="NaN"):
        pred.predict_image(bad)


def test_a_3d_network_refuses_a_plane():
    net = LocalNet3D().eval()
    with pytest.raises(ValueError, match="3D network predicts volumes"):
        TiledPredictor(net, scale=2, lr_range=(0, 1), hr_range=(0, 1), depth=4
                       ).predict_image(np.zeros((20, 24), np.float32))


def test_an_auto_batch_is_four_tiles_on_a_cpu(lr_plane):
    pred = TiledPredictor(LocalNet().eval(), scale=2, lr_range=RANGE, hr_range=RANGE,
                          tile_shape=(24, 24), halo=2, batch_size="auto")
    out = pred.predict_image(lr_plane)
    assert pred.runner.batch_size == 4 and out.shape == (302, 346)


def test_a_narrow_region_at_the_end_still_reads_a_whole_tile(lr_plane):
    """RLFN needs 15 px: the last 1-px-wide block of a plane must not give it less."""
    torch.manual_seed(0)
    net = build_network("rlfn", scale=2, preset="ntire").eval()
    pred = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(24, 24),
                          halo=2, overlap=0, min_input=15)
    region = (slice(0, 48), slice(344, 346))  # the last LR column of a 173-px-wide plane
    assert pred.predict_chunk(lr_plane, region).data.shape == (48, 2)


def test_predicting_leaves_the_model_trainable(lr_plane):
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="tiny")
    TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(64, 64),
                   halo=8).predict_image(lr_plane[:64, :64])
    assert not any(p.is_inference() for p in net.parameters())
    assert receptive_field(net)[0] > 0  # needs gradients through the same weights
