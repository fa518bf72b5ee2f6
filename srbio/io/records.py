"""Stage records and the results layout: every file a stage writes, named and typed once.

Each stage writes its outputs into a folder whose file names come from one ``*Files`` class
below, plus a small JSON **record** (a pydantic model) holding its values. The next stage, the
Snakemake rules, the report and (later) the napari plugin read the record, never guess a file
name or a dict key. Every record carries a version tag ``srbio.<kind>/<n>``: a file from an
older or newer srbio fails with a message naming the file, the version found and the one
expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from srbio.io.atomic import atomic_path

Box = list[tuple[int, int]]
Spacing = list[float]
R = TypeVar("R", bound="Record")


# ----------------------------------------------------------------------------- JSON files

def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (numpy scalars and arrays converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming it in errors."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


# ----------------------------------------------------------------------------- records

class Record(BaseModel):
    """A versioned stage record; subclasses set ``KIND`` (and ``VERSION`` when it changes)."""

    model_config = ConfigDict(extra="forbid")
    KIND: ClassVar[str] = "record"
    VERSION: ClassVar[int] = 1
    record: str = ""

    @classmethod
    def tag(cls) -> str:
        """The version tag written into every file of this record: ``srbio.<kind>/<n>``."""
        return f"srbio.{cls.KIND}/{cls.VERSION}"

    @model_validator(mode="after")
    def _tagged(self) -> Record:
        if not self.record:
            self.record = self.tag()
        return self

    def write(self, path: str | os.PathLike) -> Path:
        """Write the record as JSON (atomically)."""
        return write_json(path, self.model_dump())

    @classmethod
    def from_mapping(cls: type[R], data: Any, *, source: str) -> R:
        """Validate a mapping read from ``source``, checking its version tag first."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object ({cls.tag()}), got "
                             f"{type(data).__name__}")
        found = data.get("record")
        if found != cls.tag():
            what = ("no version tag (written by srbio 0.1.0 or earlier, before records were "
                    "versioned)" if found is None else f"record version {found!r}")
            raise ValueError(f"{source}: {what}; this srbio reads {cls.tag()}. Re-run the stage "
                             f"that wrote it (Snakemake: delete the file, or --forcerun)")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}"
                                 for e in exc.errors())
            raise ValueError(f"{source}: invalid {cls.tag()} record ({problems})") from None

    @classmethod
    def read(cls: type[R], path: str | os.PathLike) -> R:
        """Read and validate a record file, naming it and its version in every error."""
        return cls.from_mapping(read_json(path), source=str(path))


