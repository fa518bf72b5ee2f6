"""File formats: TIFF and (OME-)Zarr. Nothing else in srbio knows about them."""

from srbio.io.image import (
    SUPPORTED_DTYPES,
    check_image,
    image_origin,
    open_lazy,
    read_image,
    read_mask,
    write_image,
)
from srbio.io.tiff import read_tiff, write_tiff
from srbio.io.zarr import (
    create_ome_zarr,
    open_zarr,
    read_ome_zarr_attrs,
    read_ome_zarr_spacing,
    set_ome_zarr_attrs,
)

__all__ = [
    "SUPPORTED_DTYPES",
    "check_image",
    "image_origin",
    "create_ome_zarr",
    "open_lazy",
    "open_zarr",
    "read_image",
    "read_mask",
    "read_ome_zarr_attrs",
    "read_ome_zarr_spacing",
    "read_tiff",
    "set_ome_zarr_attrs",
    "write_image",
    "write_tiff",
]
