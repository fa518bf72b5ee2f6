"""The export stage's bioimage.io model package (``srbio export --format bioimageio``).

:func:`write_package` gathers what the package says from the model file and srbio itself:
the network's axes, upsampling factors and measured reach (:func:`plan`), real test data
(:func:`real_test_input`) and srbio's own prediction of it, covers, a README and srbio's records as
attachments. The description format, its validation and the zip are
:mod:`srbio.io.bioimageio`'s; running the package with bioimageio.core is
:mod:`srbio.inference.bioimageio`'s. Nothing is kept unless bioimageio.spec finds the folder
and the zip valid and bioimageio.core reproduces the test output with every weights format.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from srbio.config import ExportConfig
from srbio.io import bioimageio as bio
from srbio.io import read_image
from srbio.io.outputs import read_json_or_none
from srbio.io.records import (
    BioimageioExport,
    Export,
    ExportedFile,
    ExportFiles,
    ModelHeader,
    Patches,
    TrainFiles,
    patches_record_path,
    write_json,
)
from srbio.io.tiff import write_tiff
from srbio.models.registry import network_info
from srbio.provenance import provenance

log = logging.getLogger(__name__)

TOLERANCE = 1e-3  # of the HR range: the test output's absolute tolerance (float32, GPUs' TF32)
TEST_SIDE, TEST_DEPTH = 64, 4  # LR size of a test input cut from a larger image (at least)
_RCAN = {"text": "Zhang, Li, Li, Wang, Zhong, Fu: Image super-resolution using very deep "
         "residual channel attention networks. ECCV 2018", "doi": "10.1007/978-3-030-01234-2_18"}
NETWORK_CITATIONS: dict[str, list[dict[str, str]]] = {  # each network's own paper
    "rcan": [_RCAN],
    "rcan3d": [_RCAN, {"text": "Chen et al.: Three-dimensional residual channel attention "
                       "networks denoise and sharpen fluorescence microscopy image volumes. "
                       "Nat. Methods 18, 678-687 (2021)", "doi": "10.1038/s41592-021-01155-x"}],
    "edsr": [{"text": "Lim et al.: Enhanced deep residual networks for single image "
              "super-resolution. CVPRW 2017", "url": "https://arxiv.org/abs/1707.02921"}],
    "rlfn": [{"text": "Kong et al.: Residual local feature network for efficient "
              "super-resolution. CVPRW 2022", "url": "https://arxiv.org/abs/2205.07514"}],
    "a2n": [{"text": "Chen, Gu, Zhang: Attention in attention network for image "
             "super-resolution. 2021", "url": "https://arxiv.org/abs/2104.09497"}],
    "srresnet": [{"text": "Ledig et al.: Photo-realistic single image super-resolution using a "
                  "generative adversarial network. CVPR 2017",
                  "url": "https://arxiv.org/abs/1609.04802"}],
}


def check_config(cfg: ExportConfig) -> None:
    """Refuse a config a package cannot be made from (before anything is written).

    Raises
    ------
    ValueError
        Naming the key (``export.authors``) when the package would have no author.
    """
    if not cfg.authors:
        raise ValueError("export.authors is empty; a bioimage.io package needs at "
                         "least one author. Add to config.yaml:\n  export:\n    authors:\n"
                         "      - {name: Your Name, affiliation: Your Lab}\n"
                         "(and pass --config config.yaml, or --settings "
                         "'{\"export\": {\"authors\": [{\"name\": \"Your Name\"}]}}')")
    problems = bio.card_problems(
        authors=[a.model_dump(exclude_none=True) for a in cfg.authors],
        maintainers=[m.model_dump(exclude_none=True) for m in cfg.maintainers],
        license=cfg.license, cite=[c.model_dump(exclude_none=True) for c in cfg.cite])
    if problems:
        raise ValueError("bioimage.io refuses the config's export section:\n  "
                         + "\n  ".join(f"export.{p}" for p in problems))


# ----------------------------------------------------------------------------- the network

@dataclass(frozen=True)
class Plan:
    """The spatial axes of a network as the package declares them."""

    dims: int
    axes: tuple[bio.SpatialAxis, ...]

    @property
    def factors(self) -> list[int]:  # noqa: D102
        return [a.factor for a in self.axes]

    @property
    def halos(self) -> list[int]:  # noqa: D102
        return [a.halo for a in self.axes]

    @property
    def mins(self) -> list[int]:  # noqa: D102
        return [a.min for a in self.axes]


def plan(net: torch.nn.Module, header: ModelHeader) -> Plan:
    """Axes of the package: factors, measured reach as halo, the smallest input it allows.

    The reach is :func:`srbio.inference.receptive_field`'s (what ``srbio predict`` uses for
    ``halo: auto``); an input axis must hold more than twice the halo (bioimage.io crops it
    from both sides) and at least the network's smallest input.
    """
    from srbio.inference import receptive_field

    spec = header.network
    info = network_info(spec.name)
    reach, z_reach = receptive_field(net, dims=info.dims)
    lr_um = list(header.spacing.lr) if header.spacing else []
    lr_um = lr_um[-info.dims:] if len(lr_um) >= info.dims else []
    names = "zyx"[-info.dims:]

    def note(i: int) -> str:
        return f"LR pixel {lr_um[i]:g} µm in training" if lr_um else ""

    axes = [bio.SpatialAxis(a, spec.scale, max(info.min_input, 2 * reach + 1), halo=reach,
                            description=note(info.dims - 2 + i)) for i, a in enumerate("yx")]
    if info.dims == 3:
        z_scale = int(spec.params.get("z_scale", info.defaults.get("z_scale", 1)))
        axes.insert(0, bio.SpatialAxis("z", z_scale, 2 * z_reach + 1, halo=z_reach,
                                       description=note(0)))
    log.info("package axes %s: factors %s, halo %s (measured reach), smallest input %s",
             names, [a.factor for a in axes], [a.halo for a in axes], [a.min for a in axes])
    return Plan(info.dims, tuple(axes))


# ----------------------------------------------------------------------------- test data

def _window(image: np.ndarray, shape: Sequence[int]) -> tuple[slice, ...]:
    """The brightest window of ``shape`` in ``image`` (depth: the middle planes)."""
    lat = image if image.ndim == 2 else image.mean(axis=0)
    h, w = shape[-2:]
    score = uniform_filter(lat.astype(np.float32), (h, w), mode="constant")
    inner = score[h // 2:lat.shape[0] - (h - 1) // 2, w // 2:lat.shape[1] - (w - 1) // 2]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    box = (slice(int(y), int(y) + h), slice(int(x), int(x) + w))
    if image.ndim == 2:
        return box
    z = (image.shape[0] - shape[0]) // 2
    return (slice(z, z + shape[0]), *box)


def crop_for(image: np.ndarray, p: Plan, source: str) -> tuple[np.ndarray, str]:
    """Cut a test input for plan ``p`` out of a real LR image: the brightest window.

    Laterally at least :data:`TEST_SIDE` pixels (or the image, when smaller), in depth at
    least :data:`TEST_DEPTH` planes; never less than the package's smallest input.
    """
    image = np.asarray(image)
    while image.ndim > p.dims and image.ndim > 2:  # a 2D network: the middle plane
        image = image[image.shape[0] // 2]
    if image.ndim != p.dims:
        raise ValueError(f"{source}: a {image.ndim}D image, the network takes {p.dims}D input")
    least = [max(m, TEST_DEPTH) for m in p.mins[:-2]] + [max(m, TEST_SIDE) for m in p.mins[-2:]]
    shape = [min(n, want) for n, want in zip(image.shape, least, strict=True)]
    if any(n < m for n, m in zip(shape, p.mins, strict=True)):
        raise ValueError(f"{source}: shape {list(image.shape)} is smaller than the package's "
                         f"smallest input {p.mins}")
    box = _window(image, shape)
    where = ", ".join(f"{a.id} {s.start}:{s.stop}" for a, s in zip(p.axes, box, strict=True))
    return image[box].astype(np.float32), where


def _candidates(header: ModelHeader) -> list[str]:
    """Paths of the model's training inputs (its header's records; the roles when known)."""
    listed = [i.path for i in (header.inputs or []) if i.role == "patches"]
    return list(dict.fromkeys(listed + list(header.provenance.get("inputs", {}))))


def _validation_patch(header: ModelHeader, p: Plan) -> tuple[np.ndarray, str] | None:
    """The model's own validation LR patch with the most structure, when it can be read."""
    from srbio.io.patches import open_patches

    for path in _candidates(header):
        record_path = patches_record_path(path)
        if not (Path(path).is_dir() and record_path.is_file()):
            continue
        try:
            record = Patches.read(record_path)
            val = open_patches(path)["val/lr"]
        except (OSError, ValueError) as exc:
            log.info("training patches %s not usable for test data: %s", path, exc)
            continue
        if len(val.shape) - 1 != p.dims or any(
                n < m for n, m in zip(val.shape[1:], p.mins, strict=True)):
            log.info("validation patches of %s (%s) are smaller than the package's smallest "
                     "input %s: not used as test data", path, list(val.shape[1:]), p.mins)
            continue
        patches = [np.asarray(val[i]) for i in range(min(64, val.shape[0]))]
        best = int(np.argmax([np.std(x) for x in patches]))
        return patches[best].astype(np.float32), (
            f"validation LR patch {best} of the model's own training patches {path} "
            f"(pairs {', '.join(record.pairs)}; never trained on)")
    return None