class InputFile(BaseModel):
    """One input of a stage run as it was read: its path and checksum (:mod:`srbio.io.checksums`)."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(description="what the stage read it as: its option (model, input, "
                      "crops, fixed, …) or config key")
    path: str = Field(description="as the stage was given it (relative to where it ran)")
    sha256: str
    method: Literal["file", "tree", "tree-metadata", "file-sampled"] = Field(
        description="file: of the bytes; tree: of a folder's files' paths, sizes and bytes; "
        "tree-metadata: the same with only metadata files' bytes (folders over 1 GiB); "
        "file-sampled: of the size and 64 blocks of 1 MiB spread over it (files over 1 GiB)")
    size: int = Field(description="bytes (of every file, for a folder)")


LINEAGE = ("provenance", "config", "inputs")  # what made a record (absent from older ones)


class Traced(Record):
    """A record that says what made it (None in records written before srbio recorded it)."""

    provenance: dict[str, Any] | None = Field(
        default=None, description="srbio version, git revision, Python and torch versions, time")
    config: dict[str, Any] | None = Field(
        default=None, description="the config sections the run used, {section: values}")
    inputs: list[InputFile] | None = Field(
        default=None, description="every input as it was read, with its checksum")

    def write(self, path: str | os.PathLike) -> Path:
        """Write the record as JSON (atomically), what made it last."""
        data = self.model_dump()
        return write_json(path, {**{k: v for k, v in data.items() if k not in LINEAGE},
                                 **{k: data[k] for k in LINEAGE if k in data}})


class Range(BaseModel):
    """A fixed intensity range ``[vmin, vmax]`` of one modality."""

    model_config = ConfigDict(extra="forbid")
    vmin: float
    vmax: float
    source: str = "config"

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.vmax > self.vmin:
            raise ValueError(f"vmax ({self.vmax}) must exceed vmin ({self.vmin})")
        return self

    @property
    def pair(self) -> tuple[float, float]:
        """``(vmin, vmax)``."""
        return self.vmin, self.vmax


class Normalisation(Traced):
    """``normalisation.json``: one fixed range per modality, stored with the model."""

    KIND: ClassVar[str] = "normalisation"
    lr: Range
    hr: Range


class QCVerdict(BaseModel):
    """Registration QC of one pair."""

    model_config = ConfigDict(extra="forbid")
    passed: bool
    failures: list[str] = []
    thresholds: dict[str, float] = {}
    on_failure: Literal["stop", "skip"] = "stop"


class Simulation(Traced):
    """``simulation.json``: how a simulated LR was made from its HR."""

    KIND: ClassVar[str] = "simulation"
    hr: str
    hr_spacing: Spacing
    lr_spacing: Spacing
    lr_shape: list[int]
    parameters: dict[str, Any]


class Registration(Traced):
    """``registration.json``: the outcome and QC of registering one LR onto its HR."""

    KIND: ClassVar[str] = "registration"
    fixed: str
    moving: str
    transform: str = Field(description="the chain, e.g. 'affine' or 'rigid+bspline'")
    metric: dict[str, str] = Field(description="registration metric of each stage")
    init: str
    scale: int = Field(description="HR pixels per LR pixel laterally")
    pixel_size_ratio: float
    fixed_spacing: Spacing
    moving_spacing: Spacing
    grid_spacing: Spacing = Field(description="spacing of moving_resampled.tif (hr × scale)")
    grid_origin: Spacing = Field(description="origin of that grid in the HR frame, µm")
    grid_shape: list[int]
    ncc_before: float
    ncc_after: float
    mattes_before: float = Field(description="minus Mattes MI (lower is better)")
    mattes_after: float
    final_metric: float
    iterations: int
    stages: list[dict[str, Any]]
    seconds: float
    valid_fraction: float
    bspline_max_um: float | None = None
    bspline_mean_um: float | None = None
    truth: str | None = None
    tre_mean_px: float | None = None
    tre_max_px: float | None = None
    tre_p95_px: float | None = None
    fixed_pixels: str | None = Field(None, description="SHA-256 of the HR's pixels (dtype, "
                                     "shape, data): crop checks its --hr is this image")
    moving_pixels: str | None = Field(None, description="SHA-256 of the LR's pixels")
    fill: float | str | None = Field("auto", description="fill value of invalid regions used")
    erode_px: int = Field(1, description="LR pixels removed from the LR's valid region")
    qc: QCVerdict


class Enhancement(Traced):
    """``provenance.json`` of the enhance stage: every step, in order."""

    KIND: ClassVar[str] = "enhancement"
    source: str
    steps: list[dict[str, Any]]
    output_gain: float = Field(description="factor applied to stay within 16 bits (1: none)")
    dtype: str = "float32"


class Crop(Traced):
    """``crop.json``: the crop boxes of a registered pair and its QC verdict."""

    KIND: ClassVar[str] = "crop"
    registration: str = Field(description="the registration record this crop came from")
    lr_box: Box = Field(description="(start, stop) per axis on the LR grid")
    hr_box: Box = Field(description="lr_box × scale laterally, exactly")
    scale: int
    box_mode: Literal["valid_bbox", "all_valid"] = Field(description="crop.box of the config")
    lr_spacing: Spacing
    hr_spacing: Spacing
    hr_origin_um: Spacing
    valid_fraction_in_box: float
    valid_fraction_kept: float
    qc: QCVerdict
    enhancement: Enhancement | None = None


class Patches(Traced):
    """``patches.json``: the patch store beside it and where its patches came from."""

    KIND: ClassVar[str] = "patches"
    store: str = Field(description="the zarr patch store (train/lr, train/hr, val/lr, val/hr)")
    scale: int
    size: int = Field(description="LR patch size; HR patches are size × scale")
    depth: int | None = Field(None, description="planes of 3D patches; None: 2D patches")
    counts: dict[str, int]
    pairs: list[str]
    lr_spacing: Spacing | None = Field(None, description="LR pixel size of the pairs, µm")
    hr_spacing: Spacing | None = None
    split: dict[str, Any]


class NetworkSpec(BaseModel):
    """Everything needed to build a network again: its name, scale, channels, parameters."""

    model_config = ConfigDict(extra="forbid")
    name: str
    scale: int = Field(ge=1)
    in_channels: int = Field(1, ge=1)
    params: dict[str, int | float | str] = {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NetworkSpec:
        """From a network's ``.config`` (name, scale, in_channels and its parameters)."""
        rest = dict(config)
        return cls(name=rest.pop("name"), scale=rest.pop("scale"),
                   in_channels=rest.pop("in_channels", 1), params=rest)


