"""The configuration schema: the single source of truth for ``config.yaml``.

Every section is a pydantic model that forbids unknown keys, so a typo fails with the key's
name. ``srbio schema`` prints the JSON schema derived from these models.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from srbio.models.registry import NETWORKS, check_scale, network_info, resolve_params

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Spacing = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=3)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
TransformName = Literal["rigid", "affine", "bspline"]
MetricName = Literal["mattes", "correlation"]


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SimulateParams(Strict):
    """How an LR acquisition is simulated from an HR image (see ``srbio.core.simulate``)."""

    scale: int = Field(2, ge=1, le=8, description="lateral sampling factor of the LR")
    psf_sigma_um: tuple[float, float] = Field((0.3, 0.15), description="Gaussian PSF sigma (z, lateral), µm")
    psf: str | None = Field(None, description="measured PSF TIFF used instead of the Gaussian")
    max_shift_um: tuple[float, float] = (0.3, 2.0)
    max_rotation_deg: float = Field(3.0, ge=0)
    max_tilt_deg: float = Field(0.5, ge=0)
    affine_strength: float = Field(0.01, ge=0, lt=0.5)
    deformation_um: float = Field(0.03, ge=0)
    deformation_spacing_um: float = Field(8.0, gt=0)
    photons_per_count: float = Field(2.0, gt=0)
    read_noise: float = Field(2.0, ge=0)
    border_fraction: float = Field(0.04, ge=0, lt=0.4)
    seed: int = 0


class SimulateEntry(SimulateParams):
    """One simulated LR acquisition: written to ``<results>/simulated/<name>/lr.tif``."""

    name: Name
    hr: str
    hr_spacing: Spacing | None = None


class Pair(Strict):
    """One training pair: an LR and an HR acquisition of the same sample."""

    name: Name
    lr: str
    hr: str
    lr_spacing: Spacing | None = Field(None, description="overrides the LR file's pixel size (µm)")
    hr_spacing: Spacing | None = Field(None, description="overrides the HR file's pixel size (µm)")
    truth: str | None = Field(None, description="ground-truth transform (HR→LR), for QC")


class QCConfig(Strict):
    """Pass/fail thresholds of a registered pair (checked on the LR grid, valid region only)."""

    min_ncc: float = Field(0.5, ge=-1, le=1, description="normalised correlation after registration")
    min_ncc_gain: float = Field(-0.02, ge=-1, le=2,
                                description="NCC after minus NCC before (negative: tolerated loss)")
    min_valid_fraction: Fraction = Field(0.2, description="fraction of the grid valid in both images")
    max_displacement_um: float = Field(2.0, gt=0, description="largest B-spline displacement")


class RegisterConfig(Strict):
    """Registration of each LR onto its HR."""

    transform: TransformName | list[TransformName] = Field(
        "affine", description="last stage of rigid → affine → bspline, or an explicit chain")
    metric: MetricName | dict[TransformName, MetricName] = Field(
        {"rigid": "mattes", "affine": "mattes", "bspline": "correlation"},
        description="one metric for every stage, or one per stage")
    init: Literal["phase", "geometry"] = Field(
        "phase", description="coarse start: rotation search + phase correlation, or image centres")
    max_rotation_deg: float = Field(10.0, ge=0, le=45, description="rotation range of the phase start")
    scale: int | Literal["auto"] = Field(
        2, description="HR pixels per LR pixel laterally (1–8), or auto: the rounded pixel-size ratio")
    shrink_factors: list[Annotated[int, Field(ge=1)]] = [4, 2, 1]
    iterations: int = Field(300, ge=1)
    samples: int = Field(50_000, ge=1000, description="metric samples per level (random)")
    bspline_mesh_um: float = Field(8.0, gt=0, description="final B-spline control-point spacing, µm")
    bspline_levels: int = Field(2, ge=1, le=4, description="B-spline mesh refinement levels")
    fill: float | Literal["auto"] | None = Field("auto", description="fill value of invalid regions")
    erode_px: int = Field(1, ge=0, description="margin removed from the valid region (LR px)")
    qc: QCConfig = QCConfig()
    on_failure: Literal["skip", "stop"] = Field(
        "stop", description="a pair failing QC: stop the workflow, or leave it out of training")

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 8:
            raise ValueError(f"scale must be 1..8 or 'auto', got {v}")
        return v


class CropConfig(Strict):
    """Crop of each registered pair; the valid mask always travels with the crop."""

    box: Literal["valid_bbox", "all_valid"] = Field(
        "valid_bbox", description="bounding box of the valid field of view (patches and metrics "
        "then follow the mask), or the largest box holding no invalid pixel")


class Deconvolve(Strict):
    """Richardson–Lucy deconvolution with a measured PSF file, or a Gaussian PSF from optics."""

    kind: Literal["deconvolve"]
    psf: str | None = Field(None, description="PSF TIFF (with its pixel size); else na/wavelength")
    psf_spacing: Spacing | None = Field(None, description="overrides the PSF file's pixel size")
    na: float | None = Field(None, gt=0, description="numerical aperture (Gaussian PSF)")
    wavelength_nm: float | None = Field(None, gt=0, description="emission wavelength (Gaussian PSF)")
    refractive_index: float = Field(1.33, ge=1)
    iterations: int = Field(10, ge=1, le=500)
    tv_weight: float = Field(0.0, ge=0, le=0.1, description="total-variation regularisation")

    @model_validator(mode="after")
    def _psf_given(self) -> Deconvolve:
        if self.psf is None and (self.na is None or self.wavelength_nm is None):
            raise ValueError("deconvolve needs a psf file, or both na and wavelength_nm")
        return self


class Denoise(Strict):
    """Non-local means (scikit-image), plane by plane."""

    kind: Literal["denoise"]
    strength: float = Field(0.8, gt=0, description="h = strength × estimated noise sigma")
    patch_size: int = Field(5, ge=3)
    patch_distance: int = Field(6, ge=1)


class Background(Strict):
    """Background subtraction, plane by plane."""

    kind: Literal["background"]
    method: Literal["rolling_ball", "gaussian"] = "rolling_ball"
    radius_um: float = Field(5.0, gt=0)


class EnhanceConfig(Strict):
    """Optional enhancement of the HR images (off by default): steps applied in order."""

    steps: list[Annotated[Deconvolve | Denoise | Background, Field(discriminator="kind")]] = []


class SplitConfig(Strict):
    """Disjoint regions of every cropped pair along one axis: train | validation | test."""

    axis: Literal["y", "x"] = "y"
    val_fraction: float = Field(0.15, gt=0, lt=1, description="validation band: checkpoints "
                                "are chosen on it, so it cannot be empty")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="held-out band `evaluate` "
                                 "scores on, so it cannot be empty")

    @model_validator(mode="after")
    def _room_for_training(self) -> SplitConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self


class NormaliseConfig(Strict):
    """Fixed intensity range per modality; estimated from the training regions when not given."""

    lr: tuple[float, float] | None = Field(None, description="[vmin, vmax] of the LR")
    hr: tuple[float, float] | None = Field(None, description="[vmin, vmax] of the HR")
    percentiles: tuple[Annotated[float, Field(ge=0, le=100)], Annotated[float, Field(ge=0, le=100)]] \
        = Field((0.1, 99.9), description="[low, high] percentiles (0–100) of the estimate")

    @model_validator(mode="after")
    def _ordered(self) -> NormaliseConfig:
        for name in ("lr", "hr"):
            given = getattr(self, name)
            if given is not None and not given[1] > given[0]:
                raise ValueError(f"{name}: vmax must exceed vmin, got {list(given)}")
        if not self.percentiles[1] > self.percentiles[0]:
            raise ValueError(f"percentiles must be [low, high] with low < high, got "
                             f"{list(self.percentiles)}")
        return self


class PatchesConfig(Strict):
    """16-bit patch pairs for training (sizes in LR pixels)."""

    size: int = Field(32, ge=8)
    n_train: int = Field(2000, ge=1)
    n_val: int = Field(200, ge=1)
    min_foreground: Fraction = Field(0.05, description="fraction of a patch above the foreground threshold")
    depth: int | None = Field(
        None, ge=1, description="3D patches of this many planes, for 3D networks (rcan3d); "
        "2D patches when omitted")
    seed: int = 0


class ModelConfig(Strict):
    """Network: a name, one of its presets, and parameters overriding the preset's."""

    name: str = Field("rcan", description=f"network: {', '.join(sorted(NETWORKS))}")
    preset: str | None = Field(None, description="named parameter set (default: the network's)")
    params: dict[str, Annotated[int, Field(ge=1)] | Annotated[float, Field(gt=0)]] = Field(
        {}, description="parameters overriding the preset's, e.g. {n_groups: 3}")

    @model_validator(mode="after")
    def _known(self) -> ModelConfig:
        info = network_info(self.name)
        if self.preset is None:
            self.preset = info.default_preset
        resolve_params(self.name, self.preset, self.params)
        return self


