"""Command line: ``srbio <stage> …`` (also ``python -m srbio``). A thin adapter over srbio.stages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import BaseModel

from srbio import __version__

log = logging.getLogger("srbio")


def _sections(path: str | None):
    """The validated config (or None when no file is given)."""
    if path is None:
        return None
    from srbio.config import load_config

    return load_config(path)


def _override(section: BaseModel, **values: object) -> BaseModel:
    """Return ``section`` with the command-line values that were given, validated again."""
    from srbio.config import validate_section

    given = {k: v for k, v in values.items() if v is not None}
    return validate_section(type(section), {**section.model_dump(), **given},
                            source="command-line options")


def _floats(values: Sequence[str] | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def cmd_simulate(a: argparse.Namespace) -> None:
    """Run the simulate stage."""
    from srbio.config import SimulateParams
    from srbio.stages.simulate import run_simulate

    cfg = _sections(a.config)
    params, hr_spacing = SimulateParams(), _floats(a.hr_spacing)
    if cfg is not None and a.name:
        entry = {e.name: e for e in cfg.simulate}.get(a.name)
        if entry is None:
            raise ValueError(f"{a.config}: no simulate entry named {a.name!r}")
        params = SimulateParams(**entry.model_dump(exclude={"name", "hr", "hr_spacing"}))
        hr_spacing = hr_spacing or entry.hr_spacing
    params = _override(params, seed=a.seed, scale=a.scale)
    run_simulate(a.hr, a.out, params, hr_spacing=hr_spacing)


def cmd_register(a: argparse.Namespace) -> None:
    """Run the register stage."""
    from srbio.config import RegisterConfig
    from srbio.stages.register import run_register

    cfg = _sections(a.config)
    reg = _override(cfg.registration if cfg is not None else RegisterConfig(),
                    transform=a.transform, scale=a.scale, metric=a.metric, init=a.init,
                    on_failure=a.on_failure)
    run_register(a.fixed, a.moving, a.out, reg, fixed_spacing=_floats(a.fixed_spacing),
                 moving_spacing=_floats(a.moving_spacing), truth=a.truth)


def cmd_crop(a: argparse.Namespace) -> None:
    """Run the crop stage."""
    from srbio.stages.crop import run_crop

    cfg = _sections(a.config)
    run_crop(a.registered, a.hr, a.out, hr_spacing=_floats(a.hr_spacing),
             cfg=cfg.crop if cfg is not None else None)


def cmd_enhance(a: argparse.Namespace) -> None:
    """Run the enhance stage."""
    from srbio.stages.enhance import run_enhance

    cfg = _sections(a.config)
    if not cfg.enhance.steps:
        raise ValueError(f"{a.config}: enhance.steps is empty: nothing to do")
    run_enhance(a.crop, a.out, cfg.enhance)


def cmd_normalise(a: argparse.Namespace) -> None:
    """Run the normalise stage."""
    from srbio.config import NormaliseConfig, SplitConfig
    from srbio.stages.prepare import run_normalise

    cfg = _sections(a.config)
    run_normalise(a.crops, a.out, cfg.normalise if cfg else NormaliseConfig(),
                  cfg.split if cfg else SplitConfig())


def cmd_patches(a: argparse.Namespace) -> None:
    """Run the patches stage."""
    from srbio.config import PatchesConfig, SplitConfig
    from srbio.stages.prepare import run_patches

    cfg = _sections(a.config)
    run_patches(a.crops, a.out, cfg.patches if cfg else PatchesConfig(),
                cfg.split if cfg else SplitConfig())


def cmd_train(a: argparse.Namespace) -> None:
    """Run the train stage."""
    from srbio.config import ModelConfig, TrainConfig
    from srbio.stages.train import run_train

    cfg = _sections(a.config)
    model = cfg.model if cfg else ModelConfig()
    train = _override(cfg.train if cfg else TrainConfig(), epochs=a.epochs)
    run_train(a.patches, a.normalisation, a.out, model, train, resume=a.resume,
              progress=not a.quiet)


def cmd_predict(a: argparse.Namespace) -> None:
    """Run the predict stage."""
    from srbio.config import PredictConfig
    from srbio.stages.predict import run_predict

    cfg = _sections(a.config)
    pred = _override(cfg.predict if cfg else PredictConfig(), tile_shape=a.tile,
                     overlap=a.overlap, device=a.device, dtype=a.dtype)
    stats = run_predict(a.model, a.input, a.output, pred, spacing=_floats(a.spacing),
                        progress=not a.quiet)
    log.info("throughput %.3f output Mpx/s, peak RSS %.0f MB", stats["megapixels_per_second"],
             stats["peak_rss_mb"])


def cmd_evaluate(a: argparse.Namespace) -> None:
    """Run the evaluate stage."""
    from srbio.config import PredictConfig, SplitConfig
    from srbio.stages.evaluate import run_evaluate

    cfg = _sections(a.config)
    run_evaluate(a.model, a.crops, a.out, cfg.split if cfg else SplitConfig(),
                 cfg.predict if cfg else PredictConfig())


def cmd_report(a: argparse.Namespace) -> None:
    """Write the report."""
    from srbio.stages.evaluate import run_report

    cfg = _sections(a.config)
    run_report(a.out, pairs=[p.name for p in cfg.pairs], results_dir=cfg.results,
               predictions=a.predictions or [])
    log.info("report written to %s", a.out)


def cmd_schema(a: argparse.Namespace) -> None:
    """Print the JSON schema."""
    from srbio.config import json_schema

    print(json_schema())


def cmd_validate(a: argparse.Namespace) -> None:
    """Validate a config file."""
    from srbio.config import load_config

    cfg = load_config(a.config)
    print(f"{a.config}: valid ({len(cfg.pairs)} pairs, {len(cfg.predict.volumes)} volumes "
          f"to predict)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(prog="srbio", description=__doc__)
    p.add_argument("--version", action="version", version=f"srbio {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="<stage>")

    def add(name: str, func, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        sp.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        return sp

    s = add("simulate", cmd_simulate, "simulate an LR acquisition (and its true transform) from HR")
    s.add_argument("--hr", required=True)
    s.add_argument("--out", required=True, help="folder for lr.tif, truth.tfm, simulation.json")
    s.add_argument("--config", help="config.yaml; with --name, that simulate entry's settings")
    s.add_argument("--name")
    s.add_argument("--hr-spacing", nargs="+", metavar="UM")
    s.add_argument("--seed", type=int)
    s.add_argument("--scale", type=int)

    s = add("register", cmd_register, "register an LR (moving) onto its HR (fixed)")
    s.add_argument("--fixed", required=True, help="HR image")
    s.add_argument("--moving", required=True, help="LR image")
    s.add_argument("--out", required=True)
    s.add_argument("--transform", choices=["rigid", "affine", "bspline"])
    s.add_argument("--scale", type=lambda v: v if v == "auto" else int(v),
                   help="integer, or auto (rounded LR/HR pixel-size ratio)")
    s.add_argument("--metric", choices=["mattes", "correlation"])
    s.add_argument("--init", choices=["phase", "geometry"])
    s.add_argument("--on-failure", choices=["skip", "stop"])
    s.add_argument("--fixed-spacing", nargs="+", metavar="UM")
    s.add_argument("--moving-spacing", nargs="+", metavar="UM")
    s.add_argument("--truth", help="ground-truth transform, to report the registration error")
    s.add_argument("--config")

    s = add("crop", cmd_crop, "crop a registered pair to its valid field of view")
    s.add_argument("--registered", required=True, help="output folder of `srbio register`")
    s.add_argument("--hr", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--hr-spacing", nargs="+", metavar="UM")
    s.add_argument("--config")

    s = add("enhance", cmd_enhance, "enhance a cropped HR (deconvolve / denoise / background)")
    s.add_argument("--crop", required=True, help="output folder of `srbio crop`")
    s.add_argument("--out", required=True)
    s.add_argument("--config", required=True, help="config.yaml with an enhance section")

    for name, func, help_ in (("normalise", cmd_normalise, "fix the normalisation values"),
                              ("patches", cmd_patches, "extract 16-bit training patches")):
        s = add(name, func, help_)
        s.add_argument("--crops", nargs="+", required=True, help="output folders of `srbio crop`")
        s.add_argument("--out", required=True)
        s.add_argument("--config")

    s = add("train", cmd_train, "train the network")
    s.add_argument("--patches", required=True)
    s.add_argument("--normalisation", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--config")
    s.add_argument("--epochs", type=int)
    s.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT/checkpoints/last.ckpt")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = add("predict", cmd_predict, "super-resolve a TIFF or zarr volume into an OME-Zarr")
    s.add_argument("--model", required=True)
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True, help="OME-Zarr folder to create")
    s.add_argument("--config")
    s.add_argument("--spacing", nargs="+", metavar="UM", help="input pixel size if the file lacks it")
    s.add_argument("--tile", nargs=2, type=int, metavar=("Y", "X"))
    s.add_argument("--overlap", type=int)
    s.add_argument("--device")
    s.add_argument("--dtype", choices=["uint16", "float32"])
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = add("evaluate", cmd_evaluate, "held-out metrics against bicubic/nearest baselines")
    s.add_argument("--model", required=True)
    s.add_argument("--crops", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--config")

    s = add("report", cmd_report, "write the Markdown report")
    s.add_argument("--config", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--predictions", nargs="*")

    add("schema", cmd_schema, "print the JSON schema of config.yaml")
    s = add("validate", cmd_validate, "validate a config file")
    s.add_argument("config")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        args.func(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as exc:
        print(f"srbio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0