class PixelSizes(BaseModel):
    """LR and HR pixel sizes (µm, array axis order) a model was trained at."""

    model_config = ConfigDict(extra="forbid")
    lr: Spacing
    hr: Spacing


class ModelHeader(Record):
    """The metadata of a model file (``model.pt``), beside its weights."""

    KIND: ClassVar[str] = "model"
    network: NetworkSpec
    normalisation: Normalisation
    spacing: PixelSizes | None = None
    patch_size: int | None = None
    provenance: dict[str, Any] = {}
    inputs: list[InputFile] | None = Field(
        default=None, description="the training inputs as read, with checksums (None: older files)")


class Training(Record):
    """``training.json``: the run that produced ``model.pt``."""

    KIND: ClassVar[str] = "training"
    network: NetworkSpec
    preset: str | None
    parameters: int
    n_train: int
    n_val: int
    seconds: float
    epochs: list[dict[str, float]]
    best_val_psnr: float | None
    bicubic_val_psnr: float | None = Field(
        None, description="bicubic upsampling of the same validation patches, for reference")
    best_val_psnr_fit: float | None = Field(
        None, description="best validation PSNR after a linear fit of gain and offset, what "
        "the kept checkpoint is chosen on (after an adversarial phase the last weights are kept "
        "instead; None: older records)")
    bicubic_val_psnr_fit: float | None = Field(
        None, description="bicubic upsampling's, after its own linear fit, for reference")
    steps: int | None = Field(None, description="training batches taken, one optimiser step "
                              "of the network each (None: older records)")
    stopped_early: bool = False
    resumed: bool = False
    data_wait_share: float | None = Field(
        None, description="mean share of training time spent waiting for batches")
    threads: int | None = Field(
        None, description="torch's CPU threads per process: sums are split by thread, so "
        "another number gives other rounding and, after many steps, other weights")
    processes: int | None = Field(None, description="training processes (DDP), 1 alone")
    provenance: dict[str, Any] = {}
    inputs: list[InputFile] | None = Field(
        default=None, description="the training inputs as read, with checksums (None: older records); "
        "provenance holds the config sections")


class Scores(BaseModel):
    """Image-quality metrics of one method."""

    model_config = ConfigDict(extra="forbid")
    psnr: float
    ssim: float
    nrmse: float


class PairEvaluation(BaseModel):
    """Held-out metrics of one pair."""

    model_config = ConfigDict(extra="forbid")
    methods: dict[str, Scores] = Field(description="after the fixed normalisation")
    fitted: dict[str, Scores] = Field(
        {}, description="after a least-squares linear intensity fit of each method to HR")
    fit: dict[str, tuple[float, float]] = Field(
        {}, description="gain a and offset b of each method's fit (normalised units)")
    test_shape_hr: list[int]
    test_valid_fraction: float
    test_valid_pixels: int = 0
    figure: str


class NearDuplicate(BaseModel):
    """Two pairs whose HR images correlate above the threshold: one sample counted twice."""

    model_config = ConfigDict(extra="forbid")
    pairs: tuple[str, str]
    correlation: float


NO_TTA = "network, no TTA"  # evaluation method: the network without test-time augmentation


