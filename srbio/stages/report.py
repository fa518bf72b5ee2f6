"""Stage ``report``: one Markdown page from the records of the other stages."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from srbio.io.atomic import atomic_path
from srbio.io.outputs import claim
from srbio.io.records import (
    Evaluation,
    Normalisation,
    RegisterFiles,
    Registration,
    TrainFiles,
    Training,
)

log = logging.getLogger(__name__)


def _f(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _evaluation(ev: Evaluation, rel) -> list[str]:
    lines = ["## Held-out evaluation", "",
             "Test region of every pair (never used for training, validation or normalisation). "
             "Outputs mapped to HR units with the model's fixed normalisation; metrics on "
             "HR-normalised intensities (data range 1), valid pixels only.", "",
             "| pair | method | PSNR (dB) | SSIM | NRMSE |", "|---|---|---|---|---|"]
    rows = [(name, p.methods) for name, p in ev.pairs.items()] + [("**mean**", ev.mean)]
    for name, methods in rows:
        for m, s in methods.items():
            lines.append(f"| {name} | {m} | {_f(s.psnr, 2)} | {_f(s.ssim)} | {_f(s.nrmse)} |")
    lines.append("")
    lines += [f"![{name}]({rel(p.figure)})" for name, p in ev.pairs.items()]
    return lines


def _registration(records: Sequence[tuple[Path, Registration]], rel) -> list[str]:
    lines = ["## Registration", "",
             "| pair | transform | NCC before → after | Mattes MI before → after | error vs truth "
             "(HR px, mean / max) | valid fraction | seconds | QC |",
             "|---|---|---|---|---|---|---|---|"]
    for path, m in records:
        tre = "—" if m.tre_mean_px is None else f"{_f(m.tre_mean_px)} / {_f(m.tre_max_px)}"
        verdict = "passed" if m.qc.passed else "**failed, left out**: " + "; ".join(m.qc.failures)
        lines.append(f"| {path.parent.name} | {m.transform} | {_f(m.ncc_before)} → "
                     f"{_f(m.ncc_after)} | {_f(-m.mattes_before)} → {_f(-m.mattes_after)} | "
                     f"{tre} | {_f(m.valid_fraction, 2)} | {m.seconds} | {verdict} |")
    lines.append("")
    lines += [f"![registration {path.parent.name}]({rel(RegisterFiles(path.parent).qc)})"
              for path, _ in records]
    return lines


def _model(norm: Normalisation, training: Training, curve: Path, rel) -> list[str]:
    net = training.network
    return ["## Normalisation (fixed, stored with the model)", "",
            f"- LR: vmin {_f(norm.lr.vmin, 2)}, vmax {_f(norm.lr.vmax, 2)} ({norm.lr.source})",
            f"- HR: vmin {_f(norm.hr.vmin, 2)}, vmax {_f(norm.hr.vmax, 2)} ({norm.hr.source})", "",
            "## Training", "",
            f"Network {net.name} ×{net.scale} (preset {training.preset}, {net.params}, "
            f"{training.parameters:,} parameters), {training.n_train} training / "
            f"{training.n_val} validation patches, {len(training.epochs)} epochs in "
            f"{training.seconds} s; best validation PSNR {_f(training.best_val_psnr, 2)} dB.", "",
            f"![training curve]({rel(curve)})", ""]


def run_report(out_md: str | os.PathLike, *, evaluation: str | os.PathLike,
               training: str | os.PathLike, normalisation: str | os.PathLike,
               registrations: Sequence[str | os.PathLike], overwrite: bool = False) -> Path:
    """Write a Markdown report from the records of evaluate, train, normalise and register."""
    claim(out_md, "report", inputs=[evaluation, training, normalisation, *registrations],
          overwrite=overwrite)
    out_md = Path(out_md)

    def rel(p: str | os.PathLike) -> str:
        return os.path.relpath(p, out_md.parent)

    ev = Evaluation.read(evaluation)
    regs = [(Path(p), Registration.read(p)) for p in registrations]
    train = Training.read(training)
    curve = TrainFiles(Path(training).parent).curve
    lines = ["# srbio report", "", *_evaluation(ev, rel), "", *_registration(regs, rel), "",
             *_model(Normalisation.read(normalisation), train, curve, rel)]
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    log.info("report written to %s", out_md)
    return out_md