class ModelEntry(ModelConfig):
    """One network of ``models:``: a label, the network, and its own train settings."""

    label: Name = Field(description="names its results folders (train/<label>, evaluate/<label>)")
    train: dict[str, Any] = Field(
        {}, description="train settings of this model only, over the train section's")


class Perceptual(Strict):
    """Perceptual loss: VGG features of a local weights file (never downloaded)."""

    weights: str = Field(description="VGG state dict (torchvision layout, e.g. vgg19 weights)")
    layer: int = Field(34, ge=0, description="last feature index used (VGG19: 34 = conv5_4, "
                       "before its ReLU, as in ESRGAN)")
    weight: float = Field(0.1, gt=0, description="weight beside the pixel losses")


class Adversarial(Strict):
    """SRGAN-style adversarial phase after pixel-loss pre-training."""

    start_epoch: int = Field(ge=0, description="epochs of pixel-loss pre-training first")
    weight: float = Field(5e-3, gt=0, description="weight of the adversarial term")
    learning_rate: float = Field(1e-4, gt=0, description="discriminator's Adam rate")
    loss: Literal["relativistic", "standard"] = Field(
        "relativistic", description="relativistic average GAN (ESRGAN) or standard (SRGAN)")
    discriminator_feats: int = Field(64, ge=4, description="channels of its first conv")


