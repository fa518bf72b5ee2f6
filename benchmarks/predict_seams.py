"""Tiling seams: tiled ÷ whole-image prediction for RCAN (srbio and MONAI), and exactness of
tiling for purely local networks (2D and 3D), all against the whole-image prediction computed
in the same run.

1. RCAN (presets ``--presets``, random weights seeded; and RCAN tiny briefly fitted,
   ``--fit-steps``, to the bundled sample's 2×2-binned HR → HR, so its weights are not random)
   on real LR planes (``--planes``: planes of the LR simulated from the bundled sample), tiles
   of ``--tile`` (48) LR px:

   * error: mean |tiled − whole| ÷ p99.9 of the whole output (target ≤ 1e-3), and the max;
   * seam score: the mean absolute step between neighbouring output rows (columns) *across*
     tile boundaries ÷ the mean step across every other LR pixel boundary (even output rows:
     steps inside one LR pixel's 2 × 2 outputs differ systematically for a pixel-shuffle
     network, so they are left out) (target ≤ 1.02). The same score of the whole output at
     the same positions is shown (what the image alone gives there: with few boundaries it
     is far from 1, so the score alone is noisy), and "boundary ÷ whole": the mean step
     across the boundaries in the tiled output ÷ the same in the whole output (1: the tiling
     changed nothing there; "within 2 %": |boundary ÷ whole − 1| ≤ 0.02).

   srbio: overlap 0, 8 and 16 with ``halo auto`` (and halo 0, overlap 0, as the naive
   reference); boundaries are the ends of the tiles' kept parts. MONAI
   ``sliding_window_inference`` (when installed), modes gaussian and constant, roi 48, overlap
   fractions matching srbio's read windows ((2 × halo + overlap) ÷ tile) and 0.25;
   boundaries are the window edges.
2. Local networks (three 3×3 convolutions + pixel shuffle: reach 3 LR px; a Conv3d version
   reaching 3 planes too): max |tiled − whole| ÷ the whole output's range at several tile
   sizes, 2D, and 3D slabs with ``depth``/``depth_margin``; with ``halo auto`` this is exact
   (float rounding), and a halo (or margin) of reach − 1 is shown as the control.

    python benchmarks/predict_seams.py [--presets tiny,small] [--planes 10,20,30] [--tile 48]
        [--fit-steps 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _predict_common import HR_RANGE, LR_RANGE, SAMPLE, demo_lr, environment, table
from torch import nn

from srbio.core.normalise import denormalise, normalise
from srbio.inference import TiledPredictor, halo_for


# ------------------------------------------------------------------------------- networks
class Local2D(nn.Module):
    """Three 3×3 convolutions and a ×2 pixel shuffle: each output sees ±3 LR px."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 4, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Local3D(nn.Module):
    """Three 3×3×3 convolutions and a lateral ×2 shuffle: ±3 planes and ±3 LR px."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv3d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv3d(8, 4, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        n, _, d, h, w = y.shape
        return y.view(n, 2, 2, d, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, 1, d, 2 * h, 2 * w)


def rcan(preset: str, seed: int = 0) -> nn.Module:
    from srbio.models import build_network

    torch.manual_seed(seed)
    return build_network("rcan", scale=2, preset=preset).eval()


def fitted_rcan(steps: int, seed: int = 0) -> nn.Module:
    """RCAN tiny after ``steps`` Adam steps of L1 on 2×2-binned sample HR → HR (32² patches)."""
    from srbio.io import read_image

    hr, _ = read_image(SAMPLE)
    hr = hr.astype(np.float32)
    h, w = hr.shape[1] // 2 * 2, hr.shape[2] // 2 * 2
    hr = hr[:, :h, :w]
    lr = hr.reshape(len(hr), h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    x_all = torch.from_numpy(normalise(lr, *LR_RANGE))
    y_all = torch.from_numpy(normalise(hr, *HR_RANGE))
    net = rcan("tiny", seed).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = np.random.default_rng(seed)
    for _ in range(steps):
        z = gen.integers(0, len(lr), 16)
        i = gen.integers(0, lr.shape[1] - 32, 16)
        j = gen.integers(0, lr.shape[2] - 32, 16)
        x = torch.stack([x_all[a, b:b + 32, c:c + 32] for a, b, c in zip(z, i, j, strict=True)])
        y = torch.stack([y_all[a, 2 * b:2 * b + 64, 2 * c:2 * c + 64]
                         for a, b, c in zip(z, i, j, strict=True)])
        opt.zero_grad()
        loss = nn.functional.l1_loss(net(x[:, None]), y[:, None])
        loss.backward()
        loss = loss.detach()
        opt.step()
    print(f"  fitted RCAN tiny: {steps} steps, last L1 {loss.item():.4f} (normalised units)")
    return net.eval()


# ------------------------------------------------------------------------------- measures
def predictor(model: nn.Module, tile: tuple[int, int], overlap: int, halo: int,
              **slab) -> TiledPredictor:
    return TiledPredictor(model, scale=2, lr_range=LR_RANGE, hr_range=HR_RANGE,
                          tile_shape=tile, overlap=overlap, halo=halo, **slab)


def whole(model: nn.Module, image: np.ndarray, **slab) -> np.ndarray:
    """The whole-image prediction: one tile covering the image (one slab for a 3D network)."""
    side = max(image.shape[-2:])
    if slab:
        slab = {"depth": image.shape[0], "depth_margin": 0}
    return predictor(model, (side, side), 0, 0, **slab).predict_image(image)


def kept_edges(p: TiledPredictor, shape: tuple[int, int]) -> tuple[list[int], list[int]]:
    """Output rows / columns where a tile's kept part starts or ends (inside the image)."""
    plan = p.plan(shape, tuple(slice(0, 2 * n) for n in shape))
    edges = []
    for axis, n in zip(plan.axes, shape, strict=True):
        e = {b * axis.factor for t in axis.tiles for b in t.keep}
        edges.append(sorted(v for v in e if 0 < v < 2 * n))
    return edges[0], edges[1]


