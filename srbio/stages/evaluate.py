"""Stage ``evaluate``: held-out metrics of the network against upsampling baselines.

Every method is scored after the fixed normalisation and after a linear intensity fit to HR.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from srbio.config import PredictConfig, SplitConfig
from srbio.core.grid import band
from srbio.core.metrics import linear_fit, near_duplicates, nrmse, psnr, ssim, upsample
from srbio.core.normalise import denormalise, normalise
from srbio.io.atomic import replace_folder
from srbio.io.locks import releases_claims
from srbio.io.outputs import claim
from srbio.io.records import (
    NO_TTA,
    EvaluateFiles,
    Evaluation,
    NearDuplicate,
    PairEvaluation,
    Scores,
)
from srbio.stages.common import PreparedPair, lineage, split_regions

log = logging.getLogger(__name__)

DUPLICATE_CORRELATION = 0.99  # above it, two pairs' HR images count as one sample twice


def _test_region(c: PreparedPair, split: SplitConfig, scale: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LR, HR and the HR valid mask of a pair's held-out test band."""
    if c.scale != scale:
        raise ValueError(f"pair {c.name} was cropped at scale {c.scale} but the model upsamples "
                         f"by {scale}")
    axis, regions = split_regions(c.lr, split)
    bounds = regions["test"]
    lr_t = band(c.lr, axis, bounds).astype(np.float32)
    hr_t = band(c.hr, axis, bounds, scale).astype(np.float32)
    valid = band(c.hr_mask, axis, bounds, scale)
    if lr_t.shape[axis] < 4 or not valid.any():
        raise ValueError(f"{c.name}: the test region is only {lr_t.shape[axis]} pixels "
                         f"({int(valid.sum())} valid); raise split.test_fraction")
    return lr_t, hr_t, valid


def baselines(lr_as_hr: np.ndarray, scale: int) -> dict[str, np.ndarray]:
    """Upsampling baselines of an LR already in HR units: nearest and bicubic (identity at ×1)."""
    if scale == 1:  # nearest and bicubic would both be the identity
        return {"identity": lr_as_hr}
    return {"nearest": upsample(lr_as_hr, scale, order=0),
            "bicubic": upsample(lr_as_hr, scale, order=3)}


def upsampled(lr: np.ndarray, predictor, norm, scale: int
              ) -> tuple[dict[str, np.ndarray], float]:
    """An LR region upsampled by the baselines and the network, in HR units.

    The baselines see the LR through the model's fixed normalisation (LR range → HR range),
    as the network does. Returns the outputs (``nearest``, ``bicubic`` or ``identity``, and
    ``network``) and the network's seconds.
    """
    as_hr = denormalise(normalise(lr, *norm.lr.pair), *norm.hr.pair)
    outputs = baselines(as_hr, scale)
    start = time.perf_counter()
    outputs["network"] = predictor.predict_image(lr)
    return outputs, time.perf_counter() - start


def _scores(pred: np.ndarray, target: np.ndarray, valid: np.ndarray) -> Scores:
    return Scores(psnr=psnr(pred, target, data_range=1.0, mask=valid),
                  ssim=ssim(pred, target, data_range=1.0, mask=valid),
                  nrmse=nrmse(pred, target, mask=valid))


def score_methods(outputs: dict[str, np.ndarray], hr: np.ndarray, valid: np.ndarray,
                  hr_range: tuple[float, float]
                  ) -> tuple[dict[str, Scores], dict[str, Scores], dict[str, tuple[float, float]]]:
    """PSNR / SSIM / NRMSE of every method's output (HR units) on HR-normalised values.

    Returns the scores after the fixed normalisation, the scores after a least-squares linear
    fit of each method to HR over the valid pixels (CARE-style), and each fit's (a, b).
    """
    target = normalise(hr, *hr_range)
    scores, fitted, fits = {}, {}, {}
    for method, out in outputs.items():
        pred = normalise(out, *hr_range)
        scores[method] = _scores(pred, target, valid)
        a, b = linear_fit(pred, target, mask=valid)
        fits[method] = (a, b)
        fitted[method] = _scores(a * pred + b, target, valid)
    return scores, fitted, fits


def _mean(results: dict[str, PairEvaluation], attr: str) -> dict[str, Scores]:
    """Mean scores over pairs, per method."""
    per_pair = [getattr(r, attr) for r in results.values()]
    return {m: Scores(**{k: float(np.mean([p[m].model_dump()[k] for p in per_pair]))
                         for k in Scores.model_fields}) for m in per_pair[0]}


def _duplicates(pairs) -> list[NearDuplicate]:
    """Pairs whose cropped HR images correlate above :data:`DUPLICATE_CORRELATION`."""
    found = near_duplicates({c.name: c.hr for c in pairs}, threshold=DUPLICATE_CORRELATION)
    for a, b, r in found:
        log.warning("pairs %s and %s are near-duplicates (HR correlation %.4f > %g): they count "
                    "one sample twice", a, b, r, DUPLICATE_CORRELATION)
    return [NearDuplicate(pairs=(a, b), correlation=r) for a, b, r in found]