class Evaluation(Traced):
    """``evaluation.json``: held-out metrics of every pair and their mean."""

    KIND: ClassVar[str] = "evaluation"
    model: str
    scale: int
    normalisation: Normalisation
    pairs: dict[str, PairEvaluation]
    mean: dict[str, Scores]
    mean_fitted: dict[str, Scores] = {}
    network_megapixels_per_second: float | None = Field(
        None, description="output megapixels per second of the network on the test regions")
    device: str | None = None
    tta: int = Field(1, description="test-time augmentation of the network's prediction; when "
                     "above 1, the method 'network, no TTA' shows what it gains")
    no_tta_megapixels_per_second: float | None = Field(
        None, description="with tta above 1: the network's speed without it, what TTA costs")
    near_duplicates: list[NearDuplicate] = []


class ExportedFile(BaseModel):
    """One exported file and how closely it reproduces the PyTorch network."""

    model_config = ConfigDict(extra="forbid")
    file: str
    max_abs_diff: float = Field(description="largest |exported − PyTorch| output difference on "
                                "a random normalised input of another shape than the example")
    test_shape: list[int]


class BioimageioExport(BaseModel):
    """The bioimage.io model package of an export: where it is, what it holds, its checks."""

    model_config = ConfigDict(extra="forbid")
    folder: str = Field(description="the package as a folder (rdf.yaml and its files), "
                        "relative to export.json")
    zip: str = Field(description="the same package zipped, relative to export.json")
    name: str
    format_version: str = Field(description="bioimage.io model description format")
    weights: dict[str, ExportedFile] = Field(description="weights format → its file in the "
                                             "folder and its measured difference to PyTorch")
    test_input: str = Field(description="where the test input (real data) was cut from")
    test_shape: list[int] = Field(description="shape of test_input.npy (batch, channel, "
                                  "[z,] y, x)")
    halo: list[int] = Field(description="LR px of context per spatial axis ([z,] y, x) the "
                            "package declares (as output halo × factor): the measured reach")
    min_shape: list[int] = Field(description="smallest LR input per spatial axis")
    factors: list[int] = Field(description="output px per input px per spatial axis")
    tolerance: float = Field(description="absolute tolerance of the test output (HR units) "
                             "declared in the package, relative tolerance 0")
    validation: str | None = Field(None, description="bioimageio.spec status of the folder and "
                                   "the zip (valid-format); None in the package's own copy")
    test: str | None = Field(None, description="bioimageio.core test status (passed): every "
                             "weights format reproduces the test output within the tolerance")
    test_max_abs_diff: dict[str, float] = Field(
        {}, description="bioimageio.core's largest |output − test output| per weights format")
    versions: dict[str, str] = Field({}, description="bioimageio.spec and bioimageio.core used")


class Export(Traced):
    """``export.json`` beside exported models: their source and everything to use them."""

    KIND: ClassVar[str] = "export"
    model: str
    header: ModelHeader = Field(description="the model file's header: network, scale, "
                                "normalisation (apply it outside srbio too), pixel sizes")
    formats: dict[str, ExportedFile]
    input: str = Field("(N, 1, H, W) float32, normalised: (x - lr.vmin) / (lr.vmax - lr.vmin)",
                       description="what the exported networks take")
    output: str = Field("(N, 1, H*scale, W*scale) float32; HR = y * (hr.vmax - hr.vmin) + hr.vmin")
    bioimageio: BioimageioExport | None = Field(
        None, description="the bioimage.io model package (--format bioimageio), else None")