class TrainConfig(Strict):
    """Training loop (Lightning)."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1, description="patches per step; several processes (DDP) "
                            "share them, so any number of processes takes the same steps")
    learning_rate: float = Field(2e-4, gt=0)
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_name(cls, value: Any) -> Any:
        """``precision: 32`` (Lightning's spelling, a number in YAML) names "32"."""
        return "32" if value == 32 and not isinstance(value, bool) else value

    num_workers: int = Field(0, ge=0)
    dihedral: bool = Field(True, description="augment each training patch by a random one of "
                           "the 8 lateral rotations / mirror images (a laterally symmetric PSF "
                           "images them alike)")
    gain_augment: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] | None = Field(
        None, description="random intensity gain range applied to both LR and HR, e.g. "
        "[0.5, 2.0]; null: off (it cost 0.4 dB on the demo, whose brightness training covers)")
    seed: int = 0
    loss: dict[Literal["l1", "mse", "charbonnier", "huber", "ssim"],
               Annotated[float, Field(gt=0)]] = Field(
        {"l1": 1.0}, min_length=1, description="weighted sum of pixel losses, e.g. "
        "{l1: 1.0, ssim: 0.2} (ssim: 1 - SSIM)")
    schedule: Literal["cosine", "multistep"] = Field(
        "cosine", description="cosine decay, or halving the rate at `milestones`")
    milestones: list[Annotated[int, Field(ge=1)]] = Field(
        [], description="multistep: epochs where the rate halves (default: half and 3/4 of "
        "the epochs)")
    warmup_epochs: int = Field(
        0, ge=0, description="linear warm-up from a tenth of the rate over this many epochs "
        "(fewer steps than max_steps; with max_minutes, keep it well inside the budget)")
    grad_clip: float | None = Field(None, gt=0, description="clip the gradient norm")
    patience: int | None = Field(
        None, ge=1, description="stop when validation PSNR has not improved for this many epochs")
    max_minutes: float | None = Field(
        None, gt=0, description="a budget of wall time (validation included): training stops "
        "there and the cosine schedule decays over it (or over the epochs, whichever ends "
        "first); the best checkpoint is kept")
    max_steps: int | None = Field(
        None, ge=1, description="a budget of optimiser steps: training stops after this many "
        "and the cosine schedule decays over them (or over the epochs or max_minutes, "
        "whichever ends first); unlike max_minutes, the same on any machine")
    init_from: str | None = Field(
        None, description="model file whose weights of matching name and shape start training "
        "(fine-tuning, e.g. a pruned RCAN from the paper one)")
    ema: float | None = Field(
        None, gt=0, lt=1, description="decay of an exponential moving average of the weights "
        "(e.g. 0.999): validated, saved and evaluated instead of the raw weights")
    perceptual: Perceptual | None = None
    adversarial: Adversarial | None = None
    devices: int | Literal["auto"] = Field(
        1, description="devices (GPUs, or CPU processes) to train on; under `srun` with "
        "several tasks per node, one per task")
    strategy: Literal["auto", "ddp", "ddp_spawn"] = Field(
        "auto", description="ddp for several devices (one process each)")
    compile: bool = Field(False, description="torch.compile the network (needs a C compiler)")
    checkpoint_every_steps: int | None = Field(
        200, ge=1, description="also checkpoint (checkpoints/last.ckpt) every this many steps, "
        "not only at each epoch's end: a pre-empted or killed run resumes from there, mid-epoch, "
        "with the uninterrupted run's batches; null: at epoch ends only")

    def input_files(self) -> dict[str, str]:
        """Files training reads besides the patches, by config key (fine-tuning, VGG weights)."""
        files = {"train.init_from": self.init_from,
                 "train.perceptual.weights": self.perceptual and self.perceptual.weights}
        return {key: path for key, path in files.items() if path}

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.gain_augment is not None and self.gain_augment[0] > self.gain_augment[1]:
            raise ValueError(f"gain_augment must be [low, high] with low <= high, got "
                             f"{list(self.gain_augment)}")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs {self.warmup_epochs} must be less than epochs "
                             f"{self.epochs}")
        if self.milestones and self.schedule != "multistep":
            raise ValueError("milestones are for schedule: multistep")
        if self.adversarial is not None:
            if self.adversarial.start_epoch >= self.epochs:
                raise ValueError(f"adversarial.start_epoch {self.adversarial.start_epoch} must be "
                                 f"less than epochs {self.epochs}")
            if self.patience is not None:
                raise ValueError("patience stops on validation PSNR, which the adversarial "
                                 "phase trades for texture: use one or the other")
            if self.max_steps is not None:
                raise ValueError("max_steps counts optimiser steps, two a batch once the "
                                 "adversarial phase starts: give an adversarial run epochs or "
                                 "max_minutes")
        return self


