"""Corrupt or ambiguous input is an error (or a warning), never a quiet result (issue 8, class 2).

Through the CLI: exit status, message, nothing left behind, inputs unchanged.
"""

import hashlib
import os

import numpy as np
import pytest
import tifffile
import zarr

from tests.reliability.conftest import tiny_model


def sha(path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()




def predict(srbio, model, src, out, *extra):
    return srbio("predict", "--model", model, "--input", src, "--output", out,
                 "--quiet", "--tile", "32", "32", "--overlap", "4", *extra)


def planes(n=4, h=40, w=48):
    return np.random.default_rng(0).integers(100, 900, (n, h, w)).astype(np.uint16)


def test_a_truncated_uncompressed_stack_is_not_read_as_its_first_plane(srbio, tmp_path, model):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, planes(), imagej=True, resolution=(5, 5),
                     metadata={"axes": "ZYX", "unit": "um", "spacing": 0.5})
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    before = sha(cut)
    code, err = predict(srbio, model, cut, tmp_path / "o.ome.zarr")
    assert code == 2 and "cut.tif: holds 1 of the 4 planes its ImageJ metadata announces" in err
    assert not (tmp_path / "o.ome.zarr").exists() and sha(cut) == before


@pytest.mark.parametrize(("data", "kw", "what"), [
    (np.zeros((40, 48, 3), np.uint8), {}, "sample (RGB) axis has 3 entries"),
    (planes(6), {"imagej": True, "metadata": {"axes": "CYX"}}, "channel axis has 6 entries"),
])
def test_channel_and_rgb_axes_are_refused_not_read_as_z(srbio, tmp_path, model, data, kw, what):
    path = tmp_path / "multi.tif"
    tifffile.imwrite(path, data, **kw)
    code, err = predict(srbio, model, path, tmp_path / "o.ome.zarr", "--spacing", "0.2", "0.2")
    assert code == 2 and f"multi.tif: its {what}" in err and "single-channel" in err
    assert not (tmp_path / "o.ome.zarr").exists()


def test_a_time_axis_is_predicted_by_predict_and_refused_elsewhere(srbio, tmp_path, model):
    from srbio.io import open_lazy

    path = tmp_path / "multi.tif"
    tifffile.imwrite(path, planes(3), imagej=True, metadata={"axes": "TYX", "finterval": 2.0})
    with pytest.raises(ValueError, match="multi.tif: its time axis has 3 entries.*predict"):
        open_lazy(path)
    code, err = predict(srbio, model, path, tmp_path / "o.ome.zarr", "--spacing", "0.2", "0.2")
    assert code == 0, err
    group = zarr.open_group(str(tmp_path / "o.ome.zarr"), mode="r")
    axes = group.attrs["ome"]["multiscales"][0]["axes"]
    assert [a["name"] for a in axes] == ["t", "y", "x"] and axes[0]["unit"] == "second"
    assert group["0"].shape[0] == 3


def test_singleton_axes_are_dropped_and_a_plain_stack_is_z(tmp_path):
    from srbio.io import open_lazy

    tifffile.imwrite(tmp_path / "c1.tif", planes(1)[:, None], imagej=True,
                     metadata={"axes": "ZCYX"})
    assert open_lazy(tmp_path / "c1.tif", spacing=(1, 1)).__getitem__(0).shape == (40, 48)
    tifffile.imwrite(tmp_path / "plain.tif", planes(5))  # no metadata: axes QYX
    assert open_lazy(tmp_path / "plain.tif", spacing=(1, 1, 1))[0].shape == (5, 40, 48)


def test_a_zarr_with_a_missing_chunk_is_refused_unless_allowed(srbio, tmp_path, model):
    store = tmp_path / "vol.zarr"
    arr = zarr.create_array(str(store), shape=(2, 40, 48), chunks=(1, 20, 24), dtype="uint16")
    arr[:] = planes(2)
    arr.attrs.update({"axes": ["z", "y", "x"], "spacing": [0.5, 0.2, 0.2]})
    os.remove(store / "c" / "1" / "1" / "0")  # a chunk lost in a copy
    before = sha(store)
    code, err = predict(srbio, model, store, tmp_path / "o.ome.zarr")
    assert code == 2 and "vol.zarr: 1 of its 8 chunks are missing" in err
    assert "fill value 0" in err and not (tmp_path / "o.ome.zarr").exists()
    code, err = predict(srbio, model, store, tmp_path / "o.ome.zarr", "--allow-missing-chunks")
    assert code == 0 and sha(store) == before


def test_srbio_writes_every_chunk_of_its_own_outputs(tmp_path):
    from srbio.io import create_ome_zarr, open_lazy

    out = create_ome_zarr(tmp_path / "z.ome.zarr", shape=(40, 48), dtype="uint16",
                          chunks=(20, 24), spacing=(0.1, 0.1))
    out[:] = 0  # all equal to the fill value: still stored, so it reads back as complete
    assert open_lazy(tmp_path / "z.ome.zarr")[0].shape == (40, 48)


def test_a_constant_input_is_predicted_with_a_warning(srbio, tmp_path, model):
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.full((40, 48), 7, np.uint16), imagej=True, resolution=(5, 5),
                     metadata={"unit": "um"})
    code, err = predict(srbio, model, flat, tmp_path / "o.ome.zarr")
    assert code == 0 and "the input is constant (every pixel is 7)" in err


@pytest.mark.parametrize(("tiff_kw", "lr_um", "factor"), [
    ({"resolution": (72, 72), "resolutionunit": "INCH"}, 0.2, "1764"),  # a 72-dpi default
    ({"resolution": (96, 96), "resolutionunit": "INCH"}, 0.2, "1323"),
    ({"resolution": (5, 5), "imagej": True, "metadata": {"unit": "um"}}, 1e-6, "2e+05"),
])
def test_absurd_pixel_sizes_are_refused_before_any_resampling(srbio, tmp_path, tiff_kw, lr_um,
                                                              factor):
    src = tmp_path / "plane.tif"
    tifffile.imwrite(src, planes(1)[0], **tiff_kw)
    model = tiny_model(tmp_path / "m.pt", lr_um=lr_um)
    before = sha(src)
    code, err = predict(srbio, model, src, tmp_path / "o.ome.zarr")
    assert code == 2, err
    assert "plane.tif (for a model trained at" in err and f"a factor of {factor}" in err
    assert "--spacing" in err and "Traceback" not in err
    assert not (tmp_path / "o.ome.zarr").exists() and sha(src) == before
    # the override the message names works
    code, err = predict(srbio, model, src, tmp_path / "o.ome.zarr", "--spacing",
                        str(lr_um), str(lr_um))
    assert code == 0, err


def test_register_refuses_an_absurd_pixel_size_ratio(srbio, tmp_path, sample):
    image, spacing = sample
    hr = tmp_path / "hr.tif"
    tifffile.imwrite(hr, image[5, :120, :120], imagej=True, resolution=(1 / 0.1, 1 / 0.1),
                     metadata={"unit": "um"})
    lr = tmp_path / "lr.tif"  # an LR whose unit says inch: 0.2 inch pixels
    tifffile.imwrite(lr, image[5, ::2, ::2][:60, :60], imagej=True,
                     resolution=(1 / 0.2, 1 / 0.2), metadata={"unit": "inch"})
    code, err = srbio("register", "--fixed", hr, "--moving", lr, "--out", tmp_path / "reg")
    assert code == 2 and "lr.tif onto" in err and "beyond the 16x" in err, err
    assert "--moving-spacing" in err and not (tmp_path / "reg").exists()
