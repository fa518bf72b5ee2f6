"""Registration: accuracy (TRE) against known transforms, itk-elastix side by side, robustness,
speed on a 512x512x64 volume, and the bad-input table.

Pairs are simulated from the bundled real lattice light-sheet volume (and planes of it) with
known transforms (`srbio.core.simulate.simulate_lr`: blur, 2x coarser sampling, shot and read
noise, black border). The error is the distance between the estimated and the true mapping of
HR points, in HR pixels, at up to 3000 random HR pixels inside the valid region (HR valid, LR
valid after the true transform, 10 HR px from borders).

itk-elastix is used here only, never by srbio: `pip install itk-elastix` to enable that column.

    python benchmarks/registration.py            # everything (~15 min on 2 cores)
    python benchmarks/registration.py --quick    # 2D accuracy + robustness only
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from srbio.core import grid
from srbio.core import registration as reg
from srbio.core import transforms as tf
from srbio.core.simulate import simulate_lr
from srbio.core.validity import valid_mask
from srbio.io import read_image, write_tiff

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = ROOT / "data" / "sample" / "lls_hr.tif"
THREADS = int(os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", os.cpu_count() or 1))

# the misalignment each transform model is asked to recover
CASES = {
    "rigid": {"affine_strength": 0.0, "deformation_um": 0.0},
    "affine": {"affine_strength": 0.01, "deformation_um": 0.0},
    "bspline": {"affine_strength": 0.01, "deformation_um": 0.15, "deformation_spacing_um": 12.0},
}


def eval_points(hr: np.ndarray, spacing: tuple, sim, n: int = 3000) -> np.ndarray:
    """HR pixel positions (µm) where both images hold data under the true transform."""
    fv = grid.erode(valid_mask(hr), 10)
    warped = reg.resample(grid.erode(valid_mask(sim.lr), 2).astype(np.uint8), sim.transform,
                          moving_spacing=sim.spacing, shape=hr.shape, spacing=spacing,
                          origin=(0.0,) * hr.ndim, order="nearest").astype(bool)
    return tf.grid_points(fv & warped, spacing, n=n, seed=3)


def tre(transform: sitk.Transform, sim, points: np.ndarray, spacing: tuple) -> np.ndarray:
    return tf.point_error_px(transform, sim.transform, points, spacing)


def run_srbio(hr, spacing, sim, kind, **kw):
    t0 = time.perf_counter()
    result = reg.register(hr, sim.lr, fixed_spacing=spacing, moving_spacing=sim.spacing,
                          transform=kind, fixed_mask=valid_mask(hr),
                          moving_mask=grid.erode(valid_mask(sim.lr), 1), **kw)
    return result.transform, time.perf_counter() - t0


def run_elastix(hr, spacing, sim, kind, points):
    """itk-elastix in its own process (benchmarks/_elastix_worker.py), same thread count."""
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.npz"
        np.savez(job, hr=hr, spacing=spacing, lr=sim.lr, lr_spacing=sim.spacing,
                 fixed_mask=valid_mask(hr), moving_mask=grid.erode(valid_mask(sim.lr), 1),
                 points=points, chain=reg.TRANSFORMS[: reg.TRANSFORMS.index(kind) + 1],
                 threads=THREADS)
        worker = Path(__file__).with_name("_elastix_worker.py")
        env = {**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(THREADS)}
        subprocess.run([sys.executable, str(worker), str(job)], check=True, env=env)
        out = np.load(Path(tmp) / "out.npz")
        moved, seconds = out["moved"], float(out["seconds"])
    truth = tf.transform_points(sim.transform, points)
    return np.sqrt((((moved - truth) / np.asarray(spacing)) ** 2).sum(1)), seconds


def accuracy(hr3, sp3, quick: bool, elastix: bool) -> None:
    print("\n## Accuracy: error vs the true transform (HR px, inside the valid region)\n")
    cols = "| data | model | seeds | srbio mean | srbio max | srbio s |"
    sep = "|---|---|---|---|---|---|"
    if elastix:
        cols += " elastix mean | elastix max | elastix s | time srbio/elastix |"
        sep += "---|---|---|---|"
    print(cols)
    print(sep)
    data = [("2D plane 320x392", hr3[20], sp3[1:], (1, 2, 3))]
    if not quick:
        data.append(("3D 40x320x392", hr3, sp3, (1,)))
    for label, hr, sp, seeds in data:
        for kind, sim_kw in CASES.items():
            rows = {"s": [], "e": []}
            for seed in seeds:
                sim = simulate_lr(hr, spacing=sp, factor=2, seed=seed, **sim_kw)
                pts = eval_points(hr, sp, sim)
                t, secs = run_srbio(hr, sp, sim, kind)
                rows["s"].append((tre(t, sim, pts, sp), secs))
                if elastix:
                    rows["e"].append(run_elastix(hr, sp, sim, kind, pts))
            s_err = np.concatenate([e for e, _ in rows["s"]])
            s_sec = np.mean([s for _, s in rows["s"]])
            line = (f"| {label} | {kind} | {len(seeds)} | {s_err.mean():.3f} | {s_err.max():.3f} "
                    f"| {s_sec:.1f} |")
            if elastix:
                e_err = np.concatenate([e for e, _ in rows["e"]])
                e_sec = np.mean([s for _, s in rows["e"]])
                line += (f" {e_err.mean():.3f} | {e_err.max():.3f} | {e_sec:.1f} | "
                         f"{s_sec / e_sec:.2f} |")
            print(line, flush=True)


def robustness(hr3, sp3) -> None:
    print("\n## Robustness (2D plane, rigid chain, phase-correlation start; converged = mean "
          "error < 1 HR px)\n")
    print("| case | shift (% FOV) | rotation (°) | LR/HR pixel ratio | converged | mean err |")
    print("|---|---|---|---|---|---|")
    hr, sp = hr3[20], sp3[1:]
    fov = np.asarray(hr.shape) * np.asarray(sp)
    cases = [("offset", f, r, 2, {}) for f in (0.0, 0.05, 0.1, 0.2) for r in (0.0, 5.0, 10.0)]
    cases += [("pixel ratio", 0.05, 3.0, ratio, {}) for ratio in (1, 2, 3.25)]
    cases += [("low SNR (0.1 photon/count, read 8)", 0.05, 3.0, 2,
               {"photons_per_count": 0.1, "read_noise": 8.0})]
    for name, frac, rot, ratio, noise in cases:
        sim = simulate_lr(hr, spacing=sp, factor=ratio, seed=7, affine_strength=0.0,
                          deformation_um=0.0, rotation_deg=rot, shift_um=tuple(frac * fov),
                          border_fraction=0.02, **noise)
        pts = eval_points(hr, sp, sim)
        try:
            t, _ = run_srbio(hr, sp, sim, "rigid")
            err = tre(t, sim, pts, sp).mean()
            ok = "yes" if err < 1 else "**no**"
            err_s = f"{err:.3f}"
        except ValueError as exc:
            ok, err_s = "**error**", str(exc)[:60]
        print(f"| {name} | {frac * 100:.0f} | {rot:.0f} | {ratio} | {ok} | {err_s} |", flush=True)


def speed(hr3, sp3) -> None:
    print("\n## Speed: 64x512x512 HR (LR 64x256x256), affine chain, defaults, "
          f"{THREADS} threads\n")
    big = np.pad(hr3, ((12, 12), (96, 96), (60, 60)), mode="reflect")
    sim = simulate_lr(big, spacing=sp3, factor=2, seed=1, deformation_um=0.0)
    pts = eval_points(big, sp3, sim, n=2000)
    t, secs = run_srbio(big, sp3, sim, "affine")
    print(f"| volume | seconds | mean err (HR px) |\n|---|---|---|\n"
          f"| {big.shape} | {secs:.1f} | {tre(t, sim, pts, sp3).mean():.3f} |")


def bad_inputs(hr3, sp3) -> None:
    print("\n## Bad inputs (`srbio register`): exit code, message, outputs left\n")
    print("| input | exit | message (first line) | files left |")
    print("|---|---|---|---|")
    import tifffile

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        plane = hr3[20]
        write_tiff(d / "hr.tif", plane, spacing=sp3[1:])
        sim = simulate_lr(plane, spacing=sp3[1:], factor=2, seed=1)
        write_tiff(d / "lr.tif", sim.lr, spacing=sim.spacing)
        nan = sim.lr.astype(np.float32)
        nan[10, 10] = np.nan
        write_tiff(d / "nan.tif", nan, spacing=sim.spacing)
        write_tiff(d / "constant.tif", np.full(sim.lr.shape, 7, np.uint16), spacing=sim.spacing)
        empty = np.zeros(sim.lr.shape, np.uint16)
        empty[5:7, 5:7] = 300
        write_tiff(d / "empty.tif", empty, spacing=sim.spacing)
        tifffile.imwrite(d / "nosize.tif", sim.lr)
        write_tiff(d / "vol.tif", hr3[:4, ::2, ::2], spacing=(sp3[0], sp3[1] * 2, sp3[2] * 2))
        (d / "corrupt.tif").write_bytes(b"II*\x00garbage")
        cases = [("NaN in LR", "hr.tif", "nan.tif"), ("constant LR", "hr.tif", "constant.tif"),
                 ("empty LR (all fill)", "hr.tif", "empty.tif"),
                 ("LR without pixel size", "hr.tif", "nosize.tif"),
                 ("LR finer than HR (swapped)", "lr.tif", "hr.tif"),
                 ("3D LR vs 2D HR", "hr.tif", "vol.tif"), ("corrupt TIFF", "hr.tif", "corrupt.tif"),
                 ("missing file", "hr.tif", "nothere.tif")]
        for label, fixed, moving in cases:
            out = d / f"out-{moving}"
            r = subprocess.run([sys.executable, "-m", "srbio", "register", "--fixed", d / fixed,
                                "--moving", d / moving, "--out", out], capture_output=True,
                               text=True)
            msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
            msg = msg.replace(str(d) + "/", "").replace("|", "/")[:110]
            left = len(list(out.iterdir())) if out.exists() else 0
            print(f"| {label} | {r.returncode} | {msg} | {left} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2D accuracy and robustness only")
    p.add_argument("--no-elastix", action="store_true")
    a = p.parse_args()
    elastix = importlib.util.find_spec("itk") is not None and not a.no_elastix
    if not elastix and not a.no_elastix:
        print("(itk-elastix not installed: `pip install itk-elastix` for the side-by-side)")
    hr3, sp3 = read_image(SAMPLE)
    print(f"# Registration benchmark ({THREADS} threads)")
    accuracy(hr3, sp3, a.quick, elastix)
    robustness(hr3, sp3)
    if not a.quick:
        speed(hr3, sp3)
        bad_inputs(hr3, sp3)


if __name__ == "__main__":
    main()
