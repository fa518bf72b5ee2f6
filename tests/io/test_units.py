"""Length units at the io edge: every spacing inside srbio is in µm."""

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.writer import write_multiscales_metadata

from srbio.io import open_lazy, read_image, read_ome_zarr_spacing, read_tiff
from srbio.io.zarr import to_micrometres


def _ome_zarr(path, *, scale, units, axes=("z", "y", "x"), shape=(2, 8, 8)):
    group = zarr.open_group(str(path), mode="w-", zarr_format=3)
    arr = group.create_array("0", shape=shape, dtype="uint16", chunks=shape, fill_value=0)
    arr[:] = 1
    types = {"c": "channel", "t": "time"}
    meta_axes = []
    for name, unit in zip(axes, units, strict=True):
        axis = {"name": name, "type": types.get(name, "space")}
        if unit is not None:
            axis["unit"] = unit
        meta_axes.append(axis)
    datasets = [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]}]
    write_multiscales_metadata(group, datasets, fmt=FormatV05(), axes=meta_axes)
    return path


def _imagej_tiff(path, unit, *, shape=(3, 16, 16)):
    image = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    tifffile.imwrite(path, image, imagej=True, resolution=(1 / 100, 1 / 100),
                     metadata={"unit": unit, "spacing": 300, "axes": "ZYX"})
    return path


# --- the unit table ------------------------------------------------------------------------------

@pytest.mark.parametrize("unit, expected", [
    ("micrometer", 100.0), ("um", 100.0), ("µm", 100.0), ("\u03bcm", 100.0), ("\\u00B5m", 100.0),
    ("micron", 100.0), ("Microns", 100.0), ("MICROMETRE", 100.0), (None, 100.0),
    ("nanometer", 0.1), ("nm", 0.1), ("NM", 0.1), ("millimeter", 1e5), ("mm", 1e5), ("cm", 1e6),
    ("m", 1e8), ("meter", 1e8), ("pm", 1e-4), ("picometer", 1e-4), ("angstrom", 1e-2),
    ("inch", 2.54e6), ("foot", 3.048e7), ("kilometer", 1e11),
])
def test_to_micrometres_knows_ngff_units_and_common_spellings(unit, expected):
    assert to_micrometres(100, unit, source="f") == pytest.approx(expected, rel=1e-12)


def test_nanometres_convert_exactly():
    assert to_micrometres(300, "nm", source="f") == 0.3
    assert to_micrometres(100, "nanometer", source="f") == 0.1


def test_unknown_unit_names_source_unit_and_accepted_units():
    with pytest.raises(ValueError, match=r"img\.zarr: axis 'x'.*'furlongs'.*nanometer.*micron"):
        to_micrometres(1.0, "furlongs", source="img.zarr: axis 'x'")


# --- OME-Zarr ------------------------------------------------------------------------------------

def test_ome_zarr_in_nanometres_reads_as_micrometres(tmp_path):
    path = _ome_zarr(tmp_path / "nm.ome.zarr", scale=(300, 100, 100), units=("nanometer",) * 3)
    data, spacing = open_lazy(path)
    assert data.shape == (2, 8, 8)
    assert spacing == (0.3, 0.1, 0.1)


def test_ome_zarr_in_millimetres_and_mixed_units(tmp_path):
    path = _ome_zarr(tmp_path / "mm.ome.zarr", scale=(0.0003, 0.0001, 0.0001), units=("millimeter",) * 3)
    assert open_lazy(path)[1] == pytest.approx((0.3, 0.1, 0.1), rel=1e-12)
    mixed = _ome_zarr(tmp_path / "mixed.ome.zarr", scale=(1.5, 100, 100),
                      units=("micrometer", "nanometer", None))
    assert open_lazy(mixed)[1] == pytest.approx((1.5, 0.1, 100.0), rel=1e-12)


def test_ome_zarr_time_and_channel_units_are_not_lengths(tmp_path):
    path = _ome_zarr(tmp_path / "tczyx.ome.zarr", scale=(2.5, 1.0, 300, 100, 100),
                     units=("second", None, "nanometer", "nanometer", "nanometer"),
                     axes=("t", "c", "z", "y", "x"), shape=(1, 1, 2, 8, 8))
    data, spacing = open_lazy(path)
    assert data.shape == (2, 8, 8)
    assert spacing == (0.3, 0.1, 0.1)
    group = zarr.open_group(str(path), mode="r")
    assert read_ome_zarr_spacing(group) == ("0", (2.5, 1.0, 0.3, 0.1, 0.1), ["t", "c", "z", "y", "x"])