class Prediction(Traced):
    """``<volume>.json`` beside a prediction: what was predicted with which model, how, how fast."""

    KIND: ClassVar[str] = "prediction"
    VERSION: ClassVar[int] = 2
    store: str
    model: str
    input: str
    input_spacing: Spacing = Field(description="the pixel size the network saw")
    resampled_from: Spacing | None = Field(
        None, description="the input's own pixel size, when it was resampled onto the training one")
    axes: list[str] | None = Field(None, description="the output's axis names, e.g. t, z, "
                                   "y, x (a time or position axis first); None in older "
                                   "records: y, x or z, y, x")
    output_spacing: Spacing = Field(description="per output axis: µm for z, y and x; a time "
                                    "axis' step in its own unit (1 when none is recorded)")
    output_translation: list[float] = Field(description="per output axis: position of level "
                                            "0's first pixel centre (µm for z, y and x)")
    output_shape: list[int]
    levels: list[list[int]] = Field(description="shape of every pyramid level")
    chunks: list[int]
    shards: list[int] | None
    scale: int
    tile_shape: list[int]
    halo: int = Field(description="LR pixels of context cropped from each inner tile side")
    reach: int = Field(description="the network's measured lateral reach (LR px)")
    overlap: int
    precision: str
    precision_max_abs_error: float | None = Field(
        None, description="max |prediction − fp32 prediction| on the first block's first "
        "batch (HR units), when precision is not fp32")
    precision_error_of_range: float | None = Field(
        None, description="that error as a fraction of the HR normalisation range")
    tta: int
    dtype: str
    device: str
    fingerprint: str
    blocks: int = Field(description="level-0 blocks (units of work) in the store")
    blocks_computed: int = Field(description="blocks computed by the run that finished the "
                                 "store, or by its --part jobs (fewer than blocks after a "
                                 "resume)")
    workers: int
    parts: int
    seconds: float = Field(description="wall time of that run (of the --part jobs and the "
                           "gather, summed)")
    megapixels_per_second: float | None = Field(description="output Mpx those runs computed "
                                                "per second of their time (None: none)")
    peak_rss_mb: float
    tiles: int = Field(description="tiles predicted for level 0, all runs together")
    clipped_low: int = Field(description="level-0 pixels clipped at the dtype's minimum")
    clipped_high: int = Field(description="level-0 pixels clipped at the dtype's maximum")


REPORT_PROVENANCE = "<!-- srbio provenance: "


class Report(Traced):
    """What made ``report.md``, kept in the report as its last line (an HTML comment)."""

    KIND: ClassVar[str] = "report"

    def line(self) -> str:
        """The report's last line: this record as JSON in an HTML comment (hidden when shown)."""
        text = json.dumps(self.model_dump(mode="json"), separators=(",", ":"))
        return REPORT_PROVENANCE + text.replace(">", "\\u003e") + " -->"

    @classmethod
    def from_report(cls, path: str | os.PathLike) -> Report | None:
        """The record of a report (None: written before reports carried one)."""
        lines = Path(path).read_text(errors="replace").splitlines()
        found = [s for s in lines if s.startswith(REPORT_PROVENANCE) and s.endswith(" -->")]
        if not found:
            return None
        text = found[-1].removeprefix(REPORT_PROVENANCE).removesuffix(" -->")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: its provenance line is not valid JSON ({exc})") from None
        return cls.from_mapping(data, source=f"{path} (its provenance line)")


# ----------------------------------------------------------------------------- layout

class File:
    """A file of a stage folder: ``folder.<attribute>`` is ``folder.root / name``."""

    def __init__(self, name: str, *, output: bool = True) -> None:
        self.name = name
        self.output = output  # declared as a workflow output (False: written only sometimes)

    def __get__(self, folder: object, owner: type | None = None) -> Any:
        if folder is None:
            return self
        return folder.root / self.name  # type: ignore[attr-defined]


class Folder:
    """Base of a stage folder; ``outputs()`` lists its files by attribute name."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @classmethod
    def files(cls) -> dict[str, File]:
        """Every :class:`File` of this folder, by attribute name."""
        return {k: v for c in reversed(cls.__mro__) for k, v in vars(c).items()
                if isinstance(v, File)}

    def outputs(self) -> dict[str, Path]:
        """Paths of the files every successful run writes, by attribute name."""
        return {k: getattr(self, k) for k, f in self.files().items() if f.output}


class SimulateFiles(Folder):
    """Folder of the simulate stage."""

    lr = File("lr.tif")
    truth = File("truth.tfm")
    record = File("simulation.json")


class RegisterFiles(Folder):
    """Folder of the register stage."""

    transform = File("transform.tfm")
    resampled = File("moving_resampled.tif")
    mask = File("mask.tif")
    record = File("registration.json")
    qc = File("qc.png")
    failed_qc = File("qc_failed.png", output=False)  # kept after a QC failure (stop)
    failed_record = File("registration_failed.json", output=False)


class CropFiles(Folder):
    """Folder of the crop stage."""

    lr = File("lr.tif")
    hr = File("hr.tif")
    mask = File("mask.tif")
    record = File("crop.json")


class EnhanceFiles(CropFiles):
    """Folder of the enhance stage: a crop folder (HR enhanced) plus the steps' provenance."""

    provenance = File("provenance.json")


