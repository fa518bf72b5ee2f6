"""Tiled inference: exact where the network's receptive field allows, bounded at seams."""

import numpy as np
import pytest
import torch
from torch import nn

from srbio.inference import TiledPredictor, predict_to_zarr
from srbio.io import create_ome_zarr
from srbio.models import build_network

RANGE = (100.0, 1100.0)


class LocalNet(nn.Module):
    """A purely local x2 network (receptive field 2 LR px each side): no global pooling."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 4, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def lr_plane(sample):
    image, _ = sample
    return image[20, ::2, ::2][:150, :170].astype(np.float32)


def test_tiled_equals_whole_image_exactly_for_a_local_network(lr_plane):
    net = LocalNet().eval()
    whole = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(512, 512))
    tiled = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(48, 40),
                           overlap=12, batch_size=3)
    a, b = whole.predict_plane(lr_plane), tiled.predict_plane(lr_plane)
    assert tiled.tiles_computed > 9
    # every output pixel is a weighted mean of tiles; where all covering tiles see the full
    # receptive field (>= 2 LR px from their inner edges) the result is exact
    sy, sx, (th, tw) = tiled.grid(lr_plane.shape)
    safe = np.ones_like(a, bool)
    for starts, t, n, axis in ((sy, th, lr_plane.shape[0], 0), (sx, tw, lr_plane.shape[1], 1)):
        line = np.ones(n * 2, bool)
        for st in starts:
            if st > 0:
                line[st * 2:(st + 2) * 2] = False
            if st + t < n:
                line[(st + t - 2) * 2:(st + t) * 2] = False
        safe &= line[:, None] if axis == 0 else line[None, :]
    assert safe.mean() > 0.6
    np.testing.assert_allclose(b[safe], a[safe], rtol=1e-4, atol=1e-2)
    # near tile edges the blend gives those pixels almost no weight: tiny differences only
    assert np.abs(b - a).max() < 0.01 * (RANGE[1] - RANGE[0])


def test_tiled_rcan_stays_within_tolerance_at_seams(lr_plane):
    """RCAN's channel attention pools over each tile, so tiles never agree exactly.

    Stated tolerance: mean |tiled - whole| <= 1% and max <= 5% of the output range, with
    random weights (the worst case: trained weights are smoother)."""
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="tiny").eval()
    whole = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(512, 512))
    tiled = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(64, 64),
                           overlap=16)
    a, b = whole.predict_plane(lr_plane), tiled.predict_plane(lr_plane)
    rng = a.max() - a.min()
    diff = np.abs(a - b)
    assert diff.mean() <= 0.01 * rng, diff.mean() / rng
    assert diff.max() <= 0.05 * rng, diff.max() / rng


def test_chunked_zarr_output_equals_in_memory_tiling_and_reuses_tiles(tmp_path, lr_plane):
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="tiny").eval()
    pred = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=RANGE, tile_shape=(64, 64),
                          overlap=16)
    volume = np.stack([lr_plane, lr_plane[::-1]])
    expected = pred.predict_image(volume)
    tiles_per_plane = pred.tiles_computed // 2
    out = create_ome_zarr(tmp_path / "o.ome.zarr", shape=(2, 300, 340), dtype="float32",
                          chunks=(1, 96, 128), spacing=(1, 0.1, 0.1))
    pred.tiles_computed = 0
    stats = predict_to_zarr(pred, volume, out, progress=False)
    np.testing.assert_array_equal(out[:], expected)
    assert stats["tiles"] == 2 * tiles_per_plane  # chunks share tiles through the cache


def test_uint16_output_is_rounded_and_clipping_is_counted(tmp_path, lr_plane):
    net = LocalNet().eval()
    pred = TiledPredictor(net, scale=2, lr_range=RANGE, hr_range=(0.0, 1000000.0),
                          tile_shape=(64, 64), overlap=8)
    out = create_ome_zarr(tmp_path / "u.ome.zarr", shape=(300, 340), dtype="uint16",
                          chunks=(128, 128), spacing=(0.1, 0.1))
    stats = predict_to_zarr(pred, lr_plane, out, progress=False)
    ref = pred.predict_plane(lr_plane)
    np.testing.assert_array_equal(out[:], np.clip(np.rint(ref), 0, 65535).astype(np.uint16))
    assert stats["clipped_low"] == int((ref < 0).sum())
    assert stats["clipped_high"] == int((ref > 65535).sum()) > 0  # hr_range makes it saturate
