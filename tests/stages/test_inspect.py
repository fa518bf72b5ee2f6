"""What the napari widgets compute, without Qt: comparisons, QC views, predictions, the writer."""

import json
import threading

import numpy as np
import pytest
import zarr

from srbio.config import PredictConfig
from srbio.core.registration import ncc
from srbio.inference.monitor import Cancelled, Monitor
from srbio.io import read_image, write_tiff
from srbio.io.records import RegisterFiles, Registration
from srbio.io.view import store_view
from srbio.stages import inspect
from srbio.stages.evaluate import run_evaluate
from srbio.stages.predict import run_predict
from tests.conftest import SPLIT
from tests.reliability.conftest import tiny_model

CFG = PredictConfig(tile_shape=(48, 48), chunk=64, shard=None)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "m.pt")


def test_a_region_scores_what_the_report_says_on_the_test_band(prepared, model, tmp_path):
    evaluation = run_evaluate(model, [prepared / "crop" / "p"], tmp_path / "ev", SPLIT, CFG)
    comparison = inspect.compare_pair(prepared, "p", model, CFG, split=SPLIT)
    assert list(comparison.images) == ["LR (nearest)", "bicubic", "network", "HR"]
    assert {im.shape for im in comparison.images.values()} == {comparison.valid.shape}
    scores = inspect.region_scores(comparison, comparison.test_box)
    report = evaluation.pairs["p"]
    for ours, theirs in (("fixed", report.methods), ("fitted", report.fitted)):
        for method, name in (("LR (nearest)", "nearest"), ("bicubic", "bicubic"),
                             ("network", "network")):
            got, want = scores[ours][method], theirs[name]
            assert got.psnr == pytest.approx(want.psnr, abs=1e-9), (ours, method)
            assert got.ssim == pytest.approx(want.ssim, abs=1e-9), (ours, method)
            assert got.nrmse == pytest.approx(want.nrmse, abs=1e-9), (ours, method)
    # a smaller region scores differently, and an empty one is refused by name
    top = tuple((a, a + (b - a) // 2) for a, b in comparison.test_box)
    assert inspect.region_scores(comparison, top)["fixed"]["network"].psnr != pytest.approx(
        report.methods["network"].psnr, abs=1e-3)
    with pytest.raises(ValueError, match="no valid pixel of pair p"):
        inspect.region_scores(comparison, ((0, 1), (0, 1)))


def test_the_comparison_lies_where_the_crop_lies_in_the_hr_frame(prepared, model):
    comparison = inspect.compare_pair(prepared, "p", model, CFG, split=SPLIT)
    crop = json.loads((prepared / "crop" / "p" / "crop.json").read_text())
    hr, _ = read_image(prepared / "crop" / "p" / "hr.tif")
    assert np.array_equal(comparison.images["HR"], hr)
    assert comparison.translate == tuple(crop["hr_origin_um"])
    s = crop["scale"]
    assert comparison.lr_translate == pytest.approx(
        [o + (s - 1) / 2 * v for o, v in zip(crop["hr_origin_um"], crop["hr_spacing"],
                                              strict=True)])


def test_qc_views_are_those_the_register_stage_measured(prepared):
    record, views = inspect.pair_qc(prepared, "p")
    assert record == Registration.read(RegisterFiles(prepared / "register" / "p").record)
    assert ncc(views.hr_lr, views.after, views.mask) == pytest.approx(record.ncc_after, abs=1e-12)
    assert ncc(views.hr_lr, views.before, views.before_mask) == pytest.approx(
        record.ncc_before, abs=1e-12)
    assert views.spacing == tuple(record.grid_spacing)
    assert views.origin == tuple(record.grid_origin)
    assert float(views.mask.mean()) == pytest.approx(record.valid_fraction)
    with pytest.raises(ValueError, match="no registered pair 'q'"):
        inspect.pair_qc(prepared, "q")


def test_a_region_predicted_in_memory_equals_srbio_predict(tmp_path, sample, model):
    image, spacing = sample
    lr = image[19:21, ::2, ::2][:, :100, :120]
    sp = (spacing[0], 2 * spacing[1], 2 * spacing[2])
    src = write_tiff(tmp_path / "lr.tif", lr, spacing=sp)
    rec = run_predict(model, src, tmp_path / "p.ome.zarr", CFG, progress=False)
    store = zarr.open_array(str(tmp_path / "p.ome.zarr" / "0"), mode="r")[:]
    whole = inspect.predict_region(model, lr, spacing=sp, translate=(0.0, 0.0, 0.0), cfg=CFG)
    assert whole.data.dtype == store.dtype and whole.data.shape == store.shape
    assert np.abs(whole.data.astype(int) - store.astype(int)).max() <= 1
    assert whole.spacing == pytest.approx(rec.output_spacing)
    assert whole.translate == pytest.approx(rec.output_translation)
    box = ((1, 2), (10, 50), (20, 90))
    part = inspect.predict_region(model, lr, spacing=sp, translate=(0.0, 0.0, 0.0), box=box,
                                  cfg=CFG)
    assert part.data.shape == (1, 80, 140)
    assert np.abs(part.data.astype(int) - store[1:2, 20:100, 40:180].astype(int)).max() <= 1
    # placed where it lies in the whole prediction
    assert part.translate == pytest.approx(
        [t + a * s for t, (a, _), s in zip(rec.output_translation, ((1, 0), (20, 0), (40, 0)),
                                          rec.output_spacing, strict=True)])


def test_a_cancelled_prediction_stops_at_the_next_batch_and_keeps_finished_blocks(
        tmp_path, sample, model):
    image, spacing = sample
    lr = image[18:22, ::2, ::2][:, :100, :120]
    sp = (spacing[0], 2 * spacing[1], 2 * spacing[2])
    stop, seen = threading.Event(), []

    def progress(done, total):
        seen.append((done, total))
        if len(seen) == 3:
            stop.set()

    with pytest.raises(Cancelled):
        inspect.predict_region(model, lr, spacing=sp, translate=(0, 0, 0), cfg=CFG,
                               monitor=Monitor(on_progress=progress, should_stop=stop.is_set))
    assert len(seen) == 3 and seen[-1][0] < seen[-1][1]
    src = write_tiff(tmp_path / "lr.tif", lr, spacing=sp)
    blocks = []
    monitor = Monitor(on_progress=lambda d, t: blocks.append(d),
                      should_stop=lambda: len(blocks) >= 2, unit="blocks")
    with pytest.raises(Cancelled):
        inspect.predict_to_store(model, src, CFG, monitor=monitor)
    assert blocks == [1, 2]  # blocks done so far, counted up
    out = inspect.store_path_for(src)
    assert out.name == "lr_srbio.ome.zarr" and out.is_dir()
    assert not (tmp_path / "lr_srbio.json").exists()  # no record: not complete
    rec = inspect.predict_to_store(model, src, CFG)  # resumes: the kept blocks are not redone
    assert 2 <= rec.blocks - rec.blocks_computed < rec.blocks


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_the_writer_round_trips_pixels_scale_and_translation(tmp_path, dtype):
    rng = np.random.default_rng(1)
    data = (rng.random((3, 300, 520)) * 4000).astype(dtype)
    spacing, translation = (0.3, 0.0812, 0.0812), (1.5, -0.040599999, 12.25)
    out = inspect.write_layer(tmp_path / "x.ome.zarr", data, spacing=spacing,
                              translation=translation, name="x", chunk=128)
    view = store_view(out)
    assert np.array_equal(np.asarray(view.data[0]), data)
    assert view.scale == spacing and view.translate == translation  # exactly
    assert len(view.data) >= 3 and view.data[1].shape == (3, 150, 260)
    assert np.allclose(np.asarray(view.data[1]), data.astype(np.float32).reshape(
        3, 150, 2, 260, 2).mean((2, 4)), atol=0.5 if dtype == "uint16" else 1e-3)
    attrs = zarr.open_group(str(out), mode="r").attrs.asdict()
    assert attrs["ome"]["version"] == "0.5" and attrs["srbio"]["status"] == "complete"
    datasets = attrs["ome"]["multiscales"][0]["datasets"]
    assert datasets[1]["coordinateTransformations"][0]["scale"] == [0.3, 0.1624, 0.1624]
    # written again: replaced; a folder srbio did not write is refused, and NaNs are named
    inspect.write_layer(out, data[:1], spacing=spacing, translation=translation)
    assert store_view(out).data[0].shape == (1, 300, 520)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="mine"):
        inspect.write_layer(tmp_path / "mine", data, spacing=spacing, translation=translation)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    bad = data.astype(np.float32)
    bad[0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        inspect.write_layer(tmp_path / "nan.ome.zarr", bad, spacing=spacing,
                            translation=translation)
    assert not (tmp_path / "nan.ome.zarr").exists()
    with pytest.raises(ValueError, match="complex"):
        inspect.write_layer(tmp_path / "c.ome.zarr", data.astype(np.complex64), spacing=spacing,
                            translation=translation)


def test_the_sample_pair_is_the_demo_pair():
    pair = inspect.sample_pair()
    hr, hr_sp = pair["HR"]
    lr, lr_sp = pair["LR"]
    assert hr.shape == (40, 320, 392) and lr.shape == (40, 160, 196)
    assert lr_sp == pytest.approx((hr_sp[0], 2 * hr_sp[1], 2 * hr_sp[2]))


def test_an_older_results_folder_is_named(prepared, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(prepared / "register", old / "register")
    record = old / "register" / "p" / "registration.json"
    values = json.loads(record.read_text())
    del values["grid_origin"]  # a field every srbio since the record's version writes
    record.write_text(json.dumps(values))
    with pytest.raises(ValueError, match="registration.json"):
        inspect.pair_qc(old, "p")


def test_a_model_of_another_scale_is_refused_by_name(prepared, tmp_path):
    other = tiny_model(tmp_path / "x3.pt", scale=3)
    with pytest.raises(ValueError, match=r"x3\.pt: upsamples by 3 but pair p was cropped at "
                                         r"scale 2"):
        inspect.compare_pair(prepared, "p", other, CFG, split=SPLIT)
    with pytest.raises(ValueError, match="no prepared pair 'q'"):
        inspect.compare_pair(prepared, "q", other, CFG, split=SPLIT)