def monai_edges(shape: tuple[int, int], roi: int, overlap: float) -> tuple[list[int], list[int]]:
    """Output rows / columns where a MONAI window starts or ends (inside the image)."""
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    interval = _get_scan_interval(shape, (roi, roi), 2, (overlap, overlap))
    slices = dense_patch_slices(shape, (roi, roi), interval)
    edges = []
    for axis, n in enumerate(shape):
        e = {2 * int(b) for s in slices for b in (s[axis].start, s[axis].stop)}
        edges.append(sorted(v for v in e if 0 < v < 2 * n))
    return edges[0], edges[1]


def steps(out: np.ndarray, rows: list[int], cols: list[int], factor: int = 2
          ) -> tuple[float, float, float, int]:
    """Sum of |steps| across the boundaries, their count, sum elsewhere, count elsewhere.

    Step ``b`` is ``|out[b] − out[b − 1]|``. "Elsewhere" is every other step between two LR
    pixels (``b`` a multiple of ``factor``, as tile boundaries are): steps inside one LR
    pixel's output (a pixel shuffle's sub-pixels) differ systematically from those between
    LR pixels and would bias the score.
    """
    gy = np.abs(np.diff(out, axis=0))
    gx = np.abs(np.diff(out, axis=1))
    sums = []
    for g, edges, axis in ((gy, rows, 0), (gx, cols, 1)):
        b = np.arange(1, g.shape[axis] + 1)
        at = np.isin(b, edges)
        rest = (b % factor == 0) & ~at
        on, off = (g[at], g[rest]) if axis == 0 else (g[:, at], g[:, rest])
        sums.append((on.sum(), on.size, off.sum(), off.size))
    return tuple(float(sum(v)) for v in zip(*sums, strict=True))


