"""Shared helpers of the prediction benchmarks (not a benchmark itself).

* ``nearest``: an "identity-like" network (nearest-neighbour ×scale upsampling, no weights),
  registered into srbio's network table *in the benchmark's processes only* (never an srbio
  dependency), so the real ``srbio predict`` path can be timed with an essentially free
  network. ``benchmarks/_srbio_cli.py`` is ``python -m srbio`` with that registration.
* model files with random (seeded) weights, LR inputs (zarr arrays, zlib TIFFs) made from the
  bundled sample, and a runner for ``srbio predict`` in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SAMPLE = ROOT / "data" / "sample" / "lls_hr.tif"
CLI = HERE / "_srbio_cli.py"
LR_RANGE, HR_RANGE = (90.0, 450.0), (90.0, 520.0)  # normalisation of the benchmark models


class NearestUp(nn.Module):
    """×scale nearest-neighbour upsampling: a network that costs (almost) nothing."""

    def __init__(self, scale: int = 2, in_channels: int = 1) -> None:
        super().__init__()
        self.scale = int(scale)
        self.config = {"name": "nearest", "scale": self.scale, "in_channels": in_channels}
        self.register_buffer("unused", torch.zeros(1))  # model files must hold some weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


def register_nearest() -> None:
    """Add ``nearest`` to srbio's network table (this process only)."""
    from srbio.models.registry import NETWORKS, NetworkInfo

    if "nearest" not in NETWORKS:
        NETWORKS["nearest"] = NetworkInfo(
            name="nearest", module="_predict_common", builder="NearestUp", scales=(1, 2, 4),
            presets={"none": {}}, parameters=(), default_preset="none",
            description="benchmark only: nearest-neighbour upsampling")


def make_model(path: Path, name: str, preset: str | None = None, *, scale: int = 2,
               seed: int = 0, lr_range=LR_RANGE, hr_range=HR_RANGE) -> Path:
    """A model file of network ``name`` (preset) with random weights seeded by ``seed``."""
    from srbio.io.modelfile import save_model_file
    from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, Range
    from srbio.models import build_network

    if name == "nearest":
        register_nearest()
        net: nn.Module = NearestUp(scale)
    else:
        torch.manual_seed(seed)
        net = build_network(name, scale=scale, preset=preset)
    norm = Normalisation(lr=Range(vmin=lr_range[0], vmax=lr_range[1]),
                         hr=Range(vmin=hr_range[0], vmax=hr_range[1]))
    header = ModelHeader(network=NetworkSpec.from_config(net.config), normalisation=norm,
                         provenance={"benchmark": True})
    return save_model_file(path, header, net.state_dict())


def identity_model(path: Path) -> Path:
    """The ``nearest`` model with equal LR and HR ranges: output pixels = input pixels."""
    return make_model(path, "nearest", lr_range=(0.0, 1000.0), hr_range=(0.0, 1000.0))


