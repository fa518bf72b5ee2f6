"""Command line: ``srbio <stage> …`` (also ``python -m srbio``). A thin adapter over srbio.stages.

Every stage takes its settings from ``--config config.yaml`` (the stage's sections) and/or
``--settings JSON`` (``{section: {...}}``, what the Snakemake rules pass), then from its own
flags; all are validated by the schema in :mod:`srbio.config` before anything heavy is imported.
Bad input exits with status 2 and a message naming the file or key and the value.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from srbio import __version__

log = logging.getLogger("srbio")


def _sections(a: argparse.Namespace, *names: str) -> list:
    """The validated sections ``names``, from ``--config`` and ``--settings``."""
    from srbio.config import load_sections

    got = load_sections(list(names), config=a.config, settings=a.settings)
    return [got[n] for n in names]


UNBOUNDED_EPOCHS = 1_000_000
"""``train.epochs`` under a budget of steps or minutes given on the command line alone."""


def _override(section: BaseModel, **values: object) -> BaseModel:
    """Return ``section`` with the command-line values that were given, validated again."""
    from srbio.config import validate_section

    given = {k: v for k, v in values.items() if v is not None}
    return validate_section(type(section), {**section.model_dump(), **given},
                            source="command-line options")


def _budget(train: BaseModel, *, epochs: int | None, max_steps: int | None,
            max_minutes: float | None) -> BaseModel:
    """Return ``train`` with the budget given on the command line in place of the config's.

    A budget given there is the whole budget: ``--max-minutes 10`` alone is not cut short by
    the config's ``max_steps`` nor by its ``epochs`` (they become :data:`UNBOUNDED_EPOCHS`,
    except where the schedule counts epochs: ``multistep`` milestones, an adversarial phase),
    and ``--epochs N`` alone trains N epochs. Without any of the three the config's budget
    stands.
    """
    if epochs is None and max_steps is None and max_minutes is None:
        return train
    counts_epochs = train.schedule == "multistep" or train.adversarial is not None
    if epochs is None and not counts_epochs:
        epochs = UNBOUNDED_EPOCHS
    cleared = train.model_copy(update={"max_steps": None, "max_minutes": None})
    return _override(cleared, epochs=epochs, max_steps=max_steps, max_minutes=max_minutes)


def cmd_simulate(a: argparse.Namespace) -> None:
    """Run the simulate stage."""
    from srbio.config import SimulateParams, load_config

    (params,) = _sections(a, "simulate")
    hr_spacing = a.hr_spacing
    entries = {e.name: e for e in load_config(a.config).simulate} if a.config else {}
    if entries and a.settings is None:  # one entry of the config's simulate list
        if a.name not in entries:
            raise ValueError(f"{a.config}: give --name, one of its simulate entries "
                             f"{sorted(entries)} (got {a.name!r})")
        entry = entries[a.name]
        params = SimulateParams(**entry.model_dump(exclude={"name", "hr", "hr_spacing"}))
        hr_spacing = hr_spacing or entry.hr_spacing
    params = _override(params, seed=a.seed, scale=a.scale)
    from srbio.stages.simulate import run_simulate

    run_simulate(a.hr, a.out, params, hr_spacing=hr_spacing, overwrite=a.overwrite)


def cmd_register(a: argparse.Namespace) -> None:
    """Run the register stage."""
    (cfg,) = _sections(a, "register")
    cfg = _override(cfg, transform=a.transform, scale=a.scale, metric=a.metric, init=a.init,
                    on_failure=a.on_failure)
    from srbio.stages.register import run_register

    run_register(a.fixed, a.moving, a.out, cfg, fixed_spacing=a.fixed_spacing,
                 moving_spacing=a.moving_spacing, truth=a.truth, overwrite=a.overwrite)


def cmd_crop(a: argparse.Namespace) -> None:
    """Run the crop stage."""
    (cfg,) = _sections(a, "crop")
    from srbio.stages.crop import run_crop

    run_crop(a.registered, a.hr, a.out, cfg=cfg, overwrite=a.overwrite)


def cmd_enhance(a: argparse.Namespace) -> None:
    """Run the enhance stage."""
    (cfg,) = _sections(a, "enhance")
    if not cfg.steps:
        raise ValueError(f"{a.config or '--settings'}: enhance.steps is empty: nothing to do")
    from srbio.stages.enhance import run_enhance

    run_enhance(a.crop, a.out, cfg, base=a.base, overwrite=a.overwrite)


def cmd_normalise(a: argparse.Namespace) -> None:
    """Run the normalise stage."""
    norm, split = _sections(a, "normalise", "split")
    from srbio.stages.prepare import run_normalise

    run_normalise(a.crops, a.out, norm, split, overwrite=a.overwrite)


def cmd_patches(a: argparse.Namespace) -> None:
    """Run the patches stage."""
    patches, split = _sections(a, "patches", "split")
    from srbio.stages.prepare import run_patches

    run_patches(a.crops, a.out, patches, split, overwrite=a.overwrite)


def cmd_train(a: argparse.Namespace) -> None:
    """Run the train stage (inputs checked before torch is imported)."""
    model, train = _sections(a, "model", "train")
    train = _budget(train, epochs=a.epochs, max_steps=a.max_steps, max_minutes=a.max_minutes)
    from srbio.stages.train import run_train  # checks its inputs before importing torch

    run_train(a.patches, a.normalisation, a.out, model, train, resume=a.resume,
              auto_resume=a.auto_resume,
              progress=not a.quiet, overwrite=a.overwrite)


def cmd_export(a: argparse.Namespace) -> None:
    """Run the export stage (missing ONNX packages or a failed check: a clear error)."""
    (cfg,) = _sections(a, "export")
    from srbio.stages.export import run_export

    try:
        run_export(a.model, a.out, a.format, overwrite=a.overwrite, cfg=cfg,
                   test_input=a.test_input)
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None


def cmd_predict(a: argparse.Namespace) -> None:
    """Run the predict stage."""
    (cfg,) = _sections(a, "predict")
    cfg = _override(cfg, tile_shape=a.tile, overlap=a.overlap, device=a.device, dtype=a.dtype,
                    resample=False if a.no_resample else None, halo=a.halo,
                    precision=a.precision, tta=a.tta, workers=a.workers)
    from srbio.stages.predict import parse_part, run_predict

    if sum(map(bool, (a.part, a.gather, a.init))) > 1:
        raise ValueError("give at most one of --part, --gather and --init")
    run_predict(a.model, a.input, a.output, cfg, spacing=a.spacing, progress=not a.quiet,
                overwrite=a.overwrite, allow_missing_chunks=a.allow_missing_chunks,
                part=parse_part(a.part), gather=a.gather, init=a.init)


def cmd_evaluate(a: argparse.Namespace) -> None:
    """Run the evaluate stage."""
    split, predict = _sections(a, "split", "predict")
    from srbio.stages.evaluate import run_evaluate

    run_evaluate(a.model, a.crops, a.out, split, predict, overwrite=a.overwrite)


def cmd_report(a: argparse.Namespace) -> None:
    """Write the report."""
    from srbio.stages.report import run_report

    run_report(a.out, evaluation=a.evaluation, training=a.training,
               normalisation=a.normalisation, registrations=a.registrations,
               overwrite=a.overwrite)


def cmd_models(a: argparse.Namespace) -> None:
    """List every network and preset with its parameters and FLOPs per output pixel."""
    import json

    from srbio.models.registry import check_scale

    if a.network:
        check_scale(a.network, a.scale)
    from srbio.models.summary import describe

    rows = [r for r in describe(scale=a.scale, channels=a.channels)
            if a.network in (None, r["name"])]
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"networks at scale {a.scale}, {a.channels} channel(s); FLOPs count multiply and add")
    wn = max([4, *(len(r["name"]) for r in rows)])
    wp = max([6, *(len(r["preset"]) + 1 for r in rows)])
    print(f"{'name':{wn}s} {'preset':{wp}s} {'parameters':>12s} {'FLOP / output px':>17s}  "
          "reference")
    for r in rows:
        star = "*" if r["default"] else " "
        print(f"{r['name']:{wn}s} {r['preset'] + star:{wp}s} {r['parameters']:12,d} "
              f"{r['flops_per_output_pixel']:17,.0f}  {r['reference']}")
    print("* the network's default preset (model.preset)")


def cmd_provenance(a: argparse.Namespace) -> int:
    """Print what made an srbio output, back through its inputs; 1 when --verify finds changes."""
    import json

    from srbio.stages.provenance import changed, format_trace, trace

    result = trace(a.path, verify=a.verify)
    print(json.dumps(result, indent=2) if a.json else format_trace(result), end="\n" * a.json)
    return 1 if a.verify and changed(result) else 0


def cmd_schema(a: argparse.Namespace) -> None:
    """Print the JSON schema."""
    from srbio.config import json_schema

    print(json_schema())


def cmd_validate(a: argparse.Namespace) -> None:
    """Validate a config file."""
    from srbio.config import load_config
    from srbio.stages.checks import check_pairs, check_paths

    cfg = load_config(a.config)
    problems = check_paths(cfg) + check_pairs(cfg)
    if problems:
        raise ValueError(f"{a.config}: does not fit its input files:\n  " + "\n  ".join(problems))
    print(f"{a.config}: valid ({len(cfg.pairs)} pairs, {len(cfg.predict.volumes)} volumes "
          f"to predict)")


Adder = Callable[[str, Callable, str], argparse.ArgumentParser]


def _spacing(p: argparse.ArgumentParser, flag: str, what: str) -> None:
    p.add_argument(flag, nargs="+", type=float, metavar="UM",
                   help=f"{what} pixel size in µm (z y x or y x) if the file lacks it")


def _overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier output of this stage at the output path (never "
                        "anything else)")


def _settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config.yaml whose sections this stage reads")
    p.add_argument("--settings", metavar="JSON",
                   help='the sections as JSON, e.g. \'{"register": {"transform": "rigid"}}\'')


def _add_preparation(add: Adder) -> None:
    s = add("simulate", cmd_simulate, "simulate an LR acquisition (and its true transform) from HR")
    s.add_argument("--hr", required=True)
    s.add_argument("--out", required=True, help="folder for lr.tif, truth.tfm, simulation.json")
    s.add_argument("--name", help="with --config: the simulate entry of that name")
    _spacing(s, "--hr-spacing", "HR")
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
    _spacing(s, "--fixed-spacing", "HR")
    _spacing(s, "--moving-spacing", "LR")
    s.add_argument("--truth", help="ground-truth transform, to report the registration error")

    s = add("crop", cmd_crop, "crop a registered pair to its valid field of view")
    s.add_argument("--registered", required=True, help="output folder of `srbio register`")
    s.add_argument("--hr", required=True)
    s.add_argument("--out", required=True)

    s = add("enhance", cmd_enhance, "enhance a cropped HR (deconvolve / denoise / background)")
    s.add_argument("--crop", required=True, help="output folder of `srbio crop`")
    s.add_argument("--out", required=True)
    s.add_argument("--base", default=".", help="folder that relative PSF paths start from")

    for name, func, help_ in (("normalise", cmd_normalise, "fix the normalisation values"),
                              ("patches", cmd_patches, "extract 16-bit training patches")):
        s = add(name, func, help_)
        s.add_argument("--crops", nargs="+", required=True, help="output folders of `srbio crop`")
        s.add_argument("--out", required=True)


def _halo(text: str) -> int | str:
    return text if text == "auto" else int(text)


def _add_model_stages(add: Adder) -> None:
    s = add("train", cmd_train, "train the network")
    s.add_argument("--patches", required=True, help="patch store (patches.json beside it)")
    s.add_argument("--normalisation", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--epochs", type=int, help="train.epochs (these three options, any of "
                   "them, replace the config's budget: --max-minutes 10 alone trains 10 "
                   "minutes, whatever the config's max_steps and epochs)")
    s.add_argument("--max-steps", type=int, help="a budget of steps (train.max_steps)")
    s.add_argument("--max-minutes", type=float, help="a wall-time budget (train.max_minutes)")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--resume", action="store_true",
                     help="continue an interrupted run from OUT/checkpoints/last.ckpt")
    how.add_argument("--auto-resume", action="store_true",
                     help="continue OUT/checkpoints/last.ckpt if it was written with the same "
                     "settings and data, else start afresh saying why (what the workflow does: "
                     "a retried or requeued job continues)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = add("predict", cmd_predict, "super-resolve a TIFF or zarr volume into an OME-Zarr")
    s.add_argument("--model", required=True)
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True, help="OME-Zarr folder to create (+ OUTPUT.json)")
    _spacing(s, "--spacing", "input")
    s.add_argument("--tile", nargs=2, type=int, metavar=("Y", "X"))
    s.add_argument("--overlap", type=int, help="LR px shared (blended) by neighbouring tiles")
    s.add_argument("--halo", type=_halo, help="LR px of context cropped per tile side, or auto")
    s.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    s.add_argument("--tta", type=int, choices=[1, 2, 4, 8], help="test-time augmentation")
    s.add_argument("--workers", type=int, help="local worker processes")
    s.add_argument("--part", metavar="I/N", help="predict the I-th of N shares of the blocks "
                   "(no pyramid, no record: run --gather after every part)")
    s.add_argument("--gather", action="store_true", help="after every --part: build the "
                   "pyramid and write the record")
    s.add_argument("--init", action="store_true", help="only create the store (replacing "
                   "another job's with --overwrite), before --part jobs")
    s.add_argument("--device", help="auto, cpu, mps, cuda or cuda:N")
    s.add_argument("--dtype", choices=["uint16", "float32"])
    s.add_argument("--no-resample", action="store_true",
                   help="refuse an input whose pixel size is not the training one")
    s.add_argument("--allow-missing-chunks", action="store_true",
                   help="a zarr input whose writer skipped empty chunks (read as fill value)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = add("export", cmd_export, "export a model to TorchScript / ONNX (checked against "
            "PyTorch) and/or a bioimage.io model package")
    s.add_argument("--model", required=True)
    s.add_argument("--out", required=True, help="folder for the exported files + export.json")
    s.add_argument("--format", nargs="+", choices=["torchscript", "onnx", "bioimageio"],
                   default=["torchscript", "onnx"], help="bioimageio: a bioimage.io model "
                   "package (bioimageio/ and model.bioimageio.zip; needs export.authors in "
                   "--config)")
    s.add_argument("--test-input", help="bioimageio: an LR image (TIFF/zarr) to cut the "
                   "package's test input from (default: the model's validation patches, else "
                   "srbio's sample)")

    s = add("evaluate", cmd_evaluate, "held-out metrics against bicubic/nearest baselines")
    s.add_argument("--model", required=True)
    s.add_argument("--crops", nargs="+", required=True)
    s.add_argument("--out", required=True)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(prog="srbio", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"srbio {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="<stage>")

    def add(name: str, func: Callable, help_: str, settings: bool = True
            ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        # SUPPRESS: the sub-command's default must not overwrite a top-level `srbio -v`
        sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging")
        if settings:
            _settings(sp)
        if name not in ("schema", "validate", "models", "provenance"):
            _overwrite(sp)
        return sp

    _add_preparation(add)
    _add_model_stages(add)
    s = add("report", cmd_report, "write the Markdown report from the stage records", False)
    s.add_argument("--out", required=True)
    s.add_argument("--evaluation", nargs="+", required=True,
                   help="evaluation.json of `srbio evaluate`, one per model")
    s.add_argument("--training", nargs="+", required=True,
                   help="training.json of `srbio train`, one per model")
    s.add_argument("--normalisation", required=True)
    s.add_argument("--registrations", nargs="+", required=True, help="registration.json files")
    s = add("models", cmd_models, "list networks and presets: parameters, FLOPs per pixel", False)
    s.add_argument("--scale", type=int, default=2)
    s.add_argument("--channels", type=int, default=1)
    s.add_argument("--network", help="only this network")
    s.add_argument("--json", action="store_true", help="a JSON list of objects")
    s = add("provenance", cmd_provenance, "what made an srbio output: srbio version, git, "
            "config sections and input checksums, back through its inputs", False)
    s.add_argument("path", help="any output of srbio (file, folder, store, record, model)")
    s.add_argument("--json", action="store_true", help="the same as JSON, for scripts")
    s.add_argument("--verify", action="store_true", help="recompute the recorded checksums; "
                   "exit 1 when an input changed or is missing since")
    add("schema", cmd_schema, "print the JSON schema of config.yaml", False)
    s = add("validate", cmd_validate, "validate a config file", False)
    s.add_argument("config")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    for noisy in ("matplotlib", "PIL", "fsspec", "asyncio", "onnx_ir", "onnxscript",
                  "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    received: list[int] = []
    previous = _on_signals(received)
    try:
        status = args.func(args)
    except (ValueError, TypeError, OSError) as exc:  # bad input, or a file system's refusal
        print(f"srbio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = received[0] if received else getattr(exc, "signum", signal.SIGINT)
        detail = f" ({exc})" if str(exc) else ""
        print(f"srbio {args.command}: stopped by {signal.Signals(signum).name}{detail}; "
              f"this run's outputs were not completed (what a rerun can continue is kept: "
              f"finished prediction blocks, training checkpoints for --resume)",
              file=sys.stderr)
        return 128 + int(signum)
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
    return int(status or 0)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _on_signals(received: list[int]) -> dict:
    """Make SIGTERM and SIGHUP stop a stage like Ctrl-C: cleanup runs, the exit is non-zero.

    Returns the handlers they replaced (restored when the command ends). Only in the main
    thread (elsewhere Python cannot set handlers).
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {signal.SIGINT: signal.getsignal(signal.SIGINT)}  # Lightning may ignore it
    for signum in _STOP_SIGNALS:
        previous[signum] = signal.getsignal(signum)
        if previous[signum] is not signal.SIG_IGN:  # e.g. SIGHUP under nohup stays ignored
            signal.signal(signum, stop)
    return previous