class PredictVolume(Strict):
    """A volume to super-resolve."""

    name: Name
    path: str
    spacing: Spacing | None = None
    allow_missing_chunks: bool = Field(
        False, description="a zarr whose writer skipped empty chunks (they read as fill value)")


class PredictConfig(Strict):
    """Tiled prediction of chunked volumes."""

    volumes: list[PredictVolume] = []
    tile_shape: tuple[Annotated[int, Field(ge=8)], Annotated[int, Field(ge=8)]] = Field(
        (256, 256), description="largest lateral LR tile (y, x) the network reads, halo "
        "included, at least 8")
    halo: int | Literal["auto"] = Field(
        "auto", description="LR pixels of context read on each inner side of a tile and cropped "
        "from its prediction; auto: the network's measured reach (tiles are then exact for a "
        "local network)")
    overlap: int = Field(8, ge=0, description="LR pixels shared by the kept parts of "
                         "neighbouring tiles, blended there (hides seams of networks that pool "
                         "over the tile, e.g. RCAN's channel attention)")
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        4, description="tiles per forward pass (halved and retried when a GPU runs out of "
        "memory); auto: what 70 % of a GPU's free memory holds, 4 on a CPU")
    tile_depth: int = Field(16, ge=1, description="output planes per slab of a 3D network")
    depth_margin: int = Field(2, ge=0, description="planes of context on each side of a "
                              "3D network's slab (read, then discarded)")
    dtype: Literal["uint16", "float32"] = "uint16"
    chunk: int = Field(256, ge=16, description="lateral size of output chunks (HR px)")
    shard: int | None = Field(1024, ge=16, description="lateral size of output shards (HR px, "
                              "a multiple of chunk; the unit of work), or null for no sharding")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="precision of the network's forward pass; its error against fp32 "
        "is measured on the first block and recorded")
    tta: Literal[1, 2, 4, 8] = Field(1, description="test-time augmentation: mean over this "
                                     "many lateral rotations / mirror images")
    workers: int = Field(1, ge=1, description="local worker processes (each loads the model "
                         "once)")
    parts: int = Field(1, ge=1, description="workflow jobs per volume (Snakemake scatter / "
                       "gather: one job per part, then one for the pyramid and record)")
    resample: bool = Field(
        True, description="resample an input whose lateral pixel size differs from the training "
        "one (else refuse it)")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:[0-9]+)?)$",
                        description="auto (CUDA, then MPS, then CPU), cpu, mps, cuda or cuda:N")
    model: str | None = Field(None, description="label of the model (of `models:`) that "
                              "predicts the volumes; default: the first")

    @model_validator(mode="after")
    def _tiles_fit(self) -> PredictConfig:
        halo = 0 if self.halo == "auto" else self.halo
        if self.halo != "auto" and self.halo < 0:
            raise ValueError(f"halo {self.halo} must be ≥ 0 or auto")
        if 2 * halo + self.overlap >= min(self.tile_shape) or 2 * self.overlap >= min(
                self.tile_shape):
            raise ValueError(f"tile {list(self.tile_shape)} must exceed 2 × halo ({self.halo}) + "
                             f"overlap ({self.overlap}), and twice the overlap")
        if self.shard is not None and self.shard % self.chunk:
            raise ValueError(f"shard {self.shard} must be a multiple of chunk {self.chunk}")
        return self