def demo_lr(tmp: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """The LR volume simulated (×2) from the bundled lattice light-sheet sample."""
    from srbio.config import SimulateParams
    from srbio.io import read_image
    from srbio.stages.simulate import run_simulate

    sim = run_simulate(SAMPLE, tmp / "sim", SimulateParams(seed=1))
    return read_image(sim.lr)


def tiled_plane(lr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A plane of ``shape`` filled with the LR volume's planes side by side (real texture)."""
    h, w = lr.shape[-2:]
    rows = []
    k = 0
    for _ in range(-(-shape[0] // h)):
        row = []
        for _ in range(-(-shape[1] // w)):
            row.append(lr[k % len(lr)])
            k += 1
        rows.append(np.concatenate(row, axis=1))
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:shape[0], :shape[1]])


def write_zarr(path: Path, shape: tuple[int, ...], block: np.ndarray, chunks: tuple[int, ...],
               spacing: tuple[float, ...]) -> Path:
    """A plain zarr array of ``shape`` (uint16) whose every plane is ``block`` (2D, tiled)."""
    import zarr

    arr = zarr.create_array(str(path), shape=shape, dtype=block.dtype, chunks=chunks)
    plane = tiled_plane(block[None] if block.ndim == 2 else block, shape[-2:])
    if len(shape) == 2:
        arr[:] = plane
    else:
        for z in range(shape[0]):
            arr[z] = plane
    names = ["z", "y", "x"][-len(shape):]
    arr.attrs.update({"axes": names, "spacing": list(spacing)})
    return path


def write_zlib_tiff(path: Path, image: np.ndarray, spacing: tuple[float, ...]) -> Path:
    """A zlib-compressed TIFF (tifffile defaults: strips) with its pixel size."""
    from srbio.io.tiff import write_tiff

    return write_tiff(path, image, spacing=spacing, compression="zlib")


def run_cli(args: list[str], *, env: dict | None = None, check: bool = True
            ) -> tuple[float, subprocess.CompletedProcess]:
    """``srbio <args>`` (with ``nearest`` registered) in a fresh process: wall s, result."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if check and proc.returncode:
        raise RuntimeError(f"srbio {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return wall, proc


def predict_args(model: Path, src: Path, out: Path, settings: dict | None = None,
                 *extra: str) -> list[str]:
    """``predict`` arguments (quiet, the given ``predict`` settings)."""
    args = ["predict", "--model", str(model), "--input", str(src), "--output", str(out),
            "--quiet"]
    if settings:
        args += ["--settings", json.dumps({"predict": settings})]
    return [*args, *extra]


def record(out: Path) -> dict:
    """The prediction record beside the store ``out``."""
    from srbio.io.records import prediction_record_path

    return json.loads(prediction_record_path(out).read_text())


def level(out: Path, k: int) -> np.ndarray:
    """Level ``k`` of a prediction store, in memory."""
    import zarr

    return np.asarray(zarr.open_group(str(out), mode="r")[str(k)][...])


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table: ``columns`` are (key, header, format)."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("" if r.get(k) is None else format(r[k], f)) if not isinstance(
            r.get(k), str) else r[k] for k, _, f in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- a shared machine
def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _own_cpu_seconds() -> float:
    import resource

    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Foreign:
    """Cores used by *other* processes (not this one nor its waited-for children) meanwhile.

    This machine may be shared (tests of another session run on the same cores); every timed
    case reports this figure so a contended measurement is recognisable.
    """

    def __enter__(self) -> Foreign:
        self._j, self._own, self._t = _busy_jiffies(), _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy, _ = _busy_jiffies()
        hz = os.sysconf("SC_CLK_TCK")
        wall = max(time.perf_counter() - self._t, 1e-9)
        other = (busy - self._j[0]) / hz - (_own_cpu_seconds() - self._own)
        self.cores = max(0.0, other / wall)


def wait_for_idle(max_wait: float = 120.0, threshold: float = 0.25, quiet: bool = False
                  ) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` cores; the load."""
    start = time.perf_counter()
    while True:
        with Foreign() as f:
            time.sleep(1.0)
        if f.cores < threshold or time.perf_counter() - start > max_wait:
            if f.cores >= threshold and not quiet:
                print(f"  (warning: other processes use {f.cores:.2f} cores; timing anyway)",
                      flush=True)
            return f.cores
        time.sleep(4.0)


def least_contended(run, *, tries: int = 3, wait: float = 60.0, limit: float = 0.3) -> dict:
    """``run()`` (a dict with ``other``: cores other processes used meanwhile) up to ``tries``
    times, until other processes used under ``limit`` cores; the least contended result.

    A 2-thread OpenMP forward slows several-fold when another process takes one of two cores,
    so a contended figure is measured again rather than reported.
    """
    best: dict | None = None
    for i in range(max(1, tries)):
        wait_for_idle(wait, quiet=True)
        result = run()
        if best is None or result["other"] < best["other"]:
            best = result
        if result["other"] < limit:
            break
        if i + 1 < tries:
            print(f"  (other processes used {result['other']:.2f} cores meanwhile: measuring "
                  f"again)", flush=True)
    assert best is not None
    return best


def environment() -> str:
    """One line: versions, threads, and the srbio commit measured (dirty or not)."""
    import platform

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " + uncommitted srbio/ changes" if git("status", "--porcelain", "srbio") else ""
    return (f"srbio commit {commit}{dirty}; torch {torch.__version__} ({torch.get_num_threads()} "
            f"threads), numpy {np.__version__}, python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs")
