"""The predict stage on real data: a valid pyramidal OME-Zarr in physical space, resumable in
place, the same bytes by every route (serial, workers, parts), 3D networks on resampled input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import zarr

from srbio.config import PredictConfig
from srbio.inference import TiledPredictor, load_model
from srbio.io import image_origin, open_lazy, read_ome_zarr_attrs, write_tiff
from srbio.io.modelfile import save_model_file
from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, PixelSizes, Prediction, Range
from srbio.io.store import PredictionStore, progress_folder
from srbio.models import build_network
from srbio.stages.predict import PlaneCache, run_predict

# small blocks so that a small real volume has many of them
CFG = PredictConfig(tile_shape=(40, 40), overlap=4, chunk=32, shard=64)


def _model(path, name="rcan", preset="tiny", spacing=None, **params):
    torch.manual_seed(0)
    net = build_network(name, scale=2, preset=preset, params=params or None)
    header = ModelHeader(network=NetworkSpec.from_config(net.config),
                         normalisation=Normalisation(lr=Range(vmin=90, vmax=600),
                                                     hr=Range(vmin=90, vmax=700)),
                         spacing=spacing)
    return save_model_file(path, header, net.state_dict())


@pytest.fixture(scope="module")
def job(tmp_path_factory, sample):
    """A tiny RCAN and a real 3-plane LR volume (odd lateral sides) as TIFF."""
    image, spacing = sample
    root = tmp_path_factory.mktemp("predict")
    lr = image[18:21, ::2, ::2][:, :71, :93]
    src = write_tiff(root / "lr.tif", lr, spacing=(spacing[0], 2 * spacing[1], 2 * spacing[2]))
    return {"model": _model(root / "m.pt"), "input": src, "root": root}


@pytest.fixture(scope="module")
def reference(job):
    """One uninterrupted serial run: its record and level arrays."""
    out = job["root"] / "ref.ome.zarr"
    rec = run_predict(job["model"], job["input"], out, CFG, progress=False)
    group = zarr.open_group(str(out), mode="r")
    return rec, [group[str(k)][:] for k in range(len(rec.levels))]


def _levels(path):
    group = zarr.open_group(str(path), mode="r")
    n = len(group.attrs["ome"]["multiscales"][0]["datasets"])
    return [group[str(k)][:] for k in range(n)]


def test_the_output_is_valid_ome_zarr_with_a_pyramid_in_physical_space(job, reference):
    from ome_zarr_models.v05.image import Image

    rec, levels = reference
    out = job["root"] / "ref.ome.zarr"
    group = zarr.open_group(str(out), mode="r")
    Image.from_zarr(group)  # raises when the store is not valid OME-Zarr 0.5
    assert rec.output_shape == [3, 142, 186] and rec.levels == [[3, 142, 186], [3, 71, 93],
                                                               [3, 36, 47], [3, 18, 24]]
    assert all(group[str(k)].metadata.dimension_names == ("z", "y", "x") for k in range(4))
    sp = rec.output_spacing
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    for k, d in enumerate(datasets):
        scale, translation = (t[t["type"]] for t in d["coordinateTransformations"])
        f = 2 ** k
        np.testing.assert_allclose(scale, [sp[0], sp[1] * f, sp[2] * f])
        # pixel 0 of level k covers level-0 pixels 0..f-1: its centre is (f-1)/2 further on,
        # and level 0's own first pixel centre lies half an LR pixel less half an HR pixel
        # before the LR's first pixel centre (at 0 for a TIFF)
        np.testing.assert_allclose(translation, [0, -sp[1] / 2 + (f - 1) / 2 * sp[1],
                                                 -sp[2] / 2 + (f - 1) / 2 * sp[2]], atol=1e-12)
    # level 1 is the 2x2 mean of level 0 (rounded); odd edges average what exists
    l0, l1 = levels[0].astype(np.float64), levels[1].astype(np.float64)
    np.testing.assert_array_equal(l1, np.rint(l0.reshape(3, 71, 2, 93, 2).mean(axis=(2, 4))))
    attrs = read_ome_zarr_attrs(out)
    assert attrs["status"] == "complete" and attrs["prediction"]["fingerprint"] == rec.fingerprint
    assert not progress_folder(out).exists()


def test_napari_ome_zarr_opens_the_pyramid_at_its_physical_scale(job, reference):
    """What napari users open it with. (napari-ome-zarr 0.10 applies only the first transform
    of a dataset, the scale, so it shows the pyramid half an HR pixel off its position.)"""
    from napari_ome_zarr import napari_get_reader

    rec, levels = reference
    path = str(job["root"] / "ref.ome.zarr")
    (data, kwargs, kind), = napari_get_reader(path)(path)
    assert kind == "image" and [d.shape for d in data] == [tuple(s) for s in rec.levels]
    np.testing.assert_allclose(kwargs["scale"], rec.output_spacing)
    np.testing.assert_array_equal(np.asarray(data[1]), levels[1])


def test_reading_honours_translation_and_multiscale_transforms(tmp_path, job):
    """An LR cut out of a larger acquisition keeps its position through prediction."""
    lr, sp = open_lazy(job["input"])
    group = zarr.open_group(str(tmp_path / "cut.ome.zarr"), mode="w", zarr_format=3)
    group.create_array("s0", data=np.asarray(lr)[:, 10:60, 20:80], chunks=(1, 32, 32))
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{
        "axes": [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"],
        "datasets": [{"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 1.0, 1.0]},
            {"type": "translation", "translation": [0.0, 10.0, 20.0]}]}],
        "coordinateTransformations": [{"type": "scale", "scale": [s * 1000 for s in sp]},
                                      {"type": "translation", "translation": [0, 500, -300]}]}]}
    _, spacing = open_lazy(tmp_path / "cut.ome.zarr")
    np.testing.assert_allclose(spacing, sp)
    origin = image_origin(tmp_path / "cut.ome.zarr", 3)
    np.testing.assert_allclose(origin, [0, 10 * sp[1] + 0.5, 20 * sp[2] - 0.3])
    rec = run_predict(job["model"], tmp_path / "cut.ome.zarr", tmp_path / "p.ome.zarr", CFG,
                      progress=False)
    out_origin = image_origin(tmp_path / "p.ome.zarr", 3)
    np.testing.assert_allclose(out_origin, rec.output_translation)
    # the mean position of the two HR pixels over an LR pixel is that LR pixel's centre
    hr = rec.output_spacing
    np.testing.assert_allclose([out_origin[1] + hr[1] / 2, out_origin[2] + hr[2] / 2],
                               origin[1:])


def test_every_route_writes_the_same_bytes(tmp_path, job, reference):
    rec, expected = reference
    workers = run_predict(job["model"], job["input"], tmp_path / "w.ome.zarr",
                          CFG.model_copy(update={"workers": 2}), progress=False)
    assert workers.workers == 2
    for i in (1, 2, 3):
        assert run_predict(job["model"], job["input"], tmp_path / "p.ome.zarr", CFG,
                           progress=False, part=(i, 3)) is None
    assert not (tmp_path / "p.json").exists()  # parts write no record
    gathered = run_predict(job["model"], job["input"], tmp_path / "p.ome.zarr", CFG,
                           progress=False, gather=True)
    assert (tmp_path / "p.json").exists()
    # the gathered record adds up the parts
    assert (gathered.parts, gathered.blocks_computed, gathered.tiles) == (3, rec.blocks, rec.tiles)
    assert gathered.megapixels_per_second > 0
    for name in ("w", "p"):
        for a, b in zip(_levels(tmp_path / f"{name}.ome.zarr"), expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_gather_before_every_part_is_refused(tmp_path, job):
    run_predict(job["model"], job["input"], tmp_path / "p.ome.zarr", CFG, progress=False,
                part=(2, 3))
    with pytest.raises(ValueError, match=r"p.ome.zarr: \d+ of \d+ blocks are not finished; run "
                                         "every --part job"):
        run_predict(job["model"], job["input"], tmp_path / "p.ome.zarr", CFG, progress=False,
                    gather=True)


def test_a_resumed_store_skips_finished_blocks_and_redoes_a_torn_one(tmp_path, job, reference):
    rec, expected = reference
    out = tmp_path / "r.ome.zarr"
    run_predict(job["model"], job["input"], out, CFG, progress=False, part=(1, 2))
    store = PredictionStore(out)
    finished = sorted(store.finished(0))
    assert 0 < len(finished) < rec.blocks
    # tear one finished block as a kill in the middle of its write would
    shard = next(p for p in sorted((out / "0").rglob("*")) if p.is_file() and p.name != "zarr.json")
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert len(PredictionStore(out).finished(0)) == len(finished) - 1
    again = run_predict(job["model"], job["input"], out, CFG, progress=False)
    assert again.blocks_computed == rec.blocks - len(finished) + 1
    for a, b in zip(_levels(out), expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_empty_output_folder_is_used(tmp_path, job, reference):
    (tmp_path / "e.ome.zarr").mkdir()
    rec = run_predict(job["model"], job["input"], tmp_path / "e.ome.zarr", CFG, progress=False)
    assert rec.blocks_computed == reference[0].blocks


def test_a_part_never_replaces_another_jobs_store(tmp_path, job):
    out = tmp_path / "o.ome.zarr"
    run_predict(job["model"], job["input"], out, CFG, progress=False)
    other = CFG.model_copy(update={"overlap": 2})
    with pytest.raises(ValueError, match="holds the prediction of another job.*--part first"):
        run_predict(job["model"], job["input"], out, other, progress=False, part=(1, 2),
                    overwrite=True)
    assert run_predict(job["model"], job["input"], out, other, progress=False, init=True,
                       overwrite=True) is None
    assert read_ome_zarr_attrs(out)["status"] == "incomplete"
    assert not (tmp_path / "o.json").exists()


@pytest.mark.slow
def test_sigkill_then_the_same_command_finishes_with_the_same_bytes(tmp_path, job, reference):
    rec, expected = reference
    out = tmp_path / "k.ome.zarr"
    settings = json.dumps({"predict": CFG.model_dump(mode="json", exclude={"volumes"})})
    cmd = [sys.executable, "-m", "srbio", "predict", "--model", str(job["model"]), "--input",
           str(job["input"]), "--output", str(out), "--settings", settings, "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    logs = progress_folder(out)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = sum(len(p.read_text().splitlines()) for p in logs.rglob("*.log")) \
            if logs.exists() else 0
        if done >= rec.blocks // 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    unfinished = rec.blocks - len(PredictionStore(out).finished(0))
    assert subprocess.run(cmd, stderr=subprocess.PIPE).returncode == 0
    again = Prediction.read(tmp_path / "k.json")
    assert again.blocks_computed <= unfinished < rec.blocks
    for a, b in zip(_levels(out), expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_reduced_precision_and_tta_are_recorded(tmp_path, job, reference):
    rec, expected = reference
    bf16 = run_predict(job["model"], job["input"], tmp_path / "b.ome.zarr",
                       CFG.model_copy(update={"precision": "bf16"}), progress=False)
    assert bf16.precision == "bf16" and 0 < bf16.precision_error_of_range < 0.02
    assert bf16.fingerprint != rec.fingerprint and rec.precision_max_abs_error is None
    diff = np.abs(_levels(tmp_path / "b.ome.zarr")[0].astype(float) - expected[0])
    assert diff.max() <= 0.02 * 610
    tta = run_predict(job["model"], job["input"], tmp_path / "t.ome.zarr",
                      CFG.model_copy(update={"tta": 8}), progress=False)
    assert tta.tta == 8 and tta.tiles == rec.tiles
    assert not np.array_equal(_levels(tmp_path / "t.ome.zarr")[0], expected[0])


@pytest.fixture(scope="module")
def model3d(tmp_path_factory):
    root = tmp_path_factory.mktemp("m3d")
    return _model(root / "m3.pt", name="rcan3d", preset="tiny",
                  spacing=PixelSizes(lr=[0.157, 0.203, 0.203], hr=[0.157, 0.1015, 0.1015]))


def test_a_3d_network_predicts_a_resampled_volume_through_the_store(tmp_path, sample, model3d):
    image, spacing = sample
    coarse = image[10:17, ::3, ::3][:, :60, :70]  # 0.3045 µm: not the 0.203 µm trained at
    src = write_tiff(tmp_path / "in.tif", coarse, spacing=(spacing[0], 0.3045, 0.3045))
    cfg = PredictConfig(tile_shape=(40, 40), overlap=2, halo=2, tile_depth=3, depth_margin=1,
                        chunk=64, shard=None)
    rec = run_predict(model3d, src, tmp_path / "p.ome.zarr", cfg, progress=False)
    assert rec.resampled_from == [spacing[0], 0.3045, 0.3045]
    assert rec.output_shape == [7, 180, 210]
    # the same as predicting the resampled volume in memory with the same plan
    net, header = load_model(model3d)
    vol = PlaneCache(coarse, lateral=(90, 105), keep=5)
    pred = TiledPredictor(net, scale=2, lr_range=header.normalisation.lr.pair,
                          hr_range=header.normalisation.hr.pair, tile_shape=(40, 40),
                          overlap=2, halo=rec.halo, depth=3, depth_margin=1)
    out = zarr.open_group(str(tmp_path / "p.ome.zarr"), mode="r")["0"]
    for region in PredictionStore(tmp_path / "p.ome.zarr").blocks(0)[::7]:
        chunk = pred.predict_chunk(vol, region).data
        np.testing.assert_array_equal(out[region], np.clip(np.rint(chunk), 0, 65535))


def test_a_3d_model_refuses_a_plane_naming_the_file(tmp_path, sample, model3d):
    image, spacing = sample
    src = write_tiff(tmp_path / "plane.tif", image[3, :40, :40], spacing=(0.203, 0.203))
    with pytest.raises(ValueError, match=r"plane.tif: the model is a 3D network \(rcan3d\)"):
        run_predict(model3d, src, tmp_path / "p.ome.zarr", PredictConfig(), progress=False)
    assert not (tmp_path / "p.ome.zarr").exists()


def test_a_plane_cache_slices_like_an_array(sample):
    image, _ = sample
    plain = PlaneCache(image[:5, :40, :50])
    np.testing.assert_array_equal(plain[1:4, 2:9, 3:20], image[1:4, 2:9, 3:20])
    assert plain.dtype == np.uint16 and len(plain._planes) == 2  # keeps the last two planes
    vol = PlaneCache(image[:5, :40, :50], lateral=(20, 25))
    whole = np.stack([vol.plane(z) for z in range(5)])
    np.testing.assert_array_equal(vol[1:4, 2:9, 3:20], whole[1:4, 2:9, 3:20])
    np.testing.assert_array_equal(vol[2], whole[2])
    assert vol.shape == (5, 20, 25)
    tz = image[:6, :40, :50].reshape(2, 3, 40, 50)  # a time axis in front of z
    lead = PlaneCache(tz, keep=3)
    np.testing.assert_array_equal(lead[1, 0:2, 5:9, 1:4], tz[1, 0:2, 5:9, 1:4])
    np.testing.assert_array_equal(lead[:, 1:3, :3, :], tz[:, 1:3, :3, :])
    assert lead[0, 3:3].shape == (0, 40, 50)


def test_a_new_store_never_reads_the_logs_of_a_deleted_one(tmp_path, job, reference):
    import shutil

    rec, expected = reference
    out = tmp_path / "s.ome.zarr"
    run_predict(job["model"], job["input"], out, CFG, progress=False, part=(1, 2))
    shutil.rmtree(out)  # the user deletes the store; its hidden progress folder stays
    assert progress_folder(out).exists()
    again = run_predict(job["model"], job["input"], out, CFG, progress=False)
    assert again.blocks_computed == rec.blocks
    for a, b in zip(_levels(out), expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_rewritten_input_is_another_job(tmp_path, job):
    src = tmp_path / "in.tif"
    image, sp = open_lazy(job["input"])
    write_tiff(src, np.asarray(image), spacing=sp)
    out = tmp_path / "o.ome.zarr"
    run_predict(job["model"], src, out, CFG, progress=False, part=(1, 2))
    time.sleep(0.01)
    write_tiff(src, np.asarray(image)[:, ::-1].copy(), spacing=sp)  # same shape, new pixels
    with pytest.raises(ValueError, match="holds the prediction of another job"):
        run_predict(job["model"], src, out, CFG, progress=False, part=(2, 2))


def test_a_failing_part_never_removes_the_shared_store(tmp_path, job, monkeypatch):
    out = tmp_path / "f.ome.zarr"
    from srbio.inference import schedule

    def broken(*args, **kwargs):
        raise ValueError("simulated failure")

    monkeypatch.setattr(schedule, "predict_store", broken)
    with pytest.raises(ValueError, match="simulated failure"):
        run_predict(job["model"], job["input"], out, CFG, progress=False, part=(1, 2))
    assert out.exists()  # another part may be writing it
    with pytest.raises(ValueError, match="simulated failure"):
        run_predict(job["model"], job["input"], tmp_path / "g.ome.zarr", CFG, progress=False)
    assert not (tmp_path / "g.ome.zarr").exists()  # a whole run removes what it never wrote


def test_a_time_series_is_predicted_one_time_point_at_a_time(tmp_path, job, sample):
    """A t, y, x OME-Zarr: every time point as if predicted alone; t keeps its step/origin."""
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata
    from ome_zarr_models.v05.image import Image

    image, spacing = sample
    frames = image[20:23, ::2, ::2][:, :45, :70]
    group = zarr.open_group(str(tmp_path / "t.ome.zarr"), mode="w", zarr_format=3)
    group.create_array("0", data=frames, chunks=(1, 45, 70), dimension_names=["t", "y", "x"])
    write_multiscales_metadata(group, [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": [30.0, 2 * spacing[1], 2 * spacing[2]]},
        {"type": "translation", "translation": [60.0, 0.0, 0.0]}]}], fmt=FormatV05(), axes=[
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"}])
    out = tmp_path / "p.ome.zarr"
    rec = run_predict(job["model"], tmp_path / "t.ome.zarr", out, CFG, progress=False)
    assert rec.axes == ["t", "y", "x"] and rec.output_shape == [3, 90, 140]
    assert rec.output_spacing[0] == 30.0 and rec.output_translation[0] == 60.0
    Image.from_zarr(zarr.open_group(str(out), mode="r"))
    levels = _levels(out)
    assert [lvl.shape[0] for lvl in levels] == [3] * len(levels)
    for t in (0, 2):  # the same bytes as the time point predicted on its own
        alone = write_tiff(tmp_path / f"t{t}.tif", frames[t],
                           spacing=(2 * spacing[1], 2 * spacing[2]))
        run_predict(job["model"], alone, tmp_path / f"t{t}.ome.zarr", CFG, progress=False)
        np.testing.assert_array_equal(levels[0][t], _levels(tmp_path / f"t{t}.ome.zarr")[0])