class Score:
    """Error and seam score pooled over planes."""

    def __init__(self) -> None:
        self.err, self.norm, self.max, self.tiled, self.whole = [], [], 0.0, [], []

    def add(self, tiled: np.ndarray, ref: np.ndarray, rows, cols) -> None:
        p999 = float(np.percentile(ref, 99.9))
        diff = np.abs(tiled - ref)
        self.err.append(diff.mean() / p999)
        self.max = max(self.max, float(diff.max()) / p999)
        self.tiled.append(steps(tiled, rows, cols))
        self.whole.append(steps(ref, rows, cols))

    def row(self) -> dict:
        t, w = np.sum(self.tiled, axis=0), np.sum(self.whole, axis=0)
        return {"mean_err": float(np.mean(self.err)), "max_err": self.max,
                "seam": (t[0] / t[1]) / (t[2] / t[3]), "seam_whole": (w[0] / w[1]) / (w[2] / w[3]),
                "boundary": t[0] / w[0]}


def monai_predict(model: nn.Module, plane: np.ndarray, roi: int, overlap: float,
                  mode: str) -> np.ndarray:
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(normalise(plane, *LR_RANGE))[None, None]
    with torch.inference_mode():
        y = sliding_window_inference(x, roi_size=(roi, roi), sw_batch_size=4, predictor=model,
                                     overlap=overlap, mode=mode)
    return denormalise(y[0, 0].numpy(), *HR_RANGE)


def rcan_part(a: argparse.Namespace, lr: np.ndarray) -> None:
    try:
        import monai  # noqa: F401

        have_monai = True
    except ImportError:
        have_monai = False
        print("  MONAI is not installed: its rows are skipped (pip install monai)")
    planes = [lr[int(z)].astype(np.float32) for z in a.planes.split(",")]
    tile = (a.tile, a.tile)
    models = [(f"rcan {p} (random)", rcan(p)) for p in a.presets.split(",") if p]
    if a.fit_steps:
        models.append((f"rcan tiny (fitted {a.fit_steps} steps)", fitted_rcan(a.fit_steps)))
    for label, model in models:
        start = time.perf_counter()
        # halos first: a prediction leaves the network's weights inference tensors, after
        # which srbio's receptive_field (autograd) fails (see the report)
        configs = [(0, 0)] + [(o, halo_for(model, "auto", dims=2, device="cpu",
                                           tile_shape=tile, overlap=o)[0]) for o in (0, 8, 16)]
        _, reach = halo_for(model, "auto", dims=2, device="cpu", tile_shape=tile, overlap=0)
        refs = [whole(model, pl) for pl in planes]
        rows = []
        fractions = {0.25}
        for overlap, halo in configs:
            p = predictor(model, tile, overlap, halo)
            score = Score()
            for pl, ref in zip(planes, refs, strict=True):
                rows_, cols_ = kept_edges(p, pl.shape)
                score.add(p.predict_image(pl), ref, rows_, cols_)
            if (overlap, halo) != (0, 0):
                fractions.add(round((2 * halo + overlap) / a.tile, 4))
            rows.append({"route": f"srbio overlap {overlap}, halo {halo}"
                         + (" (naive)" if (overlap, halo) == (0, 0) else " (auto)"),
                         "tiles": len(p.plan(pl.shape, tuple(slice(0, 2 * n) for n in pl.shape))),
                         **score.row()})
        if have_monai:
            for frac in sorted(fractions):
                for mode in ("gaussian", "constant"):
                    score = Score()
                    for pl, ref in zip(planes, refs, strict=True):
                        rows_, cols_ = monai_edges(pl.shape, a.tile, frac)
                        score.add(monai_predict(model, pl, a.tile, frac, mode), ref, rows_, cols_)
                    rows.append({"route": f"MONAI {mode}, overlap {frac:g}", **score.row()})
        for r in rows:
            r["ok"] = "yes" if r["mean_err"] <= 1e-3 and r["seam"] <= 1.02 else "no"
            r["ok2"] = "yes" if abs(r["boundary"] - 1) <= 0.02 else "no"
        print(f"\n{label}: reach {reach} LR px, tiles {a.tile}², planes {a.planes} "
              f"({planes[0].shape}), {time.perf_counter() - start:.0f} s")
        print(table(rows, [("route", "route", ""), ("tiles", "tiles/plane", "d"),
                           ("mean_err", "mean|Δ|/p99.9", ".2e"),
                           ("max_err", "max|Δ|/p99.9", ".2e"), ("seam", "seam score", ".4f"),
                           ("seam_whole", "same, whole output", ".4f"),
                           ("boundary", "boundary ÷ whole", ".4f"),
                           ("ok", "targets met", ""), ("ok2", "boundary within 2 %", "")]))


