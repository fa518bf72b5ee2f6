"""The bioimage.io model package format: its description (``rdf.yaml``), checks and zip.

A package is a folder holding ``rdf.yaml`` (a bioimage.io model description, format 0.5) and
every file it names: weights, test tensors, covers, documentation, attachments. This module
writes the description of an srbio super-resolution network from plain values (axes,
normalisation, file names, who made it), validates a package folder or zip with
``bioimageio.spec`` and zips a folder. It knows nothing of networks or models: the export
stage gathers the values.

The description says what srbio does around its network:

- **axes**: batch, channel, ([z,] y, x). Input spatial sizes are parameterized
  (``min + n·step``); each output spatial axis refers to its input axis with ``scale`` =
  1 / factor (0.5 for ×2: an output pixel is half an input pixel), so its size is
  input size × factor. The network's reach enters as the output ``halo`` (factor × the LR
  reach), which bioimage.io tools crop from tiles (and pad at image borders).
- **preprocessing**: srbio's fixed normalisation of the LR, ``(x − vmin) / (vmax − vmin)``,
  as ``scale_linear`` with gain 1/(vmax − vmin) and offset −vmin/(vmax − vmin);
- **postprocessing**: its inverse with the HR range, ``y · (vmax − vmin) + vmin``, so the
  output is in HR units, as ``srbio predict`` writes it.

Validation never touches the network: bioimageio.spec checks remote URLs and GitHub accounts
online when asked to check files. :func:`validate` therefore checks the format of the whole
description without file access, then the package's own files (hashes, test tensors,
documentation, covers) with remote URLs marked as known and account names left out.
"""

from __future__ import annotations

import copy
import logging
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from srbio.io.atomic import atomic_path

log = logging.getLogger(__name__)

RDF = "rdf.yaml"
INPUT, OUTPUT = "lr", "sr"  # tensor ids
# file names inside a package (flat: bioimage.io packages keep files at the top level)
TORCHSCRIPT, ONNX = "weights.torchscript.pt", "weights.onnx"
TEST_INPUT, TEST_OUTPUT = "test_input.npy", "test_output.npy"
SAMPLE_INPUT, SAMPLE_OUTPUT = "sample_input.tif", "sample_output.tif"
COVER, DOCUMENTATION = "cover.png", "README.md"
WEIGHTS = {"torchscript": TORCHSCRIPT, "onnx": ONNX}
HINT = ("bioimage.io packages need bioimageio.spec and bioimageio.core: pip install "
        "'srbio[bioimageio]'")


@dataclass(frozen=True)
class SpatialAxis:
    """One spatial axis of the network: its size rule, upsampling and reach (LR pixels)."""

    id: str  # "z", "y" or "x"
    factor: int  # output pixels per input pixel
    min: int  # smallest input size
    step: int = 1  # input sizes are min + n·step
    halo: int = 0  # LR pixels of context the network reaches (0: none declared)
    description: str = ""


@dataclass
class Card:
    """What a package says about itself besides its tensors and files."""

    name: str
    description: str
    authors: list[dict[str, Any]]
    license: str
    cite: list[dict[str, Any]]
    tags: list[str]
    maintainers: list[dict[str, Any]] = field(default_factory=list)
    git_repo: str | None = None
    covers: list[str] = field(default_factory=lambda: [COVER])
    attachments: list[str] = field(default_factory=list)
    documentation: str = DOCUMENTATION
    config: dict[str, Any] = field(default_factory=dict)  # more of config.bioimageio, srbio's


@dataclass
class Checked:
    """The outcome of validating a package: status, problems, warnings, the description."""

    status: str  # "valid-format" / "passed" when valid, "failed" otherwise
    problems: list[str]
    warnings: list[str]
    description: Any = None  # the bioimageio.spec description (None when invalid)

    @property
    def valid(self) -> bool:
        """Whether the package is valid (no errors)."""
        return self.status in ("valid-format", "passed")


def spec_versions() -> dict[str, str]:
    """The installed bioimageio.spec and bioimageio.core versions (RuntimeError: missing)."""
    try:
        import bioimageio.core
        import bioimageio.spec
    except ImportError:
        raise RuntimeError(HINT) from None
    return {"bioimageio.spec": str(bioimageio.spec.__version__),
            "bioimageio.core": str(bioimageio.core.__version__)}


def format_version() -> str:
    """The newest model description format the installed bioimageio.spec writes."""
    from bioimageio.spec.model.v0_5 import ModelDescr

    return str(ModelDescr.implemented_format_version)


def scale_linear(vmin: float, vmax: float, *, inverse: bool = False) -> dict[str, Any]:
    """The normalisation ``(x − vmin)/(vmax − vmin)`` (or its inverse) as ``scale_linear``."""
    if not vmax > vmin:
        raise ValueError(f"vmax ({vmax}) must be greater than vmin ({vmin})")
    span = float(vmax) - float(vmin)
    kwargs = ({"gain": span, "offset": float(vmin)} if inverse
              else {"gain": 1.0 / span, "offset": -float(vmin) / span})
    return {"id": "scale_linear", "kwargs": kwargs}


