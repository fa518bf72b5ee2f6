import numpy as np
import pytest

from srbio.io import open_lazy, read_image, read_tiff, write_tiff


@pytest.mark.parametrize(
    ("shape", "dtype", "spacing"),
    [((20, 30), np.uint8, (0.2, 0.3)), ((4, 20, 30), np.uint16, (0.157, 0.1015, 0.1015)),
     ((20, 30), np.float32, (0.65, 0.65))],
)
def test_roundtrip_keeps_data_and_pixel_size(tmp_path, shape, dtype, spacing):
    data = (np.random.default_rng(0).random(shape) * 200).astype(dtype)
    path = write_tiff(tmp_path / "a.tif", data, spacing=spacing)
    back, sp = read_tiff(path)
    np.testing.assert_array_equal(back, data)
    assert back.dtype == dtype
    np.testing.assert_allclose(sp, spacing, rtol=1e-6)


def test_file_without_pixel_size_reports_none_and_read_image_says_where_to_put_it(tmp_path):
    path = write_tiff(tmp_path / "nospacing.tif", np.arange(600, dtype=np.uint16).reshape(20, 30),
                      spacing=None)
    assert read_tiff(path)[1] is None
    with pytest.raises(ValueError, match=r"nospacing\.tif.*no pixel size.*config\.yaml"):
        read_image(path)
    image, sp = read_image(path, spacing=(0.1, 0.1))
    assert sp == (0.1, 0.1) and image.shape == (20, 30)


def test_corrupt_tiff_names_the_file(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage that is not a tiff")
    with pytest.raises(ValueError, match="broken.tif"):
        read_image(bad, spacing=(1, 1))


@pytest.mark.parametrize(
    ("data", "error", "pattern"),
    [((np.zeros((8, 8)) + np.arange(8)).astype(np.int32), TypeError, "dtype int32 is not supported"),
     (np.full((8, 8), 7, np.uint16), ValueError, "constant"),
     (np.array([[1.0, np.nan], [2.0, 3.0]] * 4, np.float32), ValueError, "NaN"),
     (np.zeros((2, 3, 4, 5), np.uint16), ValueError, "single-channel"),
     (np.zeros((1, 8), np.uint16), ValueError, "empty or degenerate")],
)
def test_bad_images_are_rejected_with_the_file_name(tmp_path, data, error, pattern):
    import tifffile

    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, data)
    with pytest.raises(error, match=pattern) as info:
        read_image(path, spacing=(1.0,) * min(data.ndim, 3))
    assert "bad.tif" in str(info.value)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.tif"):
        open_lazy(tmp_path / "nothere.tif")
    other = tmp_path / "image.png"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown image format"):
        open_lazy(other)


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    with pytest.raises(ValueError):
        write_tiff(tmp_path / "x.tif", np.zeros((2, 3, 4, 5), np.uint16), spacing=None)
    assert list(tmp_path.iterdir()) == []


def test_tiff_is_opened_lazily_page_by_page(tmp_path):
    import dask.array as da

    data = np.random.default_rng(0).integers(0, 999, (6, 40, 50)).astype(np.uint16)
    path = write_tiff(tmp_path / "v.tif", data, spacing=(0.3, 0.1, 0.1))
    lazy, spacing = open_lazy(path)
    assert isinstance(lazy, da.Array) and lazy.chunksize == (1, 40, 50)
    assert spacing == pytest.approx((0.3, 0.1, 0.1))
    np.testing.assert_array_equal(lazy[4].compute(), data[4])


def test_a_one_micrometre_pixel_is_a_pixel_size_not_a_missing_one(tmp_path):
    data = np.arange(600, dtype=np.uint16).reshape(20, 30)
    path = write_tiff(tmp_path / "one.tif", data, spacing=(1.0, 1.0))
    assert read_tiff(path)[1] == pytest.approx((1.0, 1.0))
    path = write_tiff(tmp_path / "vol.tif", np.stack([data, data]), spacing=(2.0, 1.0, 1.0))
    assert read_tiff(path)[1] == pytest.approx((2.0, 1.0, 1.0))


def test_an_imagej_time_series_keeps_its_time_axis_only_where_asked(tmp_path, sample):
    import tifffile

    from srbio.io.image import open_series

    image, _ = sample
    stack = image[:6, :20, :30].reshape(3, 2, 20, 30)  # t, z, y, x
    path = tmp_path / "tzyx.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(10.0, 10.0),
                     metadata={"axes": "TZYX", "unit": "um", "spacing": 0.5, "finterval": 4.0})
    with pytest.raises(ValueError, match="tzyx.tif.*time axis has 3 entries"):
        open_lazy(path)
    data, spacing, lead = open_series(path)
    np.testing.assert_array_equal(np.asarray(data), stack)
    assert spacing == pytest.approx((0.5, 0.1, 0.1))
    assert (lead.name, lead.size, lead.step, lead.unit) == ("t", 3, 4.0, "second")


def test_ome_xml_physical_sizes_are_read_in_their_units(tmp_path):
    import tifffile

    path = tmp_path / "a.ome.tif"
    tifffile.imwrite(path, np.ones((3, 20, 30), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 104.0, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 0.104, "PhysicalSizeZ": 0.5})
    assert open_lazy(path)[1] == pytest.approx((0.5, 0.104, 0.104))


def test_several_series_or_more_pages_than_announced_are_refused(tmp_path):
    import tifffile

    multi = tmp_path / "multi.ome.tif"
    with tifffile.TiffWriter(multi, ome=True) as w:
        w.write(np.ones((3, 20, 30), np.uint16), metadata={"axes": "ZYX"})
        w.write(np.ones((3, 10, 30), np.uint16), metadata={"axes": "ZYX"})
    with pytest.raises(ValueError, match=r"multi.ome.tif: holds 2 image series .*\(3, 10, 30\)"):
        open_lazy(multi)
    more = tmp_path / "more.tif"  # ImageJ metadata edited to announce 3 of its 5 planes
    tifffile.imwrite(more, np.ones((5, 20, 30), np.uint16), imagej=True,
                     metadata={"axes": "ZYX"})
    data = bytearray(more.read_bytes())
    for old, new in ((b"images=5", b"images=3"), (b"slices=5", b"slices=3")):
        i = data.find(old)
        data[i:i + len(old)] = new
    more.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="more.tif: holds 5 pages but its ImageJ metadata "
                                         "announces 3 planes"):
        open_lazy(more)


def test_a_tiff_axis_of_unknown_meaning_is_refused_not_taken_for_positions(tmp_path):
    import tifffile

    from srbio.io.image import open_series

    path = tmp_path / "phases.ome.tif"  # SIM raw data: 3 phases
    tifffile.imwrite(path, np.ones((3, 20, 30), np.uint16), ome=True,
                     metadata={"axes": "AYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1})
    with pytest.raises(ValueError, match="phases.ome.tif: its 'tifffile axis a' axis has 3 "
                                         ".*select one entry"):
        open_series(path)