class Author(Strict):
    """A person credited by a bioimage.io model package."""

    name: str = Field(min_length=1, pattern=r"^[^/\\]+$", description="full name (no slash)")
    affiliation: str | None = None
    email: str | None = None
    orcid: str | None = Field(None, pattern=r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$",
                              description="ORCID iD, e.g. 0000-0002-1825-0097")
    github_user: str | None = None


class Maintainer(Strict):
    """Someone to contact about a package (bioimage.io wants their GitHub account)."""

    github_user: str = Field(min_length=1)
    name: str | None = Field(None, min_length=1, pattern=r"^[^/\\]+$")
    affiliation: str | None = None
    email: str | None = None
    orcid: str | None = Field(None, pattern=r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


class Citation(Strict):
    """A reference to cite with the package: a DOI, or a URL where there is none."""

    text: str = Field(min_length=1)
    doi: str | None = Field(None, pattern=r"^10\.\d{4,9}/\S+$", description="e.g. 10.1000/xyz")
    url: str | None = Field(None, pattern=r"^https?://\S+$")

    @model_validator(mode="after")
    def _doi_or_url(self) -> Citation:
        if not (self.doi or self.url):
            raise ValueError(f"citation {self.text!r} needs a doi or a url")
        return self


class ExportConfig(Strict):
    """What a bioimage.io model package (``srbio export --format bioimageio``) says about itself.

    The network, scale, normalisation, pixel sizes and test data come from the model file;
    this section holds what only people know: who made it, under which licence, what to cite.
    """

    authors: list[Author] = Field(
        [], description="required for --format bioimageio: the people who made the model")
    maintainers: list[Maintainer] = Field([], description="contacts (each with github_user); "
                                          "default: the authors")
    license: str = Field("CC-BY-4.0", pattern=r"^[A-Za-z0-9.+-]+$",
                         description="SPDX identifier of the package (weights, files)")
    cite: list[Citation] = Field(
        [], description="references besides the network's own paper (always cited), e.g. "
        "the publication or data set of this model")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_+\- ()]{5,128}$",
                             description="package name (letters, digits, _+-() and spaces); "
                             "default: 'srbio <network> x<scale> super-resolution'")
    description: str | None = Field(None, max_length=600, description="one paragraph; default: "
                                    "network, scale, normalisation and test data, from the model")
    tags: list[Annotated[str, Field(min_length=1)]] = Field(
        [], description="added to srbio's (super-resolution, 2d/3d, pytorch, network), e.g. "
        "fluorescence-light-microscopy, cells")
    git_repo: str | None = Field(None, pattern=r"^https?://\S+$",
                                 description="repository where the model is developed")