def _axes(spatial: Sequence[SpatialAxis], *, output: bool) -> list[dict[str, Any]]:
    channel = OUTPUT if output else INPUT
    axes: list[dict[str, Any]] = [{"type": "batch"},
                                  {"type": "channel", "channel_names": [channel]}]
    for a in spatial:
        axis: dict[str, Any] = {"type": "space", "id": a.id}
        if a.description:
            axis["description"] = a.description[:128]
        if not output:
            axis["size"] = {"min": a.min, "step": a.step}
        else:
            axis["scale"] = 1.0 / a.factor
            axis["size"] = {"tensor_id": INPUT, "axis_id": a.id}
            if a.halo:
                axis["halo"] = a.halo * a.factor
        axes.append(axis)
    return axes


def _check_axes(spatial: Sequence[SpatialAxis]) -> None:
    """Refuse axes whose sizes bioimage.io would compute differently from srbio."""
    for a in spatial:
        scale = 1.0 / a.factor
        for size in (a.min, a.min + a.step, a.min + 100 * a.step, 4099):
            if int(size * 1.0 / scale) != size * a.factor:
                raise ValueError(f"axis {a.id}: factor {a.factor} is not exact as scale {scale}")
        if a.halo and (a.halo * a.factor * scale != a.halo or a.min <= 2 * a.halo):
            raise ValueError(f"axis {a.id}: halo {a.halo} needs a minimum size above "
                             f"{2 * a.halo} (got {a.min})")


