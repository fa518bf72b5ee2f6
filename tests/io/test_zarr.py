import numpy as np
import pytest

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
            with pytest.raises(ValueError, match="axis 'c' has length 2"):
                open_lazy(store)
