"""The widgets driven in a real napari viewer: layers, places, values, progress, cancel, errors."""

import time

import numpy as np
import pytest
import zarr
from skimage.registration import phase_cross_correlation

from srbio.config import PredictConfig
from srbio.io import read_image, write_tiff
from srbio.io.records import Crop, RegisterFiles, Registration
from srbio.napari import _widgets
from srbio.napari._widgets import CompareWidget, PredictWidget, QCWidget
from srbio.stages import inspect
from srbio.stages.predict import run_predict

pytestmark = pytest.mark.napari


def _done(qtbot, widget, timeout=60_000):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


@pytest.fixture
def errors(monkeypatch):
    """The messages the widgets show as error notifications."""
    seen = []
    monkeypatch.setattr(_widgets, "show_error", seen.append)
    return seen


def test_compare_shows_every_method_in_place_with_linked_contrast_and_scores(
        make_napari_viewer, qtbot, results):
    viewer = make_napari_viewer(show=True)  # a canvas of real size: the view holds a region
    viewer.window.resize(1200, 900)
    w = CompareWidget(viewer)
    w.results.value = results
    assert w.pair.choices == ("p",) and w.model.choices[0].endswith("tiny/model.pt")
    w.compare()
    _done(qtbot, w)
    crop = Crop.read(results / "crop" / "p" / "crop.json")
    names = ["p LR (nearest)", "p bicubic", "p network", "p HR"]
    assert [layer.name for layer in viewer.layers] == names
    hr, _ = read_image(results / "crop" / "p" / "hr.tif")
    for layer in viewer.layers:
        np.testing.assert_allclose(layer.scale, crop.hr_spacing)
        np.testing.assert_allclose(layer.translate, crop.hr_origin_um)
        assert layer.data.shape == hr.shape
    assert np.array_equal(viewer.layers["p HR"].data, hr)
    assert viewer.grid.enabled and tuple(viewer.grid.shape) == (2, 2)
    viewer.layers["p network"].contrast_limits = (10.0, 300.0)
    assert all(tuple(layer.contrast_limits) == (10.0, 300.0) for layer in viewer.layers)
    # the visible region's scores (computed in a worker once the view settles)
    _done(qtbot, w)
    qtbot.waitUntil(lambda: "PSNR" in w.scores.value, timeout=30_000)
    want = inspect.region_scores(w.comparison, w.region)
    assert f"{want['fixed']['network'].psnr:7.2f}" in w.scores.value
    viewer.camera.zoom *= 4  # zooming in rescores a smaller region
    first = w.region
    qtbot.waitUntil(lambda: w.region != first and w.worker is None, timeout=30_000)
    area = [(b - a) * (d - c) for (a, b), (c, d) in ((w.region[-2], w.region[-1]),
                                                      (first[-2], first[-1]))]
    assert area[0] < area[1] / 4
    w.add_profile_line()
    assert not viewer.grid.enabled and len(w._figure.axes[0].lines) == 4
    w.layout_mode.value = "side by side"
    assert viewer.grid.enabled and not viewer.layers["srbio profile"].visible


def test_registration_qc_shows_before_after_a_checkerboard_and_the_verdict(
        make_napari_viewer, qtbot, results):
    viewer = make_napari_viewer()
    w = QCWidget(viewer)
    w.results.value = results
    w.load()
    _done(qtbot, w)
    record = Registration.read(RegisterFiles(results / "register" / "p").record)
    hr_layer, after = viewer.layers["p QC HR"], viewer.layers["p QC LR after"]
    assert after.visible and not viewer.layers["p QC LR before"].visible
    for layer in (hr_layer, after):
        np.testing.assert_allclose(layer.scale, record.grid_spacing)
        np.testing.assert_allclose(layer.translate, record.grid_origin)
    assert "QC PASSED" in w.record.value and f"{record.ncc_after:.3f}" in w.record.value
    board = viewer.layers["p QC checkerboard"]
    first = board.data.copy()
    w.square.value = 5
    assert not np.array_equal(board.data, first)
    w.show_which.value = "before"
    assert viewer.layers["p QC LR before"].visible and not after.visible
    assert not np.array_equal(board.data, first)  # the board now shows HR against "before"


def test_registered_lr_and_hr_overlay_within_half_an_hr_pixel_at_landmarks(
        make_napari_viewer, results):
    # bright HR structures; the registered LR, read through the layers' own world → data
    # transforms (each at its own sampling), must show them at the same place
    viewer = make_napari_viewer()
    viewer.open(str(results), plugin="srbio")
    hr_full, lr_reg = viewer.layers["p HR"], viewer.layers["p LR (registered)"]
    assert not np.allclose(lr_reg.scale, hr_full.scale)  # two samplings, one frame
    hr_px = np.asarray(hr_full.scale)
    shifts = _landmark_shifts(hr_full, lr_reg)
    assert len(shifts) >= 5
    err = np.linalg.norm(shifts / hr_px, axis=1)
    assert err.max() < 0.5, err