class TrainFiles(Folder):
    """Folder of the train stage."""

    model = File("model.pt")
    curve = File("training_curve.png")
    record = File("training.json")
    checkpoints = File("checkpoints", output=False)  # Lightning: last.ckpt, best.ckpt
    logs = File("logs", output=False)  # Lightning's CSV and TensorBoard logs


class ExportFiles(Folder):
    """Folder of the export stage."""

    torchscript = File("model.torchscript.pt")
    onnx = File("model.onnx")
    record = File("export.json")
    bioimageio = File("bioimageio", output=False)  # --format bioimageio: the package folder
    bioimageio_zip = File("model.bioimageio.zip", output=False)  # … and the same zipped


class EvaluateFiles(Folder):
    """Folder of the evaluate stage (plus one ``comparison_<pair>.png`` per pair)."""

    record = File("evaluation.json")

    def figure(self, pair: str) -> Path:
        """The comparison picture of one pair."""
        return self.root / f"comparison_{pair}.png"


@dataclass(frozen=True)
class StoreFiles:
    """A zarr store written by a stage and the record beside it (written last)."""

    store: Path
    record: Path


class Results(Folder):
    """The results tree of a workflow run; every path derives from here.

    Methods take a name, or a Snakemake wildcard such as ``"{pair}"``.
    """

    def simulated(self, name: str) -> SimulateFiles:  # noqa: D102
        return SimulateFiles(self.root / "simulated" / name)

    def register(self, pair: str) -> RegisterFiles:  # noqa: D102
        return RegisterFiles(self.root / "register" / pair)

    def crop(self, pair: str) -> CropFiles:  # noqa: D102
        return CropFiles(self.root / "crop" / pair)

    def enhance(self, pair: str) -> EnhanceFiles:  # noqa: D102
        return EnhanceFiles(self.root / "enhance" / pair)

    @property
    def normalisation(self) -> Path:  # noqa: D102
        return self.root / "normalisation.json"

    @property
    def patches(self) -> StoreFiles:  # noqa: D102
        return StoreFiles(self.root / "patches.zarr", self.root / "patches.json")

    def train(self, model: str) -> TrainFiles:
        """The train folder of model ``model`` (its label)."""
        return TrainFiles(self.root / "train" / model)

    def evaluate(self, model: str) -> EvaluateFiles:
        """The evaluate folder of model ``model`` (its label)."""
        return EvaluateFiles(self.root / "evaluate" / model)

    @property
    def report(self) -> Path:  # noqa: D102
        return self.root / "report.md"

    def prediction(self, volume: str) -> StoreFiles:  # noqa: D102
        return StoreFiles(self.root / "predict" / f"{volume}.ome.zarr",
                          self.root / "predict" / f"{volume}.json")

    def log(self, stage: str, name: str | None = None) -> Path:
        """Log file of one job."""
        return self.root / "logs" / (f"{stage}.log" if name is None else f"{stage}/{name}.log")


def parent(path: str | os.PathLike) -> str:
    """The folder holding ``path`` (rules derive a stage's folder from its record this way)."""
    return str(Path(path).parent)


def patches_store_path(record: str | os.PathLike) -> Path:
    """The patch store a record describes: ``patches.json`` → ``patches.zarr``."""
    return Path(record).with_suffix(".zarr")


def prediction_store_path(record: str | os.PathLike) -> Path:
    """The OME-Zarr a prediction record describes: ``x.json`` → ``x.ome.zarr``."""
    return Path(record).with_suffix(".ome.zarr")


def patches_record_path(store: str | os.PathLike) -> Path:
    """The record beside a patch store: ``patches.zarr`` → ``patches.json``."""
    store = Path(store)
    return store.with_name(store.name.removesuffix(".zarr") + ".json")


def prediction_record_path(store: str | os.PathLike) -> Path:
    """The record beside a prediction: ``x.ome.zarr`` → ``x.json``."""
    store = Path(store)
    stem = store.name.removesuffix(".zarr").removesuffix(".ome")
    return store.with_name(stem + ".json")
