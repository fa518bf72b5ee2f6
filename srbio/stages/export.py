"""Stage ``export``: a model file in; TorchScript, ONNX and/or a bioimage.io package out.

Each run writes ``export.json`` (:class:`~srbio.io.records.Export`) beside its files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from srbio.config import ExportConfig
from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import Export, ExportedFile, ExportFiles
from srbio.models.registry import network_info
from srbio.stages.common import lineage

log = logging.getLogger(__name__)

TOLERANCE = 1e-4  # normalised units: 1e-4 of the HR range, far below one 16-bit level of noise


BIOIMAGEIO = "bioimageio"  # the format of a bioimage.io model package (srbio.stages.bioimageio)


def _check_formats(formats: Sequence[str], cfg: ExportConfig | None) -> ExportConfig:
    """Refuse unknown formats, and a bioimage.io package without authors or its packages."""
    from srbio.inference.export import FORMATS

    unknown = sorted(set(formats) - {*FORMATS, BIOIMAGEIO})
    if unknown or not formats:
        raise ValueError(f"export formats {unknown or '(none)'}: expected some of "
                         f"{', '.join((*FORMATS, BIOIMAGEIO))}")
    cfg = cfg or ExportConfig()
    if BIOIMAGEIO in formats:
        from srbio.io.bioimageio import spec_versions
        from srbio.stages.bioimageio import check_config

        check_config(cfg)
        spec_versions()  # bioimageio.spec and .core installed
    return cfg


@releases_claims
def run_export(model: str | os.PathLike, out_dir: str | os.PathLike,
               formats: Sequence[str] = ("torchscript", "onnx"), *, overwrite: bool = False,
               cfg: ExportConfig | None = None, test_input: str | os.PathLike | None = None
               ) -> ExportFiles:
    """Export a trained model so it runs outside Python; check each export reproduces it.

    Writes ``model.torchscript.pt`` and/or ``model.onnx`` with ``export.json`` (the model
    file's header: network, scale, normalisation, pixel sizes; the largest difference of each
    export to the PyTorch network). Nothing is written when an export differs by more than
    :data:`TOLERANCE`.

    Format ``bioimageio`` adds a bioimage.io model package: the folder ``bioimageio/`` and
    ``model.bioimageio.zip`` (:func:`srbio.stages.bioimageio.write_package`), described by
    ``cfg`` (authors, licence, citations; the config's ``export`` section) and tested on
    real data (``test_input``, else the model's own, else srbio's sample). Nothing is written
    when bioimageio.spec finds it invalid or bioimageio.core's test fails.
    """
    cfg = _check_formats(formats, cfg)
    claim(out_dir, "export", inputs=[model, *([test_input] if test_input else [])],
          overwrite=overwrite)
    from srbio.inference import load_model
    from srbio.inference.export import export

    net, header = load_model(model)
    info = network_info(header.network.name)
    done = {}
    with replace_folder(out_dir, "export") as tmp:
        staged = ExportFiles(tmp)
        for fmt in dict.fromkeys(f for f in formats if f != BIOIMAGEIO):
            path = getattr(staged, fmt)
            diff, shape = export(net, path, fmt, min_side=info.min_input, dims=info.dims)
            log.info("%s: max |%s - PyTorch| = %.3g on input %s", path.name, fmt, diff, shape)
            if not diff <= TOLERANCE:
                raise RuntimeError(f"{model}: the {fmt} export differs from PyTorch by {diff:.3g}"
                                   f" (tolerance {TOLERANCE:g}); nothing was written")
            done[fmt] = ExportedFile(file=path.name, max_abs_diff=diff, test_shape=shape)
        record = Export(model=str(model), header=header, formats=done,
                        **lineage({"export": cfg} if BIOIMAGEIO in formats else {},
                                  [("model", model),
                                   *([("test_input", test_input)] if test_input else [])]))
        if BIOIMAGEIO in formats:
            record = _package(staged, model, net, header, cfg, record, test_input)
        record.write(staged.record)
    out = ExportFiles(out_dir)
    if record.bioimageio is not None:
        pkg = record.bioimageio
        log.info("bioimage.io package %r: %s and %s (bioimageio.spec: %s; bioimageio.core "
                 "test: %s, max |output - test output| %s HR units, tolerance %.3g; test "
                 "input %s: %s)", pkg.name, out.bioimageio, out.bioimageio_zip, pkg.validation,
                 pkg.test, {k: float(f"{v:.3g}") for k, v in pkg.test_max_abs_diff.items()},
                 pkg.tolerance, pkg.test_shape, pkg.test_input)
    return out


def _package(staged: ExportFiles, model: str | os.PathLike, net, header, cfg: ExportConfig,
             record: Export, test_input: str | os.PathLike | None) -> Export:
    """The record with the bioimage.io package written into ``staged`` (see run_export)."""
    from srbio.stages.bioimageio import write_package

    pkg = write_package(staged, model, net, header, cfg, record, tolerance=TOLERANCE,
                        test_input=test_input)
    return record.model_copy(update={"bioimageio": pkg})