def _landmark_shifts(hr_layer, lr_layer, n=6, half=24):
    """Shift (µm) of the registered LR against HR around the n brightest valid HR spots."""
    from scipy import ndimage as ndi

    hr = np.asarray(hr_layer.data, np.float32)
    smooth = ndi.gaussian_filter(hr, 3)
    peaks = np.argwhere(smooth == ndi.maximum_filter(smooth, 2 * half + 1))
    peaks = [p for p in peaks if half * 2 <= p[0] < hr.shape[0] - half * 2
             and half * 2 <= p[1] < hr.shape[1] - half * 2]
    peaks = sorted(peaks, key=lambda p: -smooth[tuple(p)])[:n]
    lr = np.asarray(lr_layer.data, np.float32)
    shifts = []
    for p in peaks:
        yy, xx = np.mgrid[p[0] - half:p[0] + half, p[1] - half:p[1] + half]
        pixels = np.stack([yy, xx], -1).reshape(-1, 2)
        world = [hr_layer.data_to_world(p) for p in pixels]  # each layer's own placement
        pix = np.asarray([lr_layer.world_to_data(w) for w in world], dtype=float)
        window_lr = ndi.map_coordinates(lr, pix.reshape(-1, 2).T, order=3).reshape(yy.shape)
        window_hr = ndi.gaussian_filter(hr[yy, xx], 1.5)
        shift, _, _ = phase_cross_correlation(window_hr, window_lr, upsample_factor=20,
                                              normalization=None)
        shifts.append(shift * np.asarray(hr_layer.scale))
    return np.asarray(shifts)


def _lr_file(tmp_path, sample, planes=2):
    image, spacing = sample
    lr = image[19:19 + planes, ::2, ::2][:, :100, :120]
    sp = (spacing[0], 2 * spacing[1], 2 * spacing[2])
    return write_tiff(tmp_path / "lr.tif", lr, spacing=sp), lr, sp


def test_predict_widget_equals_srbio_predict_and_lands_in_place(
        make_napari_viewer, qtbot, results, tmp_path, sample, monkeypatch):
    monkeypatch.setattr(_widgets, "PredictConfig",
                        lambda: PredictConfig(tile_shape=(48, 48), chunk=64, shard=None))
    model = results / "train" / "tiny" / "model.pt"
    src, lr, sp = _lr_file(tmp_path, sample)
    viewer = make_napari_viewer()
    w = PredictWidget(viewer)
    viewer.open(str(src), plugin="srbio")
    w.model.value = model
    w.image.value = "lr"
    w.predict()
    _done(qtbot, w)
    out = viewer.layers["lr srbio"]
    rec = run_predict(model, src, tmp_path / "p.ome.zarr",
                      PredictConfig(tile_shape=(48, 48), chunk=64, shard=None), progress=False)
    store = zarr.open_array(str(tmp_path / "p.ome.zarr" / "0"), mode="r")[:]
    assert out.data.shape == store.shape
    assert np.abs(out.data.astype(int) - store.astype(int)).max() <= 1
    np.testing.assert_allclose(out.scale, rec.output_spacing)
    np.testing.assert_allclose(out.translate, rec.output_translation)
    assert w.bar.value == w.bar.max and "predicted" in w.status.value
    # a drawn rectangle: only its pixels, placed where they lie
    corners = [[0.0, 2.0, 3.0], [0.0, 2.0, 9.0], [0.0, 6.0, 9.0], [0.0, 6.0, 3.0]]
    viewer.add_shapes([np.array(corners)], shape_type="rectangle")
    w.image.value, w.region.value = "lr", "drawn rectangle"
    w.predict()
    _done(qtbot, w)
    part = viewer.layers[-1]
    assert part.data.shape == (1, 40, 60)  # the rectangle's plane (0) and its 4 x 6 µm
    # LR pixels 10..29 (y) and 15..44 (x) have their centres inside; their HR pixels lie at
    # (f-1)/2 output pixels before each LR centre
    o = np.asarray(rec.output_spacing)
    np.testing.assert_allclose(part.translate[1:], [10 * sp[1] - o[1] / 2, 15 * sp[2] - o[2] / 2])
    assert np.abs(part.data.astype(int) - store[0:1, 20:60, 30:90].astype(int)).max() <= 1