def _tensors(spatial: Sequence[SpatialAxis], lr: tuple[float, float],
             hr: tuple[float, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The input and output tensor descriptions."""
    float32 = {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}
    names = "".join(a.id for a in spatial)
    inp = {"id": INPUT, "description": f"LR image ({names}), raw intensities (any dtype)",
           "axes": _axes(spatial, output=False), "data": {"type": "float32"},
           "test_tensor": {"source": TEST_INPUT}, "sample_tensor": {"source": SAMPLE_INPUT},
           "preprocessing": [float32, scale_linear(*lr), float32]}
    out = {"id": OUTPUT, "description": f"super-resolved image ({names}) in HR intensity units",
           "axes": _axes(spatial, output=True), "data": {"type": "float32"},
           "test_tensor": {"source": TEST_OUTPUT}, "sample_tensor": {"source": SAMPLE_OUTPUT},
           "postprocessing": [scale_linear(*hr, inverse=True), float32]}
    return inp, out


def model_rdf(card: Card, spatial: Sequence[SpatialAxis], *, lr: tuple[float, float],
              hr: tuple[float, float], weights: Mapping[str, Mapping[str, Any]],
              tolerance: float) -> dict[str, Any]:
    """The bioimage.io model description (``rdf.yaml`` content) of an srbio network.

    Parameters
    ----------
    card : Card
        Name, description, people, licence, citations, tags, file names.
    spatial : sequence of SpatialAxis
        The network's spatial axes in array order (z, y, x or y, x).
    lr, hr : (float, float)
        The fixed normalisation (vmin, vmax) of the input and of the output.
    weights : mapping
        Weights format (``torchscript``, ``onnx``) → its fields besides ``source``
        (``pytorch_version``, ``opset_version``, ``parent``, ``comment``).
    tolerance : float
        Absolute tolerance (HR units) of reproducing the test output; relative tolerance 0.

    Returns
    -------
    dict
        The description, file paths relative to the package folder.
    """
    _check_axes(spatial)
    unknown = sorted(set(weights) - set(WEIGHTS))
    if unknown or not weights:
        raise ValueError(f"weights formats {unknown or '(none)'}: expected {sorted(WEIGHTS)}")
    inp, out = _tensors(spatial, lr, hr)
    rdf: dict[str, Any] = {
        "type": "model", "format_version": format_version(), "name": card.name,
        "description": card.description, "authors": card.authors, "cite": card.cite,
        "license": card.license, "tags": card.tags,
        "documentation": {"source": card.documentation},
        "covers": [{"source": c} for c in card.covers],
        "attachments": [{"source": a} for a in card.attachments],
        "inputs": [inp], "outputs": [out],
        "weights": {fmt: {"source": WEIGHTS[fmt], **fields} for fmt, fields in weights.items()},
        "config": {**card.config, "bioimageio": {
            **card.config.get("bioimageio", {}),
            "reproducibility_tolerance": [{
                "absolute_tolerance": float(tolerance), "relative_tolerance": 0.0,
                "mismatched_elements_per_million": 0}]}},
    }
    if card.maintainers:
        rdf["maintainers"] = card.maintainers
    if card.git_repo:
        rdf["git_repo"] = card.git_repo
    return rdf


class _Dumper(yaml.SafeDumper):
    """YAML without anchors and aliases (repeated values written out, as people write them)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: D102
        return True


def write_rdf(folder: str | os.PathLike, rdf: Mapping[str, Any]) -> Path:
    """Write ``rdf.yaml`` into a package folder (atomically)."""
    path = Path(folder) / RDF
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.dump(dict(rdf), Dumper=_Dumper, sort_keys=False,
                                 allow_unicode=True))
    return path


def card_problems(*, authors: Sequence[Mapping[str, Any]],
                  maintainers: Sequence[Mapping[str, Any]], license: str,
                  cite: Sequence[Mapping[str, Any]]) -> list[str]:
    """What bioimageio.spec refuses in the people, licence and citations of a package.

    Checked without the network (GitHub accounts and URLs are not looked up), before any
    file is written. Each problem starts with its key (``authors[0].orcid``, ``license``).
    """
    spec_versions()
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model.v0_5 import Author, CiteEntry, LicenseId, Maintainer
    from pydantic import ValidationError

    problems = []
    with ValidationContext(perform_io_checks=False, log_warnings=False):
        for key, cls, items in (("authors", Author, authors), ("maintainers", Maintainer,
                                                               maintainers), ("cite", CiteEntry, cite)):
            for i, item in enumerate(items):
                try:
                    cls.model_validate(dict(item))
                except ValidationError as exc:
                    problems += [f"{key}[{i}].{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in exc.errors()]
        try:
            LicenseId(license)
        except ValidationError:
            problems.append(f"license: {license!r} is not an SPDX licence identifier "
                            f"bioimage.io accepts (e.g. CC-BY-4.0, CC0-1.0, MIT, BSD-3-Clause)")
    return problems


def remote_urls(value: Any) -> list[str]:
    """Every http(s) URL in a description (cite urls, git_repo, …), in order."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str) and v.startswith(("http://", "https://")):
            found.append(v)
        elif isinstance(v, Mapping):
            for item in v.values():
                walk(item)
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item)

    walk(value)
    return list(dict.fromkeys(found))


def _offline(content: Mapping[str, Any]) -> dict[str, Any]:
    """The description without GitHub account names (bioimageio.spec looks them up online)."""
    out = copy.deepcopy(dict(content))
    out.pop("maintainers", None)
    out["authors"] = [{k: v for k, v in a.items() if k != "github_user"}
                      for a in out.get("authors", []) if isinstance(a, Mapping)]
    return out


def _entries(summary: Any, kind: str) -> Iterator[str]:
    for detail in summary.details:
        for entry in getattr(detail, kind):
            loc = ".".join(str(p) for p in entry.loc)
            yield f"{loc or detail.name}: {entry.msg}"


def _read(source: Path) -> tuple[dict[str, Any], Any, str]:
    """The description of a package folder or zip, its root (folder or ZipFile), file name."""
    if source.is_dir():
        name = next((n for n in (RDF, "bioimageio.yaml") if (source / n).is_file()), None)
        if name is None:
            raise ValueError(f"{source}: no {RDF} in this package folder")
        return yaml.safe_load((source / name).read_text()), source, name
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{source}: not a package folder or zip ({exc})") from None
    names = [n for n in archive.namelist() if n in (RDF, "bioimageio.yaml")]
    if not names:
        raise ValueError(f"{source}: no {RDF} (or bioimageio.yaml) in this zip")
    return yaml.safe_load(archive.read(names[0])), archive, names[0]


def validate(source: str | os.PathLike) -> Checked:
    """Validate a package folder or zip with bioimageio.spec, without the network.

    Two passes: the whole description with ``perform_io_checks`` off (format, fields,
    licence, axes, sizes, processing), then the package's files with it on (every file
    present and hashed, test tensors that fit the axes, documentation, covers), remote URLs
    given as known and GitHub account names left out: those two are only checked online.

    Returns
    -------
    Checked
        ``status`` "valid-format" (bioimageio.spec's word for a valid description) or
        "failed", every error and warning as ``location: message``.
    """
    spec_versions()
    from bioimageio.spec import InvalidDescr, ValidationContext, build_description

    content, root, name = _read(Path(source))
    whole = build_description(copy.deepcopy(content), context=ValidationContext(
        root=root, file_name=name, perform_io_checks=False, log_warnings=False))
    files = build_description(_offline(content), context=ValidationContext(
        root=root, file_name=name, perform_io_checks=True, log_warnings=False,
        known_files=dict.fromkeys(remote_urls(content))))
    problems, warnings = [], []
    for descr in (whole, files):
        problems += [p for p in _entries(descr.validation_summary, "errors") if p not in problems]
        warnings += [w for w in _entries(descr.validation_summary, "warnings")
                     if w not in warnings]
    failed = problems or isinstance(whole, InvalidDescr) or isinstance(files, InvalidDescr)
    return Checked("failed" if failed else str(files.validation_summary.status), problems,
                   warnings, None if failed else files)


def pack(folder: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Zip a package folder with ``bioimageio.spec.save_bioimageio_package`` (no network)."""
    spec_versions()
    from bioimageio.spec import ValidationContext, save_bioimageio_package

    with atomic_path(path) as tmp, ValidationContext(perform_io_checks=False,
                                                     log_warnings=False):
        save_bioimageio_package(Path(folder) / RDF, output_path=tmp)
    return Path(path)
