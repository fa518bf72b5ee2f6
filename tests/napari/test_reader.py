"""The napari readers, without Qt: srbio's outputs open lazily at their physical place."""

import importlib

import dask.array as da
import numpy as np
import pytest

from srbio.config import PredictConfig
from srbio.io import write_tiff
from srbio.io.records import RegisterFiles, Registration
from srbio.napari._reader import get_reader, read_image, read_results, read_store
from srbio.stages.predict import run_predict
from tests.reliability.conftest import tiny_model


def test_the_manifest_is_valid_and_names_the_reader():
    npe2 = pytest.importorskip("npe2")
    from importlib.resources import files

    manifest = npe2.PluginManifest.from_file(files("srbio.napari") / "napari.yaml")
    assert [r.command for r in manifest.contributions.readers] == ["srbio.get_reader"]
    assert [w.command for w in manifest.contributions.writers] == ["srbio.write_ome_zarr"]
    assert [w.display_name for w in manifest.contributions.widgets] == [
        "Compare methods", "Registration QC", "Predict"]
    assert [d.key for d in manifest.contributions.sample_data] == ["lls_pair"]
    for command in manifest.contributions.commands:  # every command points at real code
        module, name = command.python_name.split(":")
        if "_widgets" not in module:  # widgets need Qt: the GUI tests import them
            assert callable(getattr(importlib.import_module(module), name))


def test_a_prediction_opens_as_a_lazy_pyramid_at_its_place(tmp_path, sample):
    image, spacing = sample
    src = write_tiff(tmp_path / "lr.tif", image[18:20, ::2, ::2][:, :100, :120],
                     spacing=(spacing[0], 2 * spacing[1], 2 * spacing[2]))
    out = tmp_path / "p.ome.zarr"
    rec = run_predict(tiny_model(tmp_path / "m.pt"), src, out,
                      PredictConfig(tile_shape=(48, 48), chunk=64, shard=None), progress=False)
    assert get_reader(str(out)) is read_store
    [(data, kwargs, kind)] = read_store(str(out))
    assert kind == "image" and kwargs["multiscale"] and len(data) == len(rec.levels) > 1
    assert all(isinstance(level, da.Array) for level in data)  # opened, not read
    assert [list(level.shape) for level in data] == rec.levels
    np.testing.assert_allclose(kwargs["scale"], rec.output_spacing)
    np.testing.assert_allclose(kwargs["translate"], rec.output_translation)
    assert kwargs["metadata"]["axes"] == ["z", "y", "x"]


def test_a_results_folder_opens_its_pair_in_register(prepared):
    layers = read_results(str(prepared))
    assert get_reader(str(prepared)) is read_results
    by_name = {kw["name"]: (data, kw, kind) for data, kw, kind in layers}
    assert list(by_name) == ["p LR (as acquired)", "p LR (registered)", "p HR", "p valid"]
    rec = Registration.read(RegisterFiles(prepared / "register" / "p").record)
    _, hr, _ = by_name["p HR"]
    _, lr, _ = by_name["p LR (registered)"]
    _, raw, _ = by_name["p LR (as acquired)"]
    mask, mk, kind = by_name["p valid"]
    assert hr["scale"] == rec.fixed_spacing and hr["translate"] == [0.0, 0.0]
    assert lr["scale"] == rec.grid_spacing and lr["translate"] == rec.grid_origin
    assert raw["scale"] == rec.moving_spacing and kind == "labels"
    assert mk["scale"] == lr["scale"] and mk["translate"] == lr["translate"]
    # the registered LR pixel i is centred on the HR pixels it averages: (s-1)/2 HR px in
    s = rec.scale
    np.testing.assert_allclose(lr["translate"], [(s - 1) / 2 * v for v in rec.fixed_spacing])
    assert np.asarray(mask).shape == tuple(rec.grid_shape)


def test_images_open_at_their_pixel_size_and_other_files_are_left_to_others(tmp_path, sample):
    image, spacing = sample
    tif = write_tiff(tmp_path / "a.tif", image[:3, :40, :50], spacing=spacing)
    assert get_reader(str(tif)) is read_image
    [(data, kwargs, kind)] = read_image(str(tif))
    assert kwargs["scale"] == list(spacing) and data.shape == (3, 40, 50)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path / "folder")) is None
    assert get_reader([str(tif), str(tif)]) is None
