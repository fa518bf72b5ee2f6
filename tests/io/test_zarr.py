import numpy as np
import pytest
import zarr

from srbio.io import create_ome_zarr, open_lazy, open_zarr


def test_ome_zarr_roundtrip_with_physical_scale(tmp_path):
    path = tmp_path / "img.ome.zarr"
    arr = create_ome_zarr(path, shape=(3, 40, 50), dtype="uint16", chunks=(1, 16, 16),
                          spacing=(0.3, 0.05, 0.05), name="x")
    data = np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)
    arr[:] = data
    lazy, spacing = open_zarr(path)
    assert spacing == (0.3, 0.05, 0.05)
    np.testing.assert_array_equal(lazy.compute(), data)
    assert lazy.chunksize == (1, 16, 16)


def test_ome_zarr_is_readable_by_ome_zarr_py(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    path = tmp_path / "img.ome.zarr"
    create_ome_zarr(path, shape=(32, 48), dtype="float32", chunks=(16, 16), spacing=(0.1, 0.1))
    node = next(iter(Reader(parse_url(str(path)))()))
    assert node.data[0].shape == (32, 48)
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == [0.1, 0.1]
    assert [a["name"] for a in node.metadata["axes"]] == ["y", "x"]


def test_singleton_channel_axis_is_dropped_and_real_channels_rejected(tmp_path):
    import zarr

    for n_channels in (1, 2):
        store = tmp_path / f"c{n_channels}.zarr"
        arr = zarr.create_array(str(store), shape=(n_channels, 20, 30), dtype="uint16",
                                chunks=(1, 20, 30))
        arr[:] = np.broadcast_to(np.arange(600, dtype=np.uint16).reshape(20, 30), arr.shape)
        arr.attrs.update({"axes": ["c", "y", "x"], "spacing": [1.0, 0.2, 0.2]})
        if n_channels == 1:
            data, spacing = open_lazy(store)
            assert data.shape == (20, 30) and spacing == (0.2, 0.2)
        else:
            with pytest.raises(ValueError, match="channel axis has 2 entries"):
                open_lazy(store)


def _ome(tmp_path, name, data, axes, scale, translation=None, types=None):
    """An OME-Zarr 0.5 image with the given axis names (stored order) and transforms."""
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    group = zarr.open_group(str(tmp_path / name), mode="w", zarr_format=3)
    group.create_array("0", data=data, chunks=data.shape, dimension_names=axes)
    transforms = [{"type": "scale", "scale": list(scale)}]
    if translation is not None:
        transforms.append({"type": "translation", "translation": list(translation)})
    types = types or ["time" if a == "t" else "space" for a in axes]
    entries = [{"name": a, "type": k, **({"unit": "micrometer"} if k == "space" else {})}
               for a, k in zip(axes, types, strict=True)]
    write_multiscales_metadata(group, [{"path": "0", "coordinateTransformations": transforms}],
                               fmt=FormatV05(), axes=entries)
    return tmp_path / name


def test_axes_are_read_by_name_whatever_their_stored_order(tmp_path, sample):
    from srbio.io import image_origin

    image, _ = sample
    vol = image[:4, :30, :50]  # z, y, x
    stored = np.transpose(vol, (1, 2, 0))  # y, x, z
    path = _ome(tmp_path, "yxz.ome.zarr", stored, ["y", "x", "z"], [0.1, 0.2, 0.5],
                [1.0, 2.0, 3.0])
    data, spacing = open_lazy(path)
    np.testing.assert_array_equal(np.asarray(data), vol)
    assert spacing == (0.5, 0.1, 0.2)
    assert image_origin(path, 3) == (3.0, 1.0, 2.0)
    plain = zarr.create_array(str(tmp_path / "xy.zarr"), data=vol[0].T, chunks=(50, 30))
    plain.attrs.update({"axes": ["x", "y"], "spacing": [0.2, 0.1], "origin": [5.0, 7.0]})
    data, spacing = open_lazy(tmp_path / "xy.zarr")
    np.testing.assert_array_equal(np.asarray(data), vol[0])
    assert spacing == (0.1, 0.2) and image_origin(tmp_path / "xy.zarr", 2) == (7.0, 5.0)


@pytest.mark.parametrize("axes, types, match", [
    (["y", "y"], None, "name an axis twice"),
    (["q", "x"], ["space", "space"], "space axis 'q' .* is not z, y or x"),
    (["c", "y", "x"], ["channel", "space", "space"], "channel axis has 3 entries"),
])
def test_axes_that_cannot_be_read_are_refused_naming_them(tmp_path, axes, types, match):
    data = np.ones((3,) * (len(axes) - 2) + (8, 9), np.uint16)
    data[..., 0, 0] = 2
    path = _ome(tmp_path, "bad.ome.zarr", data, axes, [1.0] * len(axes), types=types)
    with pytest.raises(ValueError, match=match):
        open_lazy(path)


def test_a_time_axis_is_kept_by_open_series_and_refused_elsewhere(tmp_path, sample):
    from srbio.io.image import open_series

    image, _ = sample
    series = image[:3, :20, :30]  # three "time points"
    path = _ome(tmp_path, "t.ome.zarr", series, ["t", "y", "x"], [2.5, 0.1, 0.1],
                [10.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="time axis has 3 entries.*predict iterates"):
        open_lazy(path)
    data, spacing, lead = open_series(path)
    np.testing.assert_array_equal(np.asarray(data), series)
    assert spacing == (0.1, 0.1)
    assert (lead.name, lead.size, lead.kind, lead.step, lead.origin) == ("t", 3, "time", 2.5,
                                                                          10.0)
    plane = _ome(tmp_path, "one.ome.zarr", series[:1], ["t", "y", "x"], [1.0, 0.1, 0.1])
    assert open_series(plane)[2] is None and open_lazy(plane)[0].shape == (20, 30)


def test_a_zarr_v3_array_is_read_by_its_dimension_names(tmp_path, sample):
    image, _ = sample
    plane = image[3, :20, :30]
    zarr.create_array(str(tmp_path / "xy.zarr"), data=np.ascontiguousarray(plane.T),
                      chunks=(30, 20), dimension_names=["x", "y"])
    data, _ = open_lazy(tmp_path / "xy.zarr", spacing=(0.1, 0.2))
    np.testing.assert_array_equal(np.asarray(data), plane)


def test_an_origin_given_for_the_space_axes_only_follows_their_names(tmp_path):
    from srbio.io import image_origin

    arr = zarr.create_array(str(tmp_path / "cxy.zarr"), shape=(1, 30, 20), dtype="uint16",
                            chunks=(1, 30, 20))
    arr[:] = 1
    arr.attrs.update({"axes": ["c", "x", "y"], "origin": [5.0, 7.0]})
    assert image_origin(tmp_path / "cxy.zarr", 2) == (7.0, 5.0)