def test_predict_can_be_cancelled_within_seconds_and_says_so(
        make_napari_viewer, qtbot, results, tmp_path, sample, monkeypatch):
    monkeypatch.setattr(_widgets, "PredictConfig",
                        lambda: PredictConfig(tile_shape=(32, 32), chunk=64, shard=None,
                                              batch_size=1))
    src, _, _ = _lr_file(tmp_path, sample, planes=20)
    viewer = make_napari_viewer()
    w = PredictWidget(viewer)
    viewer.open(str(src), plugin="srbio")
    w.model.value = results / "train" / "tiny" / "model.pt"
    w.image.value = "lr"
    w.predict()
    qtbot.waitUntil(lambda: w.bar.value > 0, timeout=60_000)
    start = time.perf_counter()
    w.cancel.clicked.emit()
    _done(qtbot, w, timeout=5_000)
    assert time.perf_counter() - start < 5
    assert w.status.value.endswith("cancelled") and "lr srbio" not in viewer.layers
    assert not w.cancel.enabled


def test_errors_are_notifications_naming_the_file_or_layer(
        make_napari_viewer, qtbot, tmp_path, errors, results):
    viewer = make_napari_viewer()
    w = PredictWidget(viewer)
    viewer.add_image(np.zeros((60, 70, 3), np.uint8), name="colour", rgb=True)
    viewer.add_image(np.zeros((60, 70), np.uint16), name="grey")
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_text("not a model")
    w.model.value = not_a_model
    w.image.value = "grey"
    w.predict()
    _done(qtbot, w)
    assert len(errors) == 1 and "notes.pt" in errors[0] and "Traceback" not in errors[0]
    w.model.value = results / "train" / "tiny" / "model.pt"
    w.image.value = "colour"
    w.predict()
    _done(qtbot, w)
    assert len(errors) == 2 and "'colour'" in errors[1] and "RGB" in errors[1]
    c = CompareWidget(viewer)
    c.results.value = tmp_path
    c.compare()
    assert "holds no registered pair" in errors[-1] and str(tmp_path) in errors[-1]


def test_the_writer_and_reader_round_trip_a_layer_through_napari(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = (np.random.default_rng(0).random((2, 300, 280)) * 1000).astype(np.uint16)
    viewer.add_image(data, name="x", scale=(0.5, 0.1, 0.1), translate=(1.0, -0.05, 3.25))
    out = tmp_path / "x.ome.zarr"
    viewer.layers.save(str(out), selected=False, plugin="srbio")
    [layer] = viewer.open(str(out), plugin="srbio")
    assert layer.multiscale and np.array_equal(np.asarray(layer.data[0]), data)
    assert tuple(layer.scale) == (0.5, 0.1, 0.1) and tuple(layer.translate) == (1.0, -0.05, 3.25)


def test_sample_data_is_the_demo_pair_at_its_pixel_sizes(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("srbio", "lls_pair")
    hr, lr = viewer.layers["lls HR"], viewer.layers["lls LR"]
    assert hr.data.shape == (40, 320, 392) and lr.data.shape == (40, 160, 196)
    np.testing.assert_allclose(lr.scale[1:], 2 * hr.scale[1:])


def test_a_rectangle_drawn_on_a_plane_predicts_that_plane_where_it_lies(
        make_napari_viewer, qtbot, results, sample, monkeypatch):
    monkeypatch.setattr(_widgets, "PredictConfig",
                        lambda: PredictConfig(tile_shape=(48, 48), chunk=64, shard=None))
    image, spacing = sample
    lr = image[10:14, ::2, ::2][:, :80, :90]
    sp = (spacing[0], 2 * spacing[1], 2 * spacing[2])
    viewer = make_napari_viewer()
    viewer.add_image(lr, name="lr", scale=sp, translate=(1.0, 10.0, 20.0))
    viewer.dims.set_current_step(0, 2)  # plane 2 shown
    shapes = viewer.add_shapes(ndim=2, name="2d")  # a 2D shapes layer over the 3D image
    shapes.add_rectangles(np.array([[11.0, 21.0], [13.0, 24.0]]))
    viewer.add_shapes([np.array([[0, 10.0, 20.0], [0, 12.0, 20.0]])], shape_type="line")
    viewer.layers.selection.active = shapes
    w = PredictWidget(viewer)
    w.model.value = results / "train" / "tiny" / "model.pt"
    w.image.value, w.region.value = "lr", "drawn rectangle"
    w.predict()
    _done(qtbot, w)
    out = viewer.layers["lr srbio"]
    # y: centres 10 + 0.203 i in [11, 13] → i = 5..14; x: 20 + 0.203 i in [21, 24] → 5..19
    assert out.data.shape == (1, 20, 30)
    np.testing.assert_allclose(out.translate, [1.0 + 2 * sp[0], 10.0 + 5 * sp[1] - sp[1] / 4,
                                               20.0 + 5 * sp[2] - sp[2] / 4])
    whole = inspect.predict_region(results / "train" / "tiny" / "model.pt", lr, spacing=sp,
                                   translate=(1.0, 10.0, 20.0),
                                   cfg=PredictConfig(tile_shape=(48, 48), chunk=64, shard=None))
    assert np.abs(out.data.astype(int) - whole.data[2:3, 10:30, 10:40].astype(int)).max() <= 1