def test_ome_zarr_unknown_unit_names_file_axis_and_unit(tmp_path):
    path = _ome_zarr(tmp_path / "bad.ome.zarr", scale=(1, 1, 1), units=("micrometer", "furlongs", "um"))
    with pytest.raises(ValueError, match=r"bad\.ome\.zarr.*axis 'y'.*'furlongs'.*accepted.*nanometer"):
        open_lazy(path)


def test_ome_zarr_in_pixels_has_no_pixel_size(tmp_path):
    path = _ome_zarr(tmp_path / "px.ome.zarr", scale=(1, 1, 1), units=("pixel",) * 3)
    with pytest.raises(ValueError, match="holds no pixel size"):
        open_lazy(path)
    assert open_lazy(path, spacing=(0.3, 0.1, 0.1))[1] == (0.3, 0.1, 0.1)


# --- plain zarr array ----------------------------------------------------------------------------

def test_plain_zarr_spacing_with_unit_attribute(tmp_path):
    store = tmp_path / "plain.zarr"
    arr = zarr.create_array(str(store), shape=(1, 8, 8), dtype="uint16", chunks=(1, 8, 8))
    arr[:] = 1
    arr.attrs.update({"axes": ["c", "y", "x"], "spacing": [1.0, 100, 100], "unit": "nanometer"})
    data, spacing = open_lazy(store)
    assert data.shape == (8, 8) and spacing == (0.1, 0.1)


def test_plain_zarr_without_unit_is_micrometres_and_bad_unit_fails(tmp_path):
    store = tmp_path / "plain.zarr"
    arr = zarr.create_array(str(store), shape=(2, 8, 8), dtype="uint16", chunks=(2, 8, 8))
    arr[:] = np.arange(128, dtype=np.uint16).reshape(2, 8, 8)  # every chunk written
    arr.attrs.update({"spacing": [0.3, 0.1, 0.1]})
    assert open_lazy(store)[1] == (0.3, 0.1, 0.1)
    arr.attrs.update({"unit": ["um", "nm", "nm"], "spacing": [0.3, 100, 100]})
    assert open_lazy(store)[1] == (0.3, 0.1, 0.1)
    arr.attrs.update({"unit": "furlongs"})
    with pytest.raises(ValueError, match=r"plain\.zarr.*'furlongs'"):
        open_lazy(store)


# --- ImageJ TIFF ---------------------------------------------------------------------------------

def test_imagej_tiff_in_nanometres_reads_as_micrometres(tmp_path):
    path = _imagej_tiff(tmp_path / "nm.tif", "nm")
    assert open_lazy(path)[1] == (0.3, 0.1, 0.1)
    assert read_image(path)[1] == (0.3, 0.1, 0.1)


@pytest.mark.parametrize("unit", ["mm", "millimeter"])
def test_imagej_tiff_in_millimetres(tmp_path, unit):
    path = _imagej_tiff(tmp_path / "mm.tif", unit)
    assert read_tiff(path)[1] == pytest.approx((3e5, 1e5, 1e5), rel=1e-12)


@pytest.mark.parametrize("unit", ["micron", "microns", "\\u00B5m", "um", "UM"])
def test_imagej_micron_spellings(tmp_path, unit):
    path = _imagej_tiff(tmp_path / "um.tif", unit)
    assert read_tiff(path)[1] == (300.0, 100.0, 100.0)


def test_imagej_tiff_unknown_unit_names_file_and_unit(tmp_path):
    path = _imagej_tiff(tmp_path / "bad.tif", "furlongs")
    for read in (read_tiff, open_lazy):
        with pytest.raises(ValueError, match=r"bad\.tif: ImageJ unit: unknown length unit 'furlongs'"):
            read(path)


def test_imagej_tiff_in_pixels_has_no_pixel_size(tmp_path):
    path = _imagej_tiff(tmp_path / "px.tif", "pixel")
    assert read_tiff(path)[1] is None
    with pytest.raises(ValueError, match=r"px\.tif: the file holds no pixel size"):
        open_lazy(path)


def test_tiff_resolution_unit_centimetre_still_applies(tmp_path):
    path = tmp_path / "cm.tif"
    tifffile.imwrite(path, np.ones((16, 16), np.uint16), resolution=(1e4, 1e4), resolutionunit="CENTIMETER")
    assert read_tiff(path)[1] == pytest.approx((1.0, 1.0))
