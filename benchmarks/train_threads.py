"""Does the number of CPU threads change what training learns? By how much, and does it matter?

Prepares the demo in a temporary folder (the workflow up to the patches, the checkout's
config.yaml), then trains the demo's network with the demo's settings once per thread count
(``OMP_NUM_THREADS``, which sets torch's intra-op threads), evaluates each model with `srbio
evaluate` on the held-out band, and reports the largest weight difference to the first count,
and the differences in PSNR and SSIM (fixed normalisation and fitted).

    python benchmarks/train_threads.py [--threads 1 2] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(cwd: Path, *args: str) -> str:
    """`snakemake ARGS` in ``cwd``; its output."""
    r = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True,
                       text=True, check=True)
    return r.stdout + r.stderr


def train_and_evaluate(cwd: Path, train: str, evaluate: str, threads: int) -> dict:
    """The workflow's train and evaluate commands with ``threads``; the test-band scores."""
    out = f"t{threads}"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (train.replace("--out results/train/rcan", f"--out {out}/train"),
                evaluate.replace("--model results/train/rcan/model.pt",
                                 f"--model {out}/train/model.pt")
                .replace("--out results/evaluate/rcan", f"--out {out}/evaluate")):
        cmd = re.sub(r"^OMP_NUM_THREADS=\S+", f"OMP_NUM_THREADS={threads}", cmd)
        r = subprocess.run(cmd, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"{cmd}\n{r.stderr[-3000:]}")
    record = json.loads((cwd / out / "evaluate" / "evaluation.json").read_text())
    return record


def scores(record: dict) -> dict[str, float]:
    """The network's held-out PSNR and SSIM (fixed normalisation, and fitted) of a record."""
    pair = next(iter(record["pairs"].values()))
    return {f"{'fixed' if kind == 'methods' else kind} {m}": float(pair[kind]["network"][m])
            for kind in ("methods", "fitted") for m in ("psnr", "ssim")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: config.yaml's")
    a = p.parse_args()
    from srbio.inference import load_model

    with tempfile.TemporaryDirectory(prefix="srbio-threads-") as tmp_name:
        tmp = Path(tmp_name)
        for name in ("Snakefile", "config.yaml", "rules", "envs", "profiles", "data"):
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp / name)
        extra = ["--config", f'train={{"epochs": {a.epochs}}}'] if a.epochs else []
        snakemake(tmp, "results/patches.json", "results/normalisation.json", "--cores", "2", *extra)
        dry = snakemake(tmp, "-n", "-p", "evaluate", "--cores", "2", *extra)
        train, evaluate = (re.search(rf"^Shell command: (OMP_NUM_THREADS=\S+ python -m srbio "
                                     rf"{stage} .*?) >", dry, re.M)[1]
                           for stage in ("train", "evaluate"))
        rows = {n: train_and_evaluate(tmp, train, evaluate, n) for n in a.threads}
        base = a.threads[0]
        ref = load_model(tmp / f"t{base}" / "train" / "model.pt")[0].state_dict()
        for n in a.threads:
            w = load_model(tmp / f"t{n}" / "train" / "model.pt")[0].state_dict()
            diff = max(float((w[k] - ref[k]).abs().max()) for k in ref)
            scale = max(float(ref[k].abs().max()) for k in ref)
            s, s0 = scores(rows[n]), scores(rows[base])
            print(json.dumps({"threads": n, "max_abs_weight_diff": diff, "largest_weight": scale,
                              "score_diff": {k: round(s[k] - s0[k], 6) for k in s0},
                              "scores": {k: round(v, 4) for k, v in s.items()}}))


if __name__ == "__main__":
    main()