class Config(Strict):
    """The whole ``config.yaml``."""

    version: Literal[1] = Field(1, description="version of this configuration schema")
    results: str = "results"
    simulate: list[SimulateEntry] = []
    pairs: list[Pair] = Field(min_length=1)
    registration: RegisterConfig = Field(RegisterConfig(), alias="register")
    crop: CropConfig = CropConfig()
    enhance: EnhanceConfig = EnhanceConfig()
    split: SplitConfig = SplitConfig()
    normalise: NormaliseConfig = NormaliseConfig()
    patches: PatchesConfig = PatchesConfig()
    model: ModelConfig = ModelConfig()
    models: list[ModelEntry] = Field(
        [], description="several networks trained on the same patches and compared in the "
        "report, instead of `model`")
    train: TrainConfig = TrainConfig()
    predict: PredictConfig = PredictConfig()
    export: ExportConfig = Field(ExportConfig(), description="bioimage.io packages of `srbio "
                                 "export --format bioimageio`: authors, licence, citations")

    def trained_models(self) -> dict[str, tuple[ModelConfig, TrainConfig]]:
        """Label → (network, train settings) of every model the workflow trains.

        Without ``models:``, the one ``model`` labelled by its network's name.
        """
        if not self.models:
            return {self.model.name: (self.model, self.train)}
        out = {}
        for i, entry in enumerate(self.models):
            train = validate_section(TrainConfig, {**self.train.model_dump(), **entry.train},
                                     source=f"models[{i}] ({entry.label}).train")
            out[entry.label] = (ModelConfig(name=entry.name, preset=entry.preset,
                                            params=entry.params), train)
        return out

    @property
    def predicting_model(self) -> str:
        """Label of the model that predicts ``predict.volumes``."""
        return self.predict.model or next(iter(self.trained_models()))

    @model_validator(mode="after")
    def _models(self) -> Config:
        if self.models and "model" in self.model_fields_set:
            raise ValueError("give either `model` (one network) or `models` (several), not both")
        labels = [e.label for e in self.models]
        dup = sorted({n for n in labels if labels.count(n) > 1})
        if dup:
            raise ValueError(f"models: labels must be unique, repeated: {dup}")
        trained = self.trained_models()  # checks each entry's train settings
        if self.predict.model is not None and self.predict.model not in trained:
            raise ValueError(f"predict.model {self.predict.model!r} is not a model label "
                             f"(labels: {', '.join(trained)})")
        for label, (model, train) in trained.items():
            self._check_network(label, model, train)
        return self

    def _check_network(self, label: str, model: ModelConfig, train: TrainConfig) -> None:
        """The patches and the registration scale suit network ``model``."""
        info = network_info(model.name)
        if info.dims == 3 and self.patches.depth is None:
            raise ValueError(f"network {model.name!r} ({label}) is 3D: set patches.depth (planes "
                             f"per patch, e.g. 8)")
        if info.dims == 3 and train.adversarial is not None:
            raise ValueError(f"train.adversarial: the SRGAN discriminator is 2D; network "
                             f"{model.name!r} ({label}) is 3D")
        if info.dims == 2 and self.patches.depth is not None:
            raise ValueError(f"patches.depth {self.patches.depth} makes 3D patches, but network "
                             f"{model.name!r} ({label}) is 2D: remove patches.depth")
        smallest = info.min_input
        if self.patches.size < smallest:
            raise ValueError(f"patches.size {self.patches.size} is smaller than the "
                             f"{smallest} pixels network {model.name!r} ({label}) needs")
        scale = self.registration.scale
        if scale != "auto":
            try:
                check_scale(model.name, scale)
            except ValueError as exc:
                raise ValueError(f"register.scale {scale} cannot be trained: {exc}") from None

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for label, items in (("simulate", self.simulate), ("pairs", self.pairs),
                             ("predict.volumes", self.predict.volumes)):
            names = [i.name for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{label}: names must be unique, repeated: {dup}")
        return self


def _format_error(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{loc}' (not part of the schema; check its spelling)")
        else:
            got = err.get("input")
            got_text = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {loc}: {err['msg']}{got_text}")
    return "\n".join(lines)


def validate_section(cls: type[BaseModel], data: dict, *, source: str) -> BaseModel:
    """Validate one section's mapping, with the same error messages as :func:`validate_config`.

    Types are strict (pydantic's strict mode on the JSON form of ``data``): ``epochs: true``,
    ``compile: "off"`` or ``tile_shape: ["64", "64"]`` are errors naming the key, never
    coerced; whole numbers are accepted where a decimal is expected.
    """
    try:
        text = json.dumps(data, default=str)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: invalid configuration ({exc})") from None
    try:
        return cls.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise ValueError(_format_error(source, exc)) from None


def validate_config(data: dict, *, source: str = "config") -> Config:
    """Validate a configuration mapping.

    Parameters
    ----------
    data : dict
        Parsed YAML/JSON.
    source : str
        Name used in error messages.

    Returns
    -------
    Config

    Raises
    ------
    ValueError
        Naming every offending key, the value and what is expected.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    return validate_section(Config, data, source=source)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping.

    YAML forbids it; PyYAML would keep the last value silently.
    """


def _construct_unique(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
                      ) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` stays allowed
            continue
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping (lines {seen[key]} and "
                f"{line}); YAML keeps only one of them: remove the other", key_node.start_mark)
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_unique)
# YAML 1.2 reads an unquoted 1e-3 as a number (YAML 1.1, PyYAML's default, as a string)
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def yaml_value(text: str) -> Any:
    """A command-line value (``snakemake --config``) as this YAML reader reads it.

    Text YAML cannot parse (``@scratch``) stays the string it is.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError:
        return text


def deep_update(base: dict, other: dict) -> dict:
    """``base`` with ``other`` merged in, nested mappings merged key by key (as Snakemake)."""
    out = dict(base)
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML (or JSON) file, refusing duplicate keys (the message names the lines)."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: configuration file not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected a YAML configuration file") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a YAML (or JSON) configuration file (duplicate keys refused)."""
    return validate_config(read_yaml(path) or {}, source=str(path))


def json_schema() -> str:
    """The JSON schema of ``config.yaml``."""
    return json.dumps(Config.model_json_schema(), indent=2)


# the section models a stage may receive on its own (CLI --settings, Snakemake params)
SECTION_MODELS: dict[str, type[BaseModel]] = {
    "simulate": SimulateParams, "register": RegisterConfig, "crop": CropConfig,
    "enhance": EnhanceConfig, "split": SplitConfig, "normalise": NormaliseConfig,
    "patches": PatchesConfig, "model": ModelConfig, "train": TrainConfig,
    "predict": PredictConfig, "export": ExportConfig,
}


def section_settings(cfg: Config, *names: str, exclude: dict[str, set[str]] | None = None
                     ) -> str:
    """JSON of some sections of ``cfg``: exactly the settings one stage needs.

    Snakemake passes it to the CLI as a job's ``params`` (``--settings``), so a job re-runs
    when, and only when, its own settings change. ``exclude`` drops fields per section (e.g.
    the volume list from ``predict`` for jobs that never read it).
    """
    dumped = cfg.model_dump(mode="json", by_alias=True)
    out = {}
    for name in names:
        value = dumped[name]
        for field in (exclude or {}).get(name, ()):
            value.pop(field, None)
        out[name] = value
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def model_settings(cfg: Config, label: str) -> str:
    """JSON of the ``model`` and ``train`` sections of model ``label`` (as section_settings)."""
    model, train = cfg.trained_models()[label]
    return json.dumps({"model": model.model_dump(mode="json"),
                       "train": train.model_dump(mode="json")},
                      sort_keys=True, separators=(",", ":"))


def load_sections(names: list[str], *, config: str | os.PathLike | None = None,
                  settings: str | None = None) -> dict[str, BaseModel]:
    """The validated sections a stage needs, from a config file and/or ``--settings`` JSON.

    Parameters
    ----------
    names : list of str
        Section names (keys of :data:`SECTION_MODELS`).
    config : path, optional
        A whole ``config.yaml``; its sections are the starting point.
    settings : str, optional
        JSON object ``{section: {key: value}}`` (what :func:`section_settings` writes);
        replaces the config file's values of the sections it names.

    Returns
    -------
    dict
        Section name → validated model (schema defaults where nothing was given).
    """
    base = load_config(config).model_dump(by_alias=True) if config is not None else {}
    given: dict = {}
    if settings:
        try:
            given = json.loads(settings)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--settings: not valid JSON ({exc})") from None
        if not isinstance(given, dict) or set(given) - set(names):
            raise ValueError(f"--settings: expected a JSON object with sections among {names}, "
                             f"got {list(given) if isinstance(given, dict) else given!r}")
    out = {}
    for name in names:
        data = given.get(name, base.get(name, {}))
        if name == "simulate" and isinstance(data, list):
            data = {}  # a config's simulate list: the CLI picks one entry by name
        source = "--settings" if name in given else str(config or "defaults")
        out[name] = validate_section(SECTION_MODELS[name], data, source=f"{source} ({name})")
    return out
