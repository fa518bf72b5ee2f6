"""Stage ``export``: a model file in; TorchScript and/or ONNX files and ``export.json`` out."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import Export, ExportedFile, ExportFiles
from srbio.models.registry import network_info

log = logging.getLogger(__name__)

TOLERANCE = 1e-4  # normalised units: 1e-4 of the HR range, far below one 16-bit level of noise


@releases_claims
def run_export(model: str | os.PathLike, out_dir: str | os.PathLike,
               formats: Sequence[str] = ("torchscript", "onnx"), *, overwrite: bool = False
               ) -> ExportFiles:
    """Export a trained model so it runs outside Python; check each export reproduces it.

    Writes ``model.torchscript.pt`` and/or ``model.onnx`` with ``export.json`` (the model
    file's header: network, scale, normalisation, pixel sizes; the largest difference of each
    export to the PyTorch network). Nothing is written when an export differs by more than
    :data:`TOLERANCE`.
    """
    claim(out_dir, "export", inputs=[model], overwrite=overwrite)
    from srbio.inference import load_model
    from srbio.inference.export import FORMATS, export

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"export formats {unknown or '(none)'}: expected some of "
                         f"{', '.join(FORMATS)}")
    net, header = load_model(model)
    info = network_info(header.network.name)
    done = {}
    with replace_folder(out_dir, "export") as tmp:
        staged = ExportFiles(tmp)
        for fmt in dict.fromkeys(formats):
            path = getattr(staged, fmt)
            diff, shape = export(net, path, fmt, min_side=info.min_input, dims=info.dims)
            log.info("%s: max |%s - PyTorch| = %.3g on input %s", path.name, fmt, diff, shape)
            if not diff <= TOLERANCE:
                raise RuntimeError(f"{model}: the {fmt} export differs from PyTorch by {diff:.3g}"
                                   f" (tolerance {TOLERANCE:g}); nothing was written")
            done[fmt] = ExportedFile(file=path.name, max_abs_diff=diff, test_shape=shape)
        Export(model=str(model), header=header, formats=done).write(staged.record)
    return ExportFiles(out_dir)
