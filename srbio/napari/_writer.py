"""napari writer: an image layer to an OME-Zarr 0.5 with a pyramid, at its scale and position."""

from __future__ import annotations

from typing import Any

from srbio.stages.inspect import write_layer


def write_ome_zarr(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer (npe2 single-layer writer); its level 0 when multiscale."""
    if meta.get("rgb"):
        raise ValueError(f"layer {meta.get('name')!r} is RGB; srbio writes single-channel "
                         f"images")
    if meta.get("multiscale") or isinstance(data, list):
        data = data[0]
    axes = (meta.get("metadata") or {}).get("axes")
    axes = axes if axes and len(axes) == data.ndim else None
    written = write_layer(path, data, spacing=meta["scale"], translation=meta["translate"],
                          axes=axes, name=meta.get("name"))
    return [str(written)]
