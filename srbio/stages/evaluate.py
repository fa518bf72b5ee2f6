"""Stage ``evaluate``: held-out metrics of the network against nearest and bicubic upsampling."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from srbio.config import PredictConfig, SplitConfig
from srbio.core.grid import band
from srbio.core.metrics import nrmse, psnr, ssim, upsample
from srbio.core.normalise import denormalise, normalise
from srbio.io.atomic import replace_folder
from srbio.io.outputs import claim
from srbio.io.records import EvaluateFiles, Evaluation, PairEvaluation, Scores
from srbio.stages.common import PreparedPair, split_regions

log = logging.getLogger(__name__)

METHODS = ("nearest", "bicubic", "network")


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


def score_methods(outputs: dict[str, np.ndarray], hr: np.ndarray, valid: np.ndarray,
                  hr_range: tuple[float, float]) -> dict[str, Scores]:
    """PSNR / SSIM / NRMSE of every method's output (HR units) on HR-normalised values."""
    target = normalise(hr, *hr_range)
    scores = {}
    for method, out in outputs.items():
        pred = normalise(out, *hr_range)
        scores[method] = Scores(psnr=psnr(pred, target, data_range=1.0, mask=valid),
                                ssim=ssim(pred, target, data_range=1.0, mask=valid),
                                nrmse=nrmse(pred, target, mask=valid))
    return scores


def run_evaluate(model_path: str | os.PathLike, crop_dirs: Sequence[str | os.PathLike],
                 out_dir: str | os.PathLike, split: SplitConfig, predict_cfg: PredictConfig, *,
                 overwrite: bool = False) -> Evaluation:
    """PSNR / SSIM / NRMSE on each pair's held-out test region.

    The network's prediction of the registered LR is compared with HR, next to nearest and
    bicubic upsampling of the same LR. Every method's output is put in HR units through the
    model's fixed normalisation (the same mapping the network gets), then metrics are computed
    on HR-normalised values (data range 1), over the valid pixels of the test region only
    (the crop's mask). Pairs that failed registration QC are left out. Writes the
    :class:`~srbio.io.records.Evaluation` record and one comparison picture per pair.
    """
    from srbio.inference import TiledPredictor, load_model, resolve_device
    from srbio.stages import plots
    from srbio.stages.common import load_pairs

    claim(out_dir, "evaluate", inputs=[model_path, *crop_dirs], overwrite=overwrite)
    pairs = load_pairs(crop_dirs)
    device = resolve_device(predict_cfg.device)
    model, header = load_model(model_path, device=device)
    scale, norm = header.network.scale, header.normalisation
    predictor = TiledPredictor(model, scale=scale, lr_range=norm.lr.pair, hr_range=norm.hr.pair,
                               tile_shape=predict_cfg.tile_shape, overlap=predict_cfg.overlap,
                               batch_size=predict_cfg.batch_size, device=device)
    out = EvaluateFiles(out_dir)
    results: dict[str, PairEvaluation] = {}
    with replace_folder(out.root, "evaluate") as tmp:
        for c in pairs:
            lr_t, hr_t, valid = _test_region(c, split, scale)
            as_hr = denormalise(normalise(lr_t, *norm.lr.pair), *norm.hr.pair)
            outputs = {"nearest": upsample(as_hr, scale, order=0),
                       "bicubic": upsample(as_hr, scale, order=3),
                       "network": predictor.predict_image(lr_t)}
            scores = score_methods(outputs, hr_t, valid, norm.hr.pair)
            figure = out.figure(c.name)
            plots.comparison(tmp / figure.name, c.name,
                             {"LR (nearest)": outputs["nearest"], "bicubic": outputs["bicubic"],
                              "network": outputs["network"], "HR": hr_t})
            results[c.name] = PairEvaluation(methods=scores, test_shape_hr=list(hr_t.shape),
                                             test_valid_fraction=float(valid.mean()),
                                             figure=str(figure))
            log.info("%s: PSNR %s", c.name, {m: round(s.psnr, 2) for m, s in scores.items()})
        mean = {m: Scores(**{k: float(np.mean([getattr(r.methods[m], k) for r in results.values()]))
                             for k in Scores.model_fields}) for m in METHODS}
        record = Evaluation(model=str(model_path), scale=scale, normalisation=norm,
                            pairs=results, mean=mean)
        record.write(EvaluateFiles(tmp).record)
    return record
