"""Stage ``report``: one Markdown page from the records of the other stages."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from srbio.io.atomic import atomic_path
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import (
    NO_TTA,
    Evaluation,
    Normalisation,
    RegisterFiles,
    Registration,
    Report,
    TrainFiles,
    Training,
)
from srbio.stages.common import lineage

log = logging.getLogger(__name__)


def _f(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _scores_cells(s) -> str:
    return f"{_f(s.psnr, 2)} | {_f(s.ssim)} | {_f(s.nrmse)}"


def _comparison(models: dict[str, tuple[Evaluation, Training]]) -> list[str]:
    """One row per model and per baseline: held-out means, cost and speed."""
    first = next(iter(models.values()))[0]
    n_px = sum(p.test_valid_pixels for p in first.pairs.values())
    lines = ["## Models compared", "",
             f"Mean over the held-out test regions of {len(first.pairs)} pair(s) "
             f"({n_px:,} valid HR pixels; never used for training, validation or normalisation)."
             " *Fixed*: outputs mapped to HR units with the model's fixed normalisation, metrics "
             "on HR-normalised intensities (data range 1). *Linear fit*: each method's output "
             "first fitted to HR by least squares (gain and offset), as CARE-style evaluations "
             "do, so no method gains from intensity scaling alone.", "",
             "| method | network | parameters | PSNR | SSIM | NRMSE | PSNR (fit) | SSIM (fit) | "
             "NRMSE (fit) | output Mpx/s | training (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method in first.mean:
        if not method.startswith("network"):
            lines.append(f"| {method} | — | — | {_scores_cells(first.mean[method])} | "
                         f"{_scores_cells(first.mean_fitted[method]) if first.mean_fitted else '— | — | —'}"
                         " | — | — |")
    for label, (ev, tr) in models.items():
        net = tr.network
        speed = "—" if ev.network_megapixels_per_second is None else \
            f"{ev.network_megapixels_per_second:.3g} ({ev.device})"
        fitted = _scores_cells(ev.mean_fitted["network"]) if ev.mean_fitted else "— | — | —"
        tta = f" (TTA ×{ev.tta})" if ev.tta > 1 else ""
        lines.append(f"| **{label}**{tta} | {net.name} {tr.preset or ''} ×{net.scale} | "
                     f"{tr.parameters:,} | {_scores_cells(ev.mean['network'])} | {fitted} | "
                     f"{speed} | {tr.seconds} |")
        if NO_TTA in ev.mean:
            plain = _scores_cells(ev.mean_fitted[NO_TTA]) if ev.mean_fitted else "— | — | —"
            fast = "—" if ev.no_tta_megapixels_per_second is None else \
                f"{ev.no_tta_megapixels_per_second:.3g} ({ev.device})"
            lines.append(f"| {label}, no TTA | {net.name} {tr.preset or ''} ×{net.scale} | "
                         f"{tr.parameters:,} | {_scores_cells(ev.mean[NO_TTA])} | {plain} | "
                         f"{fast} | — |")
    return lines


def _evaluation(label: str, ev: Evaluation, rel) -> list[str]:
    lines = [f"## Held-out evaluation: {label}", "",
             "| pair | test region (HR px, valid) | method | PSNR | SSIM | NRMSE | PSNR (fit) | "
             "SSIM (fit) | NRMSE (fit) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, p in ev.pairs.items():
        region = f"{' × '.join(map(str, p.test_shape_hr))} ({p.test_valid_pixels:,})"
        for m, s in p.methods.items():
            fit = _scores_cells(p.fitted[m]) if m in p.fitted else "— | — | —"
            lines.append(f"| {name} | {region} | {m} | {_scores_cells(s)} | {fit} |")
    for dup in ev.near_duplicates:
        a, b = dup.pairs
        lines += ["", f"> **Warning:** pairs {a} and {b} are near-duplicates (HR correlation "
                  f"{dup.correlation:.4f} > 0.99): they count one sample twice in training "
                  "and in these means."]
    lines.append("")
    lines += [f"![{label} {name}]({rel(p.figure)})" for name, p in ev.pairs.items()]
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


def _normalisation(norm: Normalisation) -> list[str]:
    return ["## Normalisation (fixed, stored with the model)", "",
            f"- LR: vmin {_f(norm.lr.vmin, 2)}, vmax {_f(norm.lr.vmax, 2)} ({norm.lr.source})",
            f"- HR: vmin {_f(norm.hr.vmin, 2)}, vmax {_f(norm.hr.vmax, 2)} ({norm.hr.source})",
            ""]


def _training(label: str, training: Training, curve: Path, rel) -> list[str]:
    net = training.network
    wait = "" if training.data_wait_share is None else \
        f"; {100 * training.data_wait_share:.1f} % of the time waiting for data"
    steps = "" if training.steps is None else f" ({training.steps} steps)"
    fitted = "" if training.best_val_psnr_fit is None else \
        (f"; after a linear fit, the best {_f(training.best_val_psnr_fit, 2)} dB "
         f"(bicubic {_f(training.bicubic_val_psnr_fit, 2)} dB)")
    return [f"## Training: {label}", "",
            f"Network {net.name} ×{net.scale} (preset {training.preset}, {net.params}, "
            f"{training.parameters:,} parameters), {training.n_train} training / "
            f"{training.n_val} validation patches, {len(training.epochs)} epochs{steps} in "
            f"{training.seconds} s{wait}; best validation PSNR "
            f"{_f(training.best_val_psnr, 2)} dB (bicubic {_f(training.bicubic_val_psnr, 2)} dB)"
            f"{fitted}.",
            "", f"![training curve {label}]({rel(curve)})", ""]


def _models(evaluations: Sequence[str | os.PathLike], trainings: Sequence[str | os.PathLike]
            ) -> dict[str, tuple[Evaluation, Training, Path]]:
    """Label (the train folder's name) → its evaluation, training and training curve."""
    by_folder = {Path(t).parent.resolve(): Path(t) for t in trainings}
    models = {}
    for e in evaluations:
        ev = Evaluation.read(e)
        folder = Path(ev.model).parent.resolve()
        if folder not in by_folder:
            raise ValueError(f"{e}: evaluates {ev.model}, whose training.json is not among "
                             f"--training {', '.join(map(str, trainings))}")
        models[folder.name] = (ev, Training.read(by_folder[folder]),
                               TrainFiles(by_folder[folder].parent).curve)
    return models


@releases_claims
def run_report(out_md: str | os.PathLike, *, evaluation: Sequence[str | os.PathLike],
               training: Sequence[str | os.PathLike], normalisation: str | os.PathLike,
               registrations: Sequence[str | os.PathLike], overwrite: bool = False) -> Path:
    """Write a Markdown report from the records of evaluate, train, normalise and register.

    ``evaluation`` and ``training`` hold one record per model (matched by the model path each
    evaluation names); the report compares the models side by side.
    """
    evaluation = [evaluation] if isinstance(evaluation, str | os.PathLike) else evaluation
    training = [training] if isinstance(training, str | os.PathLike) else training
    claim(out_md, "report", inputs=[*evaluation, *training, normalisation, *registrations],
          overwrite=overwrite)
    out_md = Path(out_md)

    def rel(p: str | os.PathLike) -> str:
        return os.path.relpath(p, out_md.parent)

    models = _models(evaluation, training)
    regs = [(Path(p), Registration.read(p)) for p in registrations]
    lines = ["# srbio report", "", *_comparison({k: v[:2] for k, v in models.items()}), ""]
    for label, (ev, _, _) in models.items():
        lines += [*_evaluation(label, ev, rel), ""]
    lines += [*_registration(regs, rel), "", *_normalisation(Normalisation.read(normalisation))]
    for label, (_, tr, curve) in models.items():
        lines += _training(label, tr, curve, rel)
    read = [*(("evaluation", e) for e in evaluation), *(("training", t) for t in training),
            ("normalisation", normalisation), *(("registrations", r) for r in registrations)]
    lines += ["", Report(**lineage({}, read)).line()]
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    log.info("report written to %s", out_md)
    return out_md
