"""Bad inputs of the napari plugin (without Qt): each is named, nothing is written or changed."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from srbio.config import PredictConfig
from srbio.napari._reader import read_results, read_store
from srbio.napari._writer import write_ome_zarr
from srbio.stages import inspect
from tests.conftest import SPLIT
from tests.reliability.conftest import tiny_model

CFG = PredictConfig(tile_shape=(48, 48), chunk=64, shard=None)


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_results_folder_of_an_older_srbio_is_named_and_left_alone(prepared, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(prepared / "register", old / "register")
    record = old / "register" / "p" / "registration.json"
    values = json.loads(record.read_text())
    del values["grid_shape"]  # written by every srbio since the record's version
    record.write_text(json.dumps(values))
    before = _digest(old)
    for read in (lambda: read_results(str(old)), lambda: inspect.pair_qc(old, "p")):
        with pytest.raises(ValueError, match=r"registration\.json.*grid_shape"):
            read()
    assert _digest(old) == before


def test_a_file_that_is_not_a_model_is_named(tmp_path, sample):
    image, spacing = sample
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"\x89HDF\r\n\x1a\n not a model")
    data = image[20, :64, :64].copy()
    with pytest.raises(ValueError, match="model.pt"):
        inspect.predict_region(fake, data, spacing=spacing[1:], translate=(0, 0), cfg=CFG)
    folder = tmp_path / "folder.pt"
    folder.mkdir()
    with pytest.raises((ValueError, OSError), match="folder.pt"):
        inspect.predict_region(folder, data, spacing=spacing[1:], translate=(0, 0), cfg=CFG)
    assert np.array_equal(data, image[20, :64, :64])  # the layer's data is never changed


def test_a_layer_of_the_wrong_shape_or_placement_is_refused(tmp_path, sample):
    model = tiny_model(tmp_path / "m.pt")
    image, spacing = sample
    with pytest.raises(ValueError, match=r"shape \(64, 64\).*spacing \[0.1\]"):
        inspect.predict_region(model, image[20, :64, :64], spacing=(0.1,), translate=(0, 0),
                               cfg=CFG)
    with pytest.raises(ValueError, match="got 1 axes"):
        inspect.predict_region(model, image[20, 0, :64], spacing=(0.1,), translate=(0,),
                               cfg=CFG)


def test_the_writer_refuses_what_it_cannot_write_and_writes_nothing(tmp_path):
    rgb = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="'photo' is RGB"):
        write_ome_zarr(str(tmp_path / "a.ome.zarr"), rgb,
                       {"rgb": True, "name": "photo", "scale": [1, 1, 1],
                        "translate": [0, 0, 0]})
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        inspect.write_layer(tmp_path / "b.ome.zarr", np.zeros(5), spacing=(1,),
                            translation=(0,))
    with pytest.raises(ValueError, match="disagree"):
        inspect.write_layer(tmp_path / "c.ome.zarr", np.zeros((4, 4)), spacing=(1,),
                            translation=(0, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no debris


def test_a_layer_saved_over_the_store_it_was_read_from_keeps_its_pixels(tmp_path, sample):
    image, spacing = sample
    pixels = image[:2, :64, :64]
    store = inspect.write_layer(tmp_path / "x.ome.zarr", pixels, spacing=spacing,
                                translation=(0, 0, 0))
    [(data, kwargs, _)] = read_store(str(store))  # lazily read from the store itself
    write_ome_zarr(str(store), data, kwargs)
    [(again, _, _)] = read_store(str(store))  # built aside, then swapped in: nothing lost
    level0 = again[0] if isinstance(again, list) else again
    assert np.array_equal(np.asarray(level0), pixels)
    prediction = tmp_path / "p.ome.zarr"  # an output of another stage is never replaced
    shutil.copytree(store, prediction)
    marker = next(p for p in prediction.iterdir() if p.name.startswith(".srbio"))
    marker.write_text(json.dumps({"stage": "predict"}) + "\n")
    before = _digest(prediction)
    with pytest.raises(ValueError, match="p.ome.zarr"):
        inspect.write_layer(prediction, pixels, spacing=spacing, translation=(0, 0, 0))
    assert _digest(prediction) == before


def test_compare_names_a_missing_pair_and_a_model_of_another_scale(prepared, tmp_path):
    with pytest.raises(ValueError, match="no prepared pair 'q'"):
        inspect.compare_pair(prepared, "q", tiny_model(tmp_path / "m.pt"), CFG, split=SPLIT)
    with pytest.raises(ValueError, match=r"x4\.pt: upsamples by 4 but pair p"):
        inspect.compare_pair(prepared, "p", tiny_model(tmp_path / "x4.pt", scale=4), CFG,
                             split=SPLIT)