def local_part(a: argparse.Namespace, lr: np.ndarray) -> None:
    torch.manual_seed(0)
    net2 = Local2D().eval()
    plane = lr[len(lr) // 2].astype(np.float32)
    tiles = [int(t) for t in a.local_tiles.split(",")]
    halos = {(t, o): halo_for(net2, "auto", dims=2, device="cpu", tile_shape=(t, t), overlap=o)
             for t in tiles for o in (0, 4)}  # before any prediction (see rcan_part)
    ref = whole(net2, plane)
    span = float(ref.max() - ref.min())
    rows = []
    for tile in tiles:
        for overlap in (0, 4):
            auto, reach = halos[tile, overlap]
            for halo in sorted({auto, reach - 1}, reverse=True):
                p = predictor(net2, (tile, tile), overlap, halo)
                err = float(np.abs(p.predict_image(plane) - ref).max()) / span
                note = ("auto, limited by the tile" if halo == auto < reach else
                        "auto" if halo == auto else "control: reach − 1")
                rows.append({"net": "2D", "tile": f"{tile}²", "overlap": overlap, "halo": halo,
                             "reach": reach, "depth": "", "tiles": len(p.plan(
                                 plane.shape, tuple(slice(0, 2 * n) for n in plane.shape))),
                             "err": err, "control": note})
    torch.manual_seed(0)
    net3 = Local3D().eval()
    vol = lr[:a.local_planes].astype(np.float32)
    halos = {t: halo_for(net3, "auto", dims=3, device="cpu", tile_shape=(t, t), overlap=0)
             for t in tiles[:2]}
    ref = whole(net3, vol, depth=True)
    span = float(ref.max() - ref.min())
    for tile in tiles[:2]:
        auto, reach = halos[tile]
        for depth in (4, 8):
            for margin in (3, 2):
                p = predictor(net3, (tile, tile), 0, auto, depth=depth, depth_margin=margin)
                err = float(np.abs(p.predict_image(vol) - ref).max()) / span
                rows.append({"net": "3D", "tile": f"{tile}²", "overlap": 0, "halo": auto,
                             "reach": reach, "depth": f"{depth} ± {margin}",
                             "tiles": len(p.plan(vol.shape, (slice(0, len(vol)),) + tuple(
                                 slice(0, 2 * n) for n in vol.shape[1:]))),
                             "err": err,
                             "control": "auto" if margin == 3 else "control: margin reach − 1"})
    print(f"\nlocal networks (reach 3 LR px; 3D: 3 planes): max |tiled − whole| ÷ range; plane "
          f"{plane.shape}, volume {vol.shape}; 'control' rows use halo or margin reach − 1")
    print(table(rows, [("net", "net", ""), ("tile", "tile", ""), ("overlap", "overlap", "d"),
                       ("halo", "halo", "d"), ("reach", "measured reach", "d"),
                       ("depth", "slab ± margin", ""), ("tiles", "tiles", "d"),
                       ("err", "max|Δ|/range", ".2e"), ("control", "halo / margin", "")]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="tiny,small", help="RCAN presets with random weights")
    p.add_argument("--fit-steps", type=int, default=200,
                   help="steps fitting RCAN tiny to the sample (0: skip)")
    p.add_argument("--planes", default="10,20,30", help="LR planes (z) of the demo LR")
    p.add_argument("--tile", type=int, default=48)
    p.add_argument("--local-tiles", default="16,24,32,48,64")
    p.add_argument("--local-planes", type=int, default=20, help="3D check: LR planes")
    p.add_argument("--parts", default="rcan,local")
    a = p.parse_args()
    print(environment())
    with tempfile.TemporaryDirectory(prefix="srbio-seams-") as name:
        lr, _ = demo_lr(Path(name))
    if "rcan" in a.parts:
        rcan_part(a, lr)
    if "local" in a.parts:
        local_part(a, lr)


if __name__ == "__main__":
    main()