def _evaluate_pair(c: PreparedPair, predictor, split: SplitConfig, scale: int, norm,
                   figure_path) -> tuple[PairEvaluation, tuple[float, float], int]:
    """A pair's scores and comparison picture; the network's seconds and output pixels.

    The seconds are those with TTA, and without it when TTA is on (else 0). The pass without
    TTA runs first, so any warm-up (a GPU's) is not counted as TTA's cost.
    """
    from srbio.stages import plots

    lr_t, hr_t, valid = _test_region(c, split, scale)
    plain, no_tta = 0.0, None
    if predictor.runner.tta > 1:  # what test-time augmentation gains, and costs
        predictor.runner.tta, tta = 1, predictor.runner.tta
        start = time.perf_counter()
        no_tta = predictor.predict_image(lr_t)
        plain = time.perf_counter() - start
        predictor.runner.tta = tta
    outputs, seconds = upsampled(lr_t, predictor, norm, scale)
    if no_tta is not None:
        outputs[NO_TTA] = no_tta
    scores, fitted, fits = score_methods(outputs, hr_t, valid, norm.hr.pair)
    first = "LR (nearest)" if scale > 1 else "LR"
    plots.comparison(figure_path, c.name, {first: outputs.get("nearest", outputs.get("identity")),
                                           **({"bicubic": outputs["bicubic"]} if scale > 1
                                              else {}),
                                           "network": outputs["network"], "HR": hr_t})
    log.info("%s: PSNR %s; after a linear fit %s", c.name,
             {m: round(s.psnr, 2) for m, s in scores.items()},
             {m: round(s.psnr, 2) for m, s in fitted.items()})
    return (PairEvaluation(methods=scores, fitted=fitted, fit=fits,
                           test_shape_hr=list(hr_t.shape), test_valid_fraction=float(valid.mean()),
                           test_valid_pixels=int(valid.sum()), figure=""),
            (seconds, plain), int(outputs["network"].size))


@releases_claims
def run_evaluate(model_path: str | os.PathLike, crop_dirs: Sequence[str | os.PathLike],
                 out_dir: str | os.PathLike, split: SplitConfig, predict_cfg: PredictConfig, *,
                 overwrite: bool = False) -> Evaluation:
    """PSNR / SSIM / NRMSE on each pair's held-out test region.

    The network's prediction of the registered LR is compared with HR, next to nearest and
    bicubic upsampling of the same LR (the identity at scale 1). Every method's output is put
    in HR units through the model's fixed normalisation (the same mapping the network gets),
    then metrics are computed on HR-normalised values (data range 1), over the valid pixels of
    the test region only (the crop's mask) — and again after a least-squares linear intensity
    fit of each method to HR, so no method wins by gain or offset alone. Pairs that failed
    registration QC are left out; near-duplicate pairs are flagged. Writes the
    :class:`~srbio.io.records.Evaluation` record (with the network's output megapixels per
    second) and one comparison picture per pair.
    """
    from srbio.inference import load_model, resolve_device
    from srbio.stages.common import load_pairs
    from srbio.stages.predict import build_predictor

    claim(out_dir, "evaluate", inputs=[model_path, *crop_dirs], overwrite=overwrite)
    pairs = load_pairs(crop_dirs)
    device = resolve_device(predict_cfg.device)
    model, header = load_model(model_path, device=device)
    scale, norm = header.network.scale, header.normalisation
    predictor = build_predictor(model, header, predict_cfg, device)
    out = EvaluateFiles(out_dir)
    results: dict[str, PairEvaluation] = {}
    seconds, plain, pixels = 0.0, 0.0, 0
    with replace_folder(out.root, "evaluate") as tmp:
        for c in pairs:
            figure = out.figure(c.name)
            result, sec, px = _evaluate_pair(c, predictor, split, scale, norm,
                                             tmp / figure.name)
            results[c.name] = result.model_copy(update={"figure": str(figure)})
            seconds, plain, pixels = seconds + sec[0], plain + sec[1], pixels + px
        record = Evaluation(model=str(model_path), scale=scale, normalisation=norm,
                            pairs=results, mean=_mean(results, "methods"),
                            mean_fitted=_mean(results, "fitted"),
                            network_megapixels_per_second=round(pixels / 1e6 / seconds, 4)
                            if seconds else None, device=str(device), tta=predict_cfg.tta,
                            no_tta_megapixels_per_second=round(pixels / 1e6 / plain, 4)
                            if plain else None,
                            near_duplicates=_duplicates(pairs),
                            **lineage({"split": split, "predict": predict_cfg},
                                      [("model", model_path), *(("crops", d) for d in crop_dirs)]))
        record.write(EvaluateFiles(tmp).record)
    return record
