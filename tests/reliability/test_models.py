"""Broken models and mismatched inputs (issue 22, class 5): refused or warned, never silent."""

import hashlib

import numpy as np
import pytest
import tifffile
import torch

from srbio.io.modelfile import digest
from tests.reliability.conftest import tiny_model


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lr(tmp_path, dtype=np.uint16, high=900):
    path = tmp_path / "lr.tif"
    data = np.random.default_rng(0).integers(100, high, (40, 48)).astype(dtype)
    tifffile.imwrite(path, data)
    return path


def _predict(srbio, model, src, out):
    return srbio("predict", "--model", model, "--input", src, "--output", out, "--quiet",
                 "--tile", "32", "32", "--spacing", "0.2", "0.2")


def _rewrite(model, change):
    payload = torch.load(model, weights_only=True)
    change(payload)
    torch.save(payload, model)


@pytest.mark.parametrize("where", ["NaN", "inf"])
def test_a_model_with_non_finite_weights_is_refused(srbio, tmp_path, where):
    model = tiny_model(tmp_path / "m.pt")

    def poison(payload):
        key = sorted(payload["state_dict"])[3]
        payload["state_dict"][key].view(-1)[0] = float(where.lower())
        payload["digest"] = digest(payload["header"], payload["state_dict"])

    _rewrite(model, poison)
    before = sha(model)
    code, err = _predict(srbio, model, _lr(tmp_path), tmp_path / "o.ome.zarr")
    assert code == 2 and "m.pt: its weights hold NaN or infinite values" in err, err
    assert not (tmp_path / "o.ome.zarr").exists() and sha(model) == before


@pytest.mark.parametrize("edit", ["res_scale", "vmax", "weight"])
def test_an_edited_model_file_is_refused(srbio, tmp_path, edit):
    model = tiny_model(tmp_path / "m.pt")

    def change(payload):
        if edit == "res_scale":
            payload["header"]["network"]["params"]["res_scale"] = 0.5
        elif edit == "vmax":
            payload["header"]["normalisation"]["hr"]["vmax"] = 2000.0
        else:
            key = sorted(payload["state_dict"])[0]
            payload["state_dict"][key].view(-1)[0] += 1e-3

    _rewrite(model, change)
    code, err = _predict(srbio, model, _lr(tmp_path), tmp_path / "o.ome.zarr")
    assert code == 2 and "its header or weights were changed after srbio wrote it" in err, err
    assert not (tmp_path / "o.ome.zarr").exists()


def test_training_never_writes_a_model_with_non_finite_weights(tmp_path):
    from srbio.io.modelfile import read_model_file, save_model_file
    from srbio.io.records import ModelHeader

    header, state = read_model_file(tiny_model(tmp_path / "m.pt"))
    state = {k: v.clone() for k, v in state.items()}
    next(iter(state.values())).view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="bad.pt: not written: the weights hold NaN"):
        save_model_file(tmp_path / "bad.pt", ModelHeader.model_validate(header.model_dump()),
                        state)
    assert not (tmp_path / "bad.pt").exists()


def test_crop_refuses_an_hr_other_than_the_registered_one(srbio, tmp_path, sample):
    from srbio.io import write_tiff

    image, spacing = sample
    hr = write_tiff(tmp_path / "hr.tif", image[12, :160, :160], spacing=spacing[1:])
    lr = write_tiff(tmp_path / "lr.tif", image[12, ::2, ::2][:80, :80],
                    spacing=(2 * spacing[1], 2 * spacing[2]))
    other = write_tiff(tmp_path / "other.tif", image[30, :160, :160], spacing=spacing[1:])
    assert srbio("register", "--fixed", hr, "--moving", lr, "--out", tmp_path / "reg")[0] == 0
    code, err = srbio("crop", "--registered", tmp_path / "reg", "--hr", other, "--out",
                      tmp_path / "crop")
    assert code == 2 and "other.tif: is not the HR image" in err, err
    assert not (tmp_path / "crop").exists()
    code, err = srbio("crop", "--registered", tmp_path / "reg", "--hr", hr, "--out",
                      tmp_path / "crop")
    assert code == 0, err


def test_a_pair_of_one_image_twice_is_refused(srbio, tmp_path, sample):
    from srbio.io import write_tiff

    image, spacing = sample
    hr = write_tiff(tmp_path / "hr.tif", image[12, :160, :160], spacing=spacing[1:])
    copy = tmp_path / "copy.tif"
    copy.write_bytes(hr.read_bytes())
    for moving in (hr, copy):
        code, err = srbio("register", "--fixed", hr, "--moving", moving, "--out",
                          tmp_path / "reg")
        assert code == 2 and "is the same image as the HR" in err, err
        assert not (tmp_path / "reg").exists()


def test_an_8_bit_input_to_a_16_bit_model_is_warned_about(srbio, tmp_path):
    model = tiny_model(tmp_path / "m.pt")  # LR range 0 … 1000
    code, err = _predict(srbio, model, _lr(tmp_path, np.uint8, 250), tmp_path / "o.ome.zarr")
    assert code == 0, err
    assert "its dtype uint8 holds values up to 255, but the model was trained on LR " \
           "intensities 0 … 1000" in err


def test_intensities_far_from_training_are_warned_about(srbio, tmp_path):
    model = tiny_model(tmp_path / "m.pt")  # LR range 0 … 1000
    path = tmp_path / "bright.tif"
    tifffile.imwrite(path, np.random.default_rng(0).integers(20000, 30000, (40, 48))
                     .astype(np.uint16))
    code, err = _predict(srbio, model, path, tmp_path / "o.ome.zarr")
    assert code == 0, err
    assert "lie far outside the LR range 0 … 1000 the model was trained on" in err
    code, err = _predict(srbio, model, _lr(tmp_path), tmp_path / "p.ome.zarr")  # 100 … 900
    assert code == 0 and "far outside" not in err and "dtype" not in err