def _sample_crop(p: Plan) -> tuple[np.ndarray, str]:
    """A crop of the LR srbio's simulate stage makes from its bundled real HR volume."""
    from srbio.config import SimulateParams
    from srbio.stages.inspect import sample_path
    from srbio.stages.simulate import simulate_with

    hr, spacing = read_image(sample_path())
    depth = max(p.mins[0], TEST_DEPTH) + 4 if p.dims == 3 else 1
    z0 = max(0, min(hr.shape[0] - depth, hr.shape[0] // 2 - depth // 2))
    planes = hr[z0:z0 + depth] if p.dims == 3 else hr[hr.shape[0] // 2]
    params = SimulateParams(scale=p.factors[-1], seed=1)
    sim = simulate_with(planes, tuple(spacing[-planes.ndim:]), params)
    x, where = crop_for(sim.lr, p, "the sample's simulated LR")
    which = (f"planes {z0}-{z0 + depth - 1}" if p.dims == 3 else f"plane {hr.shape[0] // 2}")
    return x, (f"a crop ({where}) of the LR that srbio's simulate stage makes (scale "
               f"{params.scale}, seed 1) from {which} of srbio's bundled real lattice "
               f"light-sheet volume data/sample/lls_hr.tif (MIT licence, pycudadecon test "
               f"data; see data/sample/README.md)")


def real_test_input(header: ModelHeader, p: Plan, test_input: str | os.PathLike | None = None
              ) -> tuple[np.ndarray, str]:
    """Real LR test data of the package's shape, and where it came from.

    In order: a crop of ``test_input`` (any LR image srbio reads); the model's own validation
    patches (named in its header) when they are large enough; a crop of the LR simulated
    from srbio's bundled sample volume.
    """
    if test_input is not None:
        image, _ = read_image(test_input)
        x, where = crop_for(image, p, str(test_input))
        return x, f"a crop ({where}) of {test_input} (given as the test input)"
    return _validation_patch(header, p) or _sample_crop(p)


# ----------------------------------------------------------------------------- package files

def _weights(net: torch.nn.Module, folder: Path, staged: ExportFiles,
             exported: dict[str, ExportedFile], header: ModelHeader, tolerance: float,
             model: str) -> dict[str, ExportedFile]:
    """TorchScript and ONNX weights in the package: this export's files, else exported here."""
    from srbio.inference.export import export

    info = network_info(header.network.name)
    done = {}
    for fmt, name in bio.WEIGHTS.items():
        if fmt in exported:
            shutil.copyfile(staged.root / exported[fmt].file, folder / name)
            done[fmt] = exported[fmt].model_copy(update={"file": name})
            continue
        diff, shape = export(net, folder / name, fmt, min_side=info.min_input, dims=info.dims)
        log.info("%s: max |%s - PyTorch| = %.3g on input %s", name, fmt, diff, shape)
        if not diff <= tolerance:
            raise RuntimeError(f"{model}: the {fmt} export differs from PyTorch by {diff:.3g} "
                               f"(tolerance {tolerance:g}); nothing was written")
        done[fmt] = ExportedFile(file=name, max_abs_diff=diff, test_shape=shape)
    return done


def _weights_fields(done: dict[str, ExportedFile], folder: Path) -> dict[str, dict[str, Any]]:
    import onnx

    opset = max(o.version for o in onnx.load(str(folder / bio.ONNX)).opset_import
                if o.domain in ("", "ai.onnx"))
    check = "srbio checked it against PyTorch: max |difference| {:.2g} (normalised units)"
    return {"torchscript": {"pytorch_version": torch.__version__.split("+")[0],
                            "comment": "torch.jit.trace of srbio's network; "
                            + check.format(done["torchscript"].max_abs_diff)},
            "onnx": {"opset_version": int(opset), "parent": "torchscript",
                     "comment": "exported from the same PyTorch network (torch.onnx, dynamo; "
                     "dynamic batch and sizes); " + check.format(done["onnx"].max_abs_diff)}}


def srbio_prediction(net: torch.nn.Module, header: ModelHeader, x: np.ndarray) -> np.ndarray:
    """What srbio predicts for one whole input (HR units, float32): normalise, run, undo."""
    from srbio.inference.predict import NetworkRunner

    norm = header.normalisation
    runner = NetworkRunner(net, lr_range=norm.lr.pair, hr_range=norm.hr.pair, device="cpu",
                           batch_size=1)
    return runner(x[None])[0].astype(np.float32)


def _tensors(folder: Path, x: np.ndarray, y: np.ndarray, header: ModelHeader, p: Plan) -> None:
    """Test tensors (.npy, batch and channel axes first) and sample images (TIFF)."""
    np.save(folder / bio.TEST_INPUT, x[None, None].astype(np.float32))
    np.save(folder / bio.TEST_OUTPUT, y[None, None].astype(np.float32))
    lr_um = header.spacing.lr[-p.dims:] if header.spacing and len(header.spacing.lr) >= p.dims \
        else [1.0] * p.dims
    write_tiff(folder / bio.SAMPLE_INPUT, x, spacing=tuple(lr_um), compression=None)
    write_tiff(folder / bio.SAMPLE_OUTPUT, y, compression=None,
               spacing=tuple(s / f for s, f in zip(lr_um, p.factors, strict=True)))


def _attachments(folder: Path, model: str, header: ModelHeader) -> list[str]:
    """The srbio records to attach: the header, the training run, its input records."""
    names = ["srbio_model_header.json"]
    write_json(folder / names[0], header.model_dump(mode="json"))
    train = TrainFiles(Path(model).parent)
    beside: dict[str, Path] = {}
    run = read_json_or_none(train.record)
    if run is not None and run.get("provenance") == header.provenance:  # this model's run
        beside = {"srbio_training.json": train.record, "srbio_training_curve.png": train.curve}
    for path in _candidates(header) + [i.path for i in header.inputs or []]:
        if Path(path).is_file() and Path(path).suffix == ".json":
            kind = str((read_json_or_none(Path(path)) or {}).get("record", "")).split("/")[0]
            if kind.startswith("srbio."):
                beside.setdefault(f"srbio_{kind.removeprefix('srbio.')}.json", Path(path))
        record = patches_record_path(path)
        if Path(path).is_dir() and record.is_file():
            beside.setdefault("srbio_patches.json", record)
    for name, path in beside.items():
        if Path(path).is_file():
            shutil.copyfile(path, folder / name)
            names.append(name)
    return names


# ----------------------------------------------------------------------------- card, README

def _name(header: ModelHeader, p: Plan) -> str:
    spec = header.network
    z = f" (z x{p.factors[0]})" if p.dims == 3 and p.factors[0] != spec.scale else ""
    return f"srbio {spec.name} x{spec.scale}{z} super-resolution"


def _description(header: ModelHeader, p: Plan) -> str:
    spec, norm = header.network, header.normalisation
    axes = ", ".join(f"{a.id} x{a.factor}" for a in p.axes)
    what = network_info(spec.name).description
    return (f"{what[:1].upper() + what[1:]} trained with srbio on paired microscopy "
            f"images: super-resolves {p.dims}D single-channel LR images ({axes}). Input: raw "
            f"LR intensities; srbio's fixed normalisation maps LR [{norm.lr.vmin:g}, "
            f"{norm.lr.vmax:g}] to [0, 1] (preprocessing), the output goes back to HR units "
            f"(HR [{norm.hr.vmin:g}, {norm.hr.vmax:g}] from [0, 1]). Test data: real LR, see "
            f"README.md.")


def card(cfg: ExportConfig, header: ModelHeader, p: Plan, net: torch.nn.Module,
         attachments: list[str]) -> bio.Card:
    """The package's name, description, people, licence, citations, tags and extra config."""
    from srbio.models import count_parameters

    spec = header.network
    train = (header.provenance.get("config") or {}).get("train") or {}
    training = {k: v for k, v in {"training_epochs": train.get("epochs"),
                                  "training_batch_size": train.get("batch_size"),
                                  "initial_learning_rate": train.get("learning_rate"),
                                  "loss_function": train.get("loss") and str(train["loss"])
                                  }.items() if v}
    tags = ["super-resolution", "image-restoration", f"{p.dims}d", "pytorch", spec.name, "srbio"]
    cites = [dict(c) for c in NETWORK_CITATIONS.get(spec.name, [])]
    cites += [c.model_dump(exclude_none=True) for c in cfg.cite if c.model_dump(
        exclude_none=True) not in cites]
    return bio.Card(
        name=cfg.name or _name(header, p), description=cfg.description or _description(header, p),
        authors=[a.model_dump(exclude_none=True) for a in cfg.authors],
        maintainers=[m.model_dump(exclude_none=True) for m in cfg.maintainers],
        license=cfg.license, cite=cites, tags=list(dict.fromkeys(tags + cfg.tags)),
        git_repo=cfg.git_repo, attachments=attachments,
        config={"bioimageio": {"architecture_type": spec.name[:32],
                               "architecture_description": network_info(spec.name).description,
                               "model_parameter_count": count_parameters(net),
                               "task": "super-resolution",
                               **({"training": training} if training else {})},
                "srbio": {"network": spec.model_dump(mode="json"),
                          "normalisation": {"lr": list(header.normalisation.lr.pair),
                                            "hr": list(header.normalisation.hr.pair)},
                          "spacing": header.spacing and header.spacing.model_dump(mode="json"),
                          "factors": p.factors, "halo": p.halos, "export": provenance()}})


def _lines_training(header: ModelHeader, training: dict[str, Any] | None) -> list[str]:
    prov = header.provenance
    lines = [f"- patches of {header.patch_size} LR px" if header.patch_size else
             "- patch size: not recorded in the model file",
             f"- trained by srbio {prov['srbio']} (git {prov.get('git')}) on "
             f"{prov.get('created')}" if prov.get("srbio") else
             "- provenance: not recorded in the model file"]
    if training:
        best, bicubic = training.get("best_val_psnr"), training.get("bicubic_val_psnr")
        n = len(training.get("epochs", []))
        lines.append(f"- {n} epoch{'' if n == 1 else 's'} on {training.get('n_train')} "
                     f"patches, {training.get('n_val')} for validation; best validation PSNR "
                     + (f"{best:.2f} dB" if best is not None else "not recorded")
                     + (f" (bicubic: {bicubic:.2f} dB)" if bicubic is not None else ""))
    return lines


def _lines_model(header: ModelHeader, p: Plan, c: bio.Card,
                 training: dict[str, Any] | None = None) -> list[str]:
    spec, info = header.network, network_info(header.network.name)
    sp = header.spacing
    return [
        "## Model", "",
        f"- network: `{spec.name}` — {info.description} ({info.reference}); parameters "
        f"{spec.params}; {c.config['bioimageio']['model_parameter_count']:,} weights",
        "- upsampling per axis: " + ", ".join(f"{a.id} ×{a.factor}" for a in p.axes)
        + " (output axis scale 1/factor of the input's)",
        "- reach (LR px, measured as `srbio predict` does for `halo: auto`): "
        + ", ".join(f"{a.id} {a.halo}" for a in p.axes) + "; declared as the output halo "
        "(×factor), smallest input " + " × ".join(str(m) for m in p.mins) + " LR px",
        f"- pixel sizes in training: LR {sp.lr} µm, HR {sp.hr} µm" if sp else
        "- pixel sizes in training: not recorded in the model file",
        "", "## Training data", "",
        *_lines_training(header, training),
        *[f"- input `{i.role}`: `{i.path}` (sha256 {i.sha256[:16]}…)" for i in header.inputs or []],
        *[f"- input `{k}` (digest {v})" for k, v in header.provenance.get("inputs", {}).items()
          if not header.inputs],
        "- srbio's records are attached: " + ", ".join(f"`{a}`" for a in c.attachments),
    ]


def readme(header: ModelHeader, p: Plan, c: bio.Card, pkg: BioimageioExport,
           training: dict[str, Any] | None = None) -> str:
    """The package's documentation (README.md): model, data, normalisation, checks, use.

    ``training``: the model's ``training.json`` when it is known (its run, epoch by epoch).
    """
    lr, hr = header.normalisation.lr, header.normalisation.hr
    made = c.config["srbio"]["export"]
    versions = ", ".join(f"{k} {v}" for k, v in pkg.versions.items())
    lines = [
        f"# {c.name}", "", c.description, "", *_lines_model(header, p, c, training), "",
        "## Normalisation (fixed, from the training data; never per image)", "",
        f"- preprocessing (`scale_linear`): x' = (x − {lr.vmin:g}) / ({lr.vmax:g} − "
        f"{lr.vmin:g}) — srbio's `normalise` with the LR range",
        f"- postprocessing (`scale_linear`): y = y' · ({hr.vmax:g} − {hr.vmin:g}) + {hr.vmin:g}"
        " — its inverse with the HR range: the output is in HR units",
        "", "## Test data", "",
        f"`{bio.TEST_INPUT}` (shape {pkg.test_shape}): {pkg.test_input}. `{bio.TEST_OUTPUT}` "
        "is srbio's own prediction of it (normalise, network in float32 on the CPU, "
        f"denormalise). `{bio.COVER}` shows both.", "",
        "## Validation", "",
        f"The export checked this package with {versions}: bioimageio.spec and "
        "`bioimageio.core`'s model test: each weights format (TorchScript, ONNX) reproduces "
        f"the test output within {pkg.tolerance:g} HR units (absolute; "
        f"{TOLERANCE:g} of the HR range), at several batch and input sizes. Check it again:",
        "", "```bash", "bioimageio test rdf.yaml      # or the zip", "```", "",
        "For quality on held-out data (PSNR, SSIM against bicubic), see srbio's "
        "`evaluate` stage. Tiles: bioimage.io tools crop the halo from each tile and pad it "
        "at image borders (symmetric), where srbio's network pads with zeros: results agree "
        "away from borders. Networks with channel attention (RCAN) pool over the whole tile, "
        "so tiled and whole-image results differ slightly.", "",
        "## How it was made", "",
        f"`srbio export --format bioimageio` (srbio {made.get('srbio')}, git {made.get('git')}, "
        f"torch {made.get('torch')}, {made.get('created')}). TorchScript: a trace of srbio's "
        "network; ONNX: exported from the same network; both checked against PyTorch.", "",
        "## Licence and citation", "",
        f"{c.license}. Please cite:", "", *[f"- {x['text']} ({x.get('doi') or x.get('url')})"
                                            for x in c.cite], ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the package

def _refuse(checked: bio.Checked, what: str) -> None:
    if not checked.valid:
        problems = "\n  ".join(checked.problems[:20]) or "(no detail)"
        raise ValueError(f"{what} is not a valid bioimage.io model package (bioimageio.spec: "
                         f"{checked.status}); nothing was written:\n  {problems}\n(keys of the "
                         f"description named here come from the model file, or from the "
                         f"config's export section: name, authors, license, cite, tags, …)")
    for warning in checked.warnings:
        log.info("bioimageio.spec: %s", warning)


def _test(descr: Any, weights: Sequence[str]) -> tuple[str, dict[str, float]]:
    """bioimageio.core's model test of the package, and each weights format's difference."""
    from srbio.inference.bioimageio import core_test, reproduce

    status, errors = core_test(descr)
    if status != "passed":
        raise RuntimeError("bioimageio.core's test of the package failed (nothing was "
                           "written):\n  " + "\n  ".join(errors[:20]))
    diffs = {fmt: reproduce(descr, fmt) for fmt in weights}
    log.info("bioimageio.core test: %s; max |output - test output| %s (HR units)", status,
             {k: f"{v:.3g}" for k, v in diffs.items()})
    return status, diffs


def _files(net: torch.nn.Module, header: ModelHeader, folder: Path, p: Plan,
           test_input: str | os.PathLike | None) -> tuple[np.ndarray, str]:
    """Test tensors, sample images and the cover; returns the test input and its source."""
    from srbio.stages import plots

    x, source = real_test_input(header, p, test_input)
    y = srbio_prediction(net, header, x)
    _tensors(folder, x, y, header, p)
    plots.package_cover(folder / bio.COVER, x, y, title=f"{header.network.name} "
                        + " ".join(f"{a.id}×{a.factor}" for a in p.axes))
    log.info("test input %s from %s", list(x.shape), source)
    return x, source


def write_package(staged: ExportFiles, model: str | os.PathLike, net: torch.nn.Module,
                  header: ModelHeader, cfg: ExportConfig, record: Export, *,
                  tolerance: float, test_input: str | os.PathLike | None = None
                  ) -> BioimageioExport:
    """Write, check and zip the bioimage.io package of ``model`` into a staged export folder.

    Parameters
    ----------
    staged : ExportFiles
        The export's staging folder; its TorchScript/ONNX files (``record.formats``) are
        reused as the package's weights, others are exported here.
    model, net, header
        The model file, its network (CPU) and header.
    cfg : ExportConfig
        Authors, licence, citations, name, tags (``export`` section of the config).
    record : Export
        The export's record so far; a copy with the package's paths is attached.
    tolerance : float
        Largest difference of an export to PyTorch (normalised units).
    test_input : path, optional
        An LR image to cut the test input from (default: the model's own data, else the
        bundled sample's).

    Returns
    -------
    BioimageioExport
        Paths, axes, test data source, tolerance and the checks' outcome.

    Raises
    ------
    ValueError, RuntimeError
        When bioimageio.spec finds the folder or the zip invalid, or bioimageio.core's test
        fails (the staging folder is then discarded by the caller).
    """
    versions = bio.spec_versions()
    check_config(cfg)
    folder = staged.bioimageio
    folder.mkdir()
    p = plan(net, header)
    weights = _weights(net, folder, staged, record.formats, header, tolerance, str(model))
    x, source = _files(net, header, folder, p, test_input)
    pkg = BioimageioExport(
        folder=folder.name, zip=staged.bioimageio_zip.name, name="", format_version=
        bio.format_version(), weights=weights, test_input=source, test_shape=[1, 1, *x.shape],
        halo=p.halos, min_shape=p.mins, factors=p.factors, versions=versions,
        tolerance=float(f"{TOLERANCE * (header.normalisation.hr.vmax - header.normalisation.hr.vmin):.4g}"))
    attachments = _attachments(folder, str(model), header) + ["srbio_export.json"]
    c = card(cfg, header, p, net, attachments)
    pkg = pkg.model_copy(update={"name": c.name})
    record.model_copy(update={"bioimageio": pkg}).write(folder / "srbio_export.json")
    training = read_json_or_none(folder / "srbio_training.json")
    (folder / bio.DOCUMENTATION).write_text(readme(header, p, c, pkg, training))
    bio.write_rdf(folder, bio.model_rdf(c, p.axes, lr=header.normalisation.lr.pair,
                                        hr=header.normalisation.hr.pair, tolerance=pkg.tolerance,
                                        weights=_weights_fields(weights, folder)))
    return pkg.model_copy(update=_check_and_pack(staged, list(weights)))


def _check_and_pack(staged: ExportFiles, weights: list[str]) -> dict[str, Any]:
    """Validate the folder, test it with bioimageio.core, zip it, validate the zip."""
    checked = bio.validate(staged.bioimageio)
    _refuse(checked, str(staged.bioimageio))
    status, diffs = _test(checked.description, weights)
    bio.pack(staged.bioimageio, staged.bioimageio_zip)
    zipped = bio.validate(staged.bioimageio_zip)
    _refuse(zipped, str(staged.bioimageio_zip))
    return {"validation": zipped.status, "test": status, "test_max_abs_diff": diffs}
