"""napari sample data: the demo's pair (the bundled real HR volume, its simulated LR)."""

from __future__ import annotations

from typing import Any

from srbio.stages.inspect import sample_pair as _pair


def sample_pair() -> list[tuple[Any, dict[str, Any], str]]:
    """HR (magenta) and LR as acquired (green), each at its own pixel size."""
    pair = _pair()
    looks = {"HR": "magenta", "LR": "green"}
    return [(data, {"name": f"lls {name}", "scale": list(spacing), "colormap": looks[name],
                    "blending": "additive"}, "image") for name, (data, spacing) in pair.items()]
