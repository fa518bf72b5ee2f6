"""Tiled prediction (`srbio predict`): throughput, overhead over the bare network, precision,
achieved GFLOP/s, memory and parallel routes, each against a baseline measured in the same run.

Parts (``--parts a,b,c,d,e,f``; all by default):

a. loop ceiling: an identity-like network (nearest ×2, ``benchmarks/_predict_common.py``,
   registered for the benchmark only) on one LR plane (default 4096²) held in memory (numpy),
   in a zarr array (1024² chunks) and in a zlib TIFF: the whole ``srbio predict`` process
   (wall, and the record's seconds) and, in this process, the scheduler loop alone
   (``predict_store``), the pyramid, and a sequential read / compute / write breakdown of
   ``TiledPredictor.predict_chunk`` over the store's blocks. Output Mpx/s; target ≥ 50.
b. RCAN ``small`` (random weights): the whole ``srbio predict`` ÷ the bare fp32 forward
   ``model(x)`` on the same tiles (same shapes, batches and count), same run; target ≥ 0.8.
   The brief's 200 Mpx output is ``--b-planes 50 --b-side 1024`` (about 2 × 7 min when the
   two cores are free); the default is 4 × 1024² (16.8 Mpx out).
c. bf16 (+ channels_last, srbio's default memory format for every precision) against fp32
   on b's input: speed ratio, the record's error, and the error measured on the two outputs.
d. achieved GFLOP/s of RCAN small (b) and RCAN paper (one ``--paper-side``² plane) against
   the 410 GFLOP/s fp32 practical peak of the 2-core development machine (``--peak``).
e. memory: peak RSS (the record's, each run a fresh process) of a ≥ 4 GiB output (uint16,
   pyramid included) ÷ that of a ≈ 0.5 GiB output, identity network; target ≤ 1.2.
f. parallel: ``--workers 2`` and ``--part 1/2`` + ``--part 2/2`` (run at once, one thread
   each) + ``--gather`` against serial (RCAN tiny): speed-up, and level 0 and level 1
   bit-identical; a serial run with one thread shows whether a difference comes from the
   thread count.

The machine may be shared: every timed row says how many cores *other* processes used
meanwhile ("other cores"); a case first waits up to ``--wait`` s for the cores to be free, and
is measured again (up to ``--tries`` times) when others used ≥ 0.3 cores meanwhile.

    python benchmarks/predict_throughput.py [--parts a,b,c,d,e,f] [--plane 4096]
        [--b-planes 4] [--b-side 1024] [--paper-side 192] [--e-planes 3,25] [--e-side 4096]
        [--f-planes 16] [--f-side 1024] [--repeats 2] [--wait 60] [--tries 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _predict_common import (
    CLI,
    HR_RANGE,
    Foreign,
    demo_lr,
    environment,
    identity_model,
    least_contended,
    level,
    make_model,
    predict_args,
    record,
    register_nearest,
    run_cli,
    table,
    tiled_plane,
    wait_for_idle,
    write_zarr,
    write_zlib_tiff,
)

PEAK = 410.0  # GFLOP/s, practical oneDNN fp32 peak of the 2-core development machine


def _mpx(shape) -> float:
    return float(np.prod(shape)) / 1e6


OPTS = argparse.Namespace(tries=3, wait=60.0)  # set from the command line


def measured(run) -> dict:
    """:func:`least_contended` with the command line's tries and wait."""
    return least_contended(run, tries=OPTS.tries, wait=OPTS.wait)


def cli_case(label: str, model: Path, src: Path, out: Path, settings: dict | None,
             *extra: str, env: dict | None = None) -> dict:
    """``srbio predict`` in a fresh process: wall, the record, other processes' load."""

    def run() -> dict:
        shutil.rmtree(out, ignore_errors=True)
        with Foreign() as f:
            wall, _ = run_cli(predict_args(model, src, out, settings, *extra), env=env)
        rec = record(out)
        mpx = _mpx(rec["output_shape"])
        return {"case": label, "mpx": mpx, "wall": wall, "seconds": rec["seconds"],
                "wall_rate": mpx / wall, "rate": rec["megapixels_per_second"],
                "rss": rec["peak_rss_mb"], "other": f.cores, "record": rec, "out": out}

    return measured(run)


# ----------------------------------------------------------------------------------- part a
def loop_case(label: str, model: Path, src: Path, data, tmp: Path, repeats: int,
              wait: float) -> dict:
    """In this process: the scheduler loop, the pyramid, and a sequential phase breakdown."""
    from srbio.config import PredictConfig
    from srbio.core.dtypes import cast_clipped
    from srbio.inference import halo_for
    from srbio.inference.schedule import build_pyramid, predict_store
    from srbio.io.store import PredictionStore
    from srbio.stages.predict import PredictJob, _input, _layout, _load, _predictor

    cfg = PredictConfig()
    net, header, device = _load(model, cfg)
    job = PredictJob(str(model), str(src), str(tmp / "loop.ome.zarr"), cfg, None, False, 0)
    lazy, sp, origin, _, _ = _input(job, header)
    data = lazy if data is None else data
    halo, _ = halo_for(net, cfg.halo, dims=2, device=device, tile_shape=cfg.tile_shape,
                       overlap=cfg.overlap)
    predictor = _predictor(net, header, cfg, device, halo)
    layout = _layout(predictor, tuple(data.shape), sp, origin, cfg)
    mpx = _mpx(layout["shape"])
    best: dict = {}
    for _ in range(repeats):
        out = tmp / "loop.ome.zarr"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(out.with_name(f".{out.name}.progress"), ignore_errors=True)
        store = PredictionStore.create(out, fingerprint="bench", dtype=cfg.dtype, **layout)
        blocks = store.blocks(0)
        wait_for_idle(wait, quiet=True)
        with Foreign() as f:
            start = time.perf_counter()
            predict_store(store, list(range(len(blocks))), done=0, total=len(blocks),
                          job=(predictor, data, store), progress=False)
            loop = time.perf_counter() - start
            build_pyramid(store, progress=False)
            pyramid = time.perf_counter() - start - loop
        # the same blocks again, one phase at a time (no threads): where the time goes
        phase = {"read": 0.0, "compute": 0.0, "write": 0.0}
        for i, region in enumerate(blocks):
            t0 = time.perf_counter()
            plan, window = predictor.read(data, region)
            t1 = time.perf_counter()
            chunk = predictor.compute(plan, window)
            t2 = time.perf_counter()
            block, _, _ = cast_clipped(chunk.data, store.levels[0].dtype)
            store.write_block(0, i, block)
            t3 = time.perf_counter()
            phase["read"] += t1 - t0
            phase["compute"] += t2 - t1
            phase["write"] += t3 - t2
        row = {"case": label, "mpx": mpx, "loop": mpx / loop, "loop_s": loop,
               "pyramid_s": pyramid, "with_pyramid": mpx / (loop + pyramid), "other": f.cores,
               **{k: mpx / v for k, v in phase.items()},
               "sequential": mpx / sum(phase.values())}
        if not best or row["loop"] > best["loop"]:
            best = row
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(out.with_name(f".{out.name}.progress"), ignore_errors=True)
    return best


def part_a(tmp: Path, a: argparse.Namespace, lr: np.ndarray, sp: tuple) -> None:
    print(f"\n== a. loop ceiling: identity-like network (nearest ×2), one {a.plane}² LR plane "
          f"→ {2 * a.plane}² ({4 * a.plane ** 2 / 1e6:.1f} Mpx) uint16 out; target ≥ 50 "
          f"output Mpx/s", flush=True)
    register_nearest()
    model = identity_model(tmp / "identity.pt")
    plane = tiled_plane(lr, (a.plane, a.plane))
    zarr_in = write_zarr(tmp / "a.zarr", plane.shape, plane, (1024, 1024), sp[1:])
    tif_in = write_zlib_tiff(tmp / "a.tif", plane, sp[1:])
    import tifffile

    tiled_tif = tmp / "a_tiles.tif"  # the same, in 512² tiles (reads decode what they use)
    tifffile.imwrite(tiled_tif, plane, compression="zlib", tile=(512, 512), imagej=True,
                     resolution=(1 / sp[2], 1 / sp[1]), metadata={"unit": "um", "axes": "YX"})
    rows = []
    for label, src in (("zarr 1024² chunks", zarr_in), ("zlib TIFF (strips)", tif_in),
                       ("zlib TIFF, 512² tiles", tiled_tif)):
        rows.append(cli_case(f"{label}: srbio predict", model, src, tmp / "a_out.ome.zarr",
                             None))
    rows.append(cli_case("zarr 1024² chunks: --workers 2", model, zarr_in,
                         tmp / "a_out.ome.zarr", None, "--workers", "2"))
    print("whole process (fresh interpreter; 'record s' excludes interpreter start and imports)")
    print(table(rows, [("case", "input / route", ""), ("mpx", "out Mpx", ".1f"),
                       ("wall", "wall s", ".2f"), ("wall_rate", "Mpx/s (wall)", ".1f"),
                       ("seconds", "record s", ".2f"), ("rate", "Mpx/s (record)", ".1f"),
                       ("rss", "peak RSS MB", ".0f"), ("other", "other cores", ".2f")]))
    loops = [loop_case("numpy (in memory)", model, zarr_in, plane, tmp, a.repeats, a.wait),
             loop_case("zarr 1024² chunks", model, zarr_in, None, tmp, a.repeats, a.wait),
             loop_case("zlib TIFF (strips)", model, tif_in, None, tmp, a.repeats, a.wait),
             loop_case("zlib TIFF, 512² tiles", model, tiled_tif, None, tmp, a.repeats,
                       a.wait)]
    print(f"\nloop only, in this process (best of {a.repeats}): predict_store's pipelined "
          f"loop; + pyramid; then one block at a time: read, compute (tiles → network → "
          f"stitch), cast + write; all output Mpx/s")
    print(table(loops, [("case", "input", ""), ("loop", "loop", ".1f"),
                        ("loop_s", "loop s", ".2f"), ("pyramid_s", "pyramid s", ".2f"),
                        ("with_pyramid", "loop+pyramid", ".1f"), ("read", "read", ".1f"),
                        ("compute", "compute", ".1f"), ("write", "write", ".1f"),
                        ("sequential", "r+c+w", ".1f"), ("other", "other cores", ".2f")]))
    for r in rows[:2] + loops[1:3]:
        rate = r.get("loop", r.get("rate"))
        print(f"  {r['case']}: {rate:.1f} Mpx/s → target ≥ 50 {'met' if rate >= 50 else 'NOT met'}")


# ----------------------------------------------------------------------------------- part b
def bare_forward(model_path: Path, out: Path, rec: dict, shape: tuple[int, ...],
                 precision: str = "fp32", probe: bool = False) -> dict:
    """:func:`bare_forward_here` in a fresh process, as ``srbio predict`` runs."""
    job = out.with_name(out.name + ".bare.json")
    job.write_text(json.dumps({"model": str(model_path), "out": str(out), "shape": list(shape),
                               "precision": precision, "probe": probe,
                               "record": {k: rec[k] for k in ("scale", "tile_shape", "overlap",
                                                              "halo", "tiles")}}))

    def run() -> dict:
        with Foreign() as f:
            proc = subprocess.run([sys.executable, __file__, "--bare-child", str(job)],
                                  capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"bare forward failed:\n{proc.stderr[-3000:]}")
        return {**json.loads(proc.stdout.splitlines()[-1]), "other": f.cores}

    return measured(run)


def bare_child(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    res = bare_forward_here(Path(job["model"]), Path(job["out"]), job["record"],
                            tuple(job["shape"]), job["precision"], job["probe"])
    print(json.dumps(res))


def bare_forward_here(model_path: Path, out: Path, rec: dict, shape: tuple[int, ...],
                      precision: str = "fp32", probe: bool = False) -> dict:
    """``model(x)`` on tiles of the shapes, batches and count the prediction computed."""
    from srbio.config import PredictConfig
    from srbio.inference import TiledPredictor, load_model
    from srbio.io.store import PredictionStore

    cfg = PredictConfig()
    net, header = load_model(model_path)
    predictor = TiledPredictor(net, scale=rec["scale"], lr_range=header.normalisation.lr.pair,
                               hr_range=header.normalisation.hr.pair,
                               tile_shape=tuple(rec["tile_shape"]), overlap=rec["overlap"],
                               halo=rec["halo"], batch_size=cfg.batch_size)
    batches = []
    for region in PredictionStore(out).blocks(0):
        plan = predictor.plan(shape, region)
        tiles = [tuple(s.stop - s.start for s in plan.read(i))[-2:] for i in plan.indices()]
        batches += [(len(tiles[i:i + cfg.batch_size]), *tiles[i])
                    for i in range(0, len(tiles), cfg.batch_size)]
    count = sum(b[0] for b in batches)
    if count != rec["tiles"]:
        raise RuntimeError(f"bare forward: {count} tiles, the prediction computed {rec['tiles']}")
    probe_s = None
    if probe:  # what `halo auto` (and the record's reach) costs srbio before predicting
        from srbio.inference.predict import receptive_field

        start = time.perf_counter()
        receptive_field(net)
        probe_s = time.perf_counter() - start
    net = net.eval().to(memory_format=torch.channels_last)
    inputs = {b: torch.rand(b[0], 1, *b[1:]).contiguous(memory_format=torch.channels_last)
              for b in set(batches)}
    out_px = 0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                enabled=precision == "bf16"):
        net(inputs[batches[0]])  # warm-up (oneDNN primitive creation), not timed
        start = time.perf_counter()
        for b in batches:
            out_px += net(inputs[b]).shape[0] * rec["scale"] ** 2 * b[1] * b[2]
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "tiles": count, "batches": len(batches),
            "tile_mpx": out_px / 1e6, "probe_s": probe_s}


def part_b(tmp: Path, a: argparse.Namespace, lr: np.ndarray, sp: tuple) -> dict:
    shape = (a.b_planes, a.b_side, a.b_side)
    print(f"\n== b. RCAN small, LR zarr {shape} → {4 * np.prod(shape) / 1e6:.1f} Mpx out: "
          f"srbio predict ÷ bare fp32 forward on the same tiles; target ≥ 0.8", flush=True)
    model = make_model(tmp / "rcan-small.pt", "rcan", "small")
    src = write_zarr(tmp / "b.zarr", shape, lr, (1, min(1024, a.b_side), min(1024, a.b_side)),
                     sp)
    run = cli_case("srbio predict fp32", model, src, tmp / "b_fp32.ome.zarr", None)
    bare = bare_forward(model, run["out"], run["record"], shape, probe=True)
    rec = run["record"]
    rows = [{"case": "bare model(x), fp32, channels_last", "seconds": bare["seconds"],
             "rate": run["mpx"] / bare["seconds"], "tiles": bare["tiles"],
             "other": bare["other"]},
            {"case": "srbio predict fp32 (record s)", "seconds": rec["seconds"],
             "rate": run["rate"], "tiles": rec["tiles"], "other": run["other"],
             "ratio": bare["seconds"] / rec["seconds"]},
            {"case": "srbio predict fp32 (process wall)", "seconds": run["wall"],
             "rate": run["wall_rate"], "tiles": rec["tiles"], "other": run["other"],
             "ratio": bare["seconds"] / run["wall"]}]
    print(f"tiles {rec['tile_shape']} halo {rec['halo']} (reach {rec['reach']}) overlap "
          f"{rec['overlap']}, {rec['blocks']} blocks, {bare['tiles']} tiles in "
          f"{bare['batches']} batches; tiles' output {bare['tile_mpx']:.1f} Mpx for "
          f"{run['mpx']:.1f} Mpx kept; receptive-field probe {bare['probe_s']:.1f} s; bare "
          f"forward in a fresh process too")
    print(table(rows, [("case", "route", ""), ("seconds", "s", ".1f"),
                       ("rate", "out Mpx/s", ".3f"), ("tiles", "tiles", "d"),
                       ("ratio", "bare ÷ srbio", ".3f"), ("other", "other cores", ".2f")]))
    ratio = rows[1]["ratio"]
    print(f"  srbio ÷ bare throughput {ratio:.3f} → target ≥ 0.8 "
          f"{'met' if ratio >= 0.8 else 'NOT met'}")
    return {"model": model, "src": src, "shape": shape, "fp32": run, "bare": bare}


# ----------------------------------------------------------------------------------- part c
def part_c(tmp: Path, a: argparse.Namespace, b: dict) -> None:
    print("\n== c. bf16 + channels_last vs fp32 (channels_last), same input as b", flush=True)
    run = cli_case("srbio predict bf16", b["model"], b["src"], tmp / "b_bf16.ome.zarr", None,
                   "--precision", "bf16")
    bare = bare_forward(b["model"], run["out"], run["record"], b["shape"], "bf16")
    fp32, bf16 = b["fp32"], run
    ref = level(fp32["out"], 0).astype(np.float64)
    got = level(bf16["out"], 0).astype(np.float64)
    diff = np.abs(got - ref)
    rec = bf16["record"]
    span = HR_RANGE[1] - HR_RANGE[0]  # make_model's HR normalisation range
    rows = [{"case": "fp32 (from b)", "seconds": fp32["record"]["seconds"],
             "rate": fp32["rate"], "other": fp32["other"]},
            {"case": "bf16", "seconds": rec["seconds"], "rate": bf16["rate"],
             "speed": fp32["record"]["seconds"] / rec["seconds"], "other": bf16["other"]},
            {"case": "bare bf16 forward (same tiles)", "seconds": bare["seconds"],
             "rate": bf16["mpx"] / bare["seconds"],
             "speed": b["bare"]["seconds"] / bare["seconds"], "other": bare["other"]}]
    print(table(rows, [("case", "precision", ""), ("seconds", "record s", ".1f"),
                       ("rate", "out Mpx/s", ".3f"), ("speed", "speed-up vs fp32", ".2f"),
                       ("other", "other cores", ".2f")]))
    print(f"  record: max |bf16 − fp32| on the first batch {rec['precision_max_abs_error']:.4g}"
          f" = {100 * rec['precision_error_of_range']:.3f} % of the HR range ({span:g})")
    print(f"  measured on the uint16 outputs: max {diff.max():.4g} = "
          f"{100 * diff.max() / span:.3f} % of the HR range, "
          f"{100 * diff.max() / (ref.max() - ref.min()):.3f} % of the output's range "
          f"({ref.min():.0f}–{ref.max():.0f}); mean {diff.mean():.4g}; "
          f"pixels differing {100 * np.mean(diff > 0):.1f} %")
    print("  (bf16 also pays for the record's check: one batch in bf16 and one in fp32)")
    shutil.rmtree(run["out"], ignore_errors=True)


# ----------------------------------------------------------------------------------- part d
def part_d(tmp: Path, a: argparse.Namespace, lr: np.ndarray, sp: tuple, b: dict | None
           ) -> None:
    from srbio.models.summary import flops_per_output_pixel

    print(f"\n== d. achieved fp32 GFLOP/s vs {a.peak:g} GFLOP/s practical peak", flush=True)
    rows = []
    if b is not None:
        f = flops_per_output_pixel("rcan", scale=2, preset="small")
        run, bare = b["fp32"], b["bare"]
        rows += [{"case": "small: srbio predict (kept px)", "flop": f, "rate": run["rate"],
                  "gflops": f * run["rate"] / 1e3, "other": run["other"]},
                 {"case": "small: srbio predict (computed px)", "flop": f,
                  "rate": bare["tile_mpx"] / run["seconds"],
                  "gflops": f * bare["tile_mpx"] / run["seconds"] / 1e3,
                  "other": run["other"]},
                 {"case": "small: bare forward, same tiles", "flop": f,
                  "rate": bare["tile_mpx"] / bare["seconds"],
                  "gflops": f * bare["tile_mpx"] / bare["seconds"] / 1e3,
                  "other": bare["other"]}]
    side = a.paper_side
    model = make_model(tmp / "rcan-paper.pt", "rcan", "paper")
    src = write_zarr(tmp / "d.zarr", (side, side), lr[len(lr) // 2], (side, side), sp[1:])
    run = cli_case("paper", model, src, tmp / "d_out.ome.zarr", None)
    bare = bare_forward(model, run["out"], run["record"], (side, side), probe=True)
    f = flops_per_output_pixel("rcan", scale=2, preset="paper")
    rows += [{"case": f"paper: srbio predict, {side}² (kept px)", "flop": f, "rate": run["rate"],
              "gflops": f * run["rate"] / 1e3, "other": run["other"]},
             {"case": "paper: srbio predict (computed px)", "flop": f,
              "rate": bare["tile_mpx"] / run["seconds"],
              "gflops": f * bare["tile_mpx"] / run["seconds"] / 1e3, "other": run["other"]},
             {"case": "paper: bare forward, same tiles", "flop": f,
              "rate": bare["tile_mpx"] / bare["seconds"],
              "gflops": f * bare["tile_mpx"] / bare["seconds"] / 1e3, "other": bare["other"]}]
    for r in rows:
        r["peak"] = 100 * r["gflops"] / a.peak
    print(table(rows, [("case", "RCAN preset: route", ""),
                       ("flop", "FLOP / out px", ".0f"), ("rate", "Mpx/s", ".4f"),
                       ("gflops", "GFLOP/s", ".1f"), ("peak", "% of peak", ".1f"),
                       ("other", "other cores", ".2f")]))
    print("  FLOP per output pixel: srbio.models.summary (torch.utils.flop_counter: convs and "
          "matmuls, multiply and add counted apart); 'computed px' includes the halos")
    print(f"  paper: {run['record']['tiles']} tile(s), halo {run['record']['halo']} (reach "
          f"{run['record']['reach']}); srbio {run['record']['seconds']:.1f} s (record) of which "
          f"the receptive-field probe alone takes {bare['probe_s']:.1f} s (timed in the bare "
          f"process); bare forward {bare['seconds']:.1f} s")


# ----------------------------------------------------------------------------------- part e
def part_e(tmp: Path, a: argparse.Namespace, lr: np.ndarray, sp: tuple) -> None:
    small, big = (int(v) for v in a.e_planes.split(","))
    side = a.e_side
    print(f"\n== e. peak RSS: identity network, LR zarr (planes, {side}, {side}), 1024² "
          f"chunks; uint16 output with its pyramid; target big ÷ small ≤ 1.2", flush=True)
    register_nearest()
    model = identity_model(tmp / "identity.pt")
    plane = tiled_plane(lr, (side, side))
    rows = []
    for planes in (small, big):
        src = write_zarr(tmp / "e.zarr", (planes, side, side), plane,
                         (1, min(1024, side), min(1024, side)), sp)
        run = cli_case(f"{planes} planes", model, src, tmp / "e_out.ome.zarr", None)
        levels = run["record"]["levels"]
        gib = sum(np.prod(s) for s in levels) * 2 / 2 ** 30
        rows.append({**run, "gib": gib})
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(run["out"], ignore_errors=True)
    rows[1]["ratio"] = rows[1]["rss"] / rows[0]["rss"]
    print(table(rows, [("case", "input", ""), ("gib", "output GiB", ".2f"),
                       ("mpx", "level-0 Mpx", ".0f"), ("seconds", "record s", ".1f"),
                       ("rate", "Mpx/s (record)", ".1f"), ("rss", "peak RSS MB", ".0f"),
                       ("ratio", "RSS ratio", ".3f"), ("other", "other cores", ".2f")]))
    ok = rows[1]["gib"] >= 4 and rows[1]["ratio"] <= 1.2
    print(f"  {rows[1]['gib']:.2f} GiB vs {rows[0]['gib']:.2f} GiB: RSS ratio "
          f"{rows[1]['ratio']:.3f} → target ≤ 1.2 {'met' if ok else 'NOT met'}"
          f"{'' if rows[1]['gib'] >= 4 else ' (output under 4 GiB: raise --e-planes)'}")


# ----------------------------------------------------------------------------------- part f
def part_f(tmp: Path, a: argparse.Namespace, lr: np.ndarray, sp: tuple) -> None:
    shape = (a.f_planes, a.f_side, a.f_side)
    print(f"\n== f. parallel routes, RCAN tiny, LR zarr {shape} → "
          f"{4 * np.prod(shape) / 1e6:.1f} Mpx out", flush=True)
    model = make_model(tmp / "rcan-tiny.pt", "rcan", "tiny")
    src = write_zarr(tmp / "f.zarr", shape, lr, (1, min(1024, a.f_side), min(1024, a.f_side)),
                     sp)
    serial = cli_case("serial (2 threads)", model, src, tmp / "f_serial.ome.zarr", None)
    serial1 = cli_case("serial, 1 thread (OMP_NUM_THREADS=1)", model, src,
                       tmp / "f_serial1.ome.zarr", None, env={"OMP_NUM_THREADS": "1"})
    workers = cli_case("--workers 2 (1 thread each)", model, src, tmp / "f_workers.ome.zarr",
                       None, "--workers", "2")
    out = tmp / "f_parts.ome.zarr"

    def run_parts() -> dict:
        shutil.rmtree(out, ignore_errors=True)
        with Foreign() as f:
            start = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, str(CLI), *predict_args(
                model, src, out, None, "--part", f"{i}/2")], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
                for i in (1, 2)]
            for p in procs:
                _, err = p.communicate()
                if p.returncode:
                    raise RuntimeError(f"--part failed: {err[-2000:]}")
            parts_s = time.perf_counter() - start
            run_cli(predict_args(model, src, out, None, "--gather"))
            wall = time.perf_counter() - start
        return {"case": "--part 1/2 + 2/2 at once (1 thread each), --gather", "wall": wall,
                "seconds": None, "other": f.cores, "out": out, "record": record(out),
                "parts_s": parts_s}

    parts = measured(run_parts)
    parts_s, wall, rec = parts["parts_s"], parts["wall"], parts["record"]
    rows = [serial, serial1, workers, parts]
    levels = len(serial["record"]["levels"])
    ref = [level(serial["out"], k) for k in range(min(2, levels))]
    ref1 = level(serial1["out"], 0)
    for r in rows:
        r["speedup"] = serial["wall"] / r["wall"]
        got = level(r["out"], 0)
        for k, want in enumerate(ref):
            r[f"same{k}"] = "yes" if np.array_equal(got if k == 0 else level(r["out"], k),
                                                    want) else "NO"
        if levels < 2:
            r["same1"] = "(no level 1)"
        diff = np.abs(got.astype(np.int64) - ref[0])
        r["differ"] = int(np.count_nonzero(diff))
        r["maxdiff"] = int(diff.max())
        r["same_1t"] = "yes" if np.array_equal(got, ref1) else "NO"
    print(table(rows, [("case", "route", ""), ("wall", "wall s", ".1f"),
                       ("seconds", "record s", ".1f"), ("speedup", "speed-up (wall)", ".2f"),
                       ("same0", "level 0 = serial", ""), ("same1", "level 1 = serial", ""),
                       ("differ", "px ≠ serial", "d"), ("maxdiff", "max |Δ|", "d"),
                       ("same_1t", "level 0 = serial 1 thread", ""),
                       ("other", "other cores", ".2f")]))
    print(f"  parts: {parts_s:.1f} s for both parts, {wall - parts_s:.1f} s gather; gather's "
          f"record: blocks_computed {rec['blocks_computed']} of {rec['blocks']}; level 0 has "
          f"{ref[0].size} px")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="a,b,c,d,e,f")
    p.add_argument("--plane", type=int, default=4096, help="a: LR plane side")
    p.add_argument("--b-planes", type=int, default=4)
    p.add_argument("--b-side", type=int, default=1024)
    p.add_argument("--paper-side", type=int, default=192)
    p.add_argument("--e-planes", default="3,25", help="e: planes of the small and big input")
    p.add_argument("--e-side", type=int, default=4096)
    p.add_argument("--f-planes", type=int, default=16)
    p.add_argument("--f-side", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=2, help="a: loop repeats (best kept)")
    p.add_argument("--peak", type=float, default=PEAK)
    p.add_argument("--wait", type=float, default=60,
                   help="s to wait per case for other processes to leave the cores")
    p.add_argument("--tries", type=int, default=3,
                   help="measure a case again (up to this many times) while other processes "
                        "used ≥ 0.3 cores meanwhile; the least contended try is reported")
    p.add_argument("--bare-child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.bare_child:
        bare_child(a.bare_child)
        return
    OPTS.tries, OPTS.wait = a.tries, a.wait
    parts = set(a.parts.split(","))
    print(environment())
    with tempfile.TemporaryDirectory(prefix="srbio-bench-") as name:
        tmp = Path(name)
        lr, sp = demo_lr(tmp)
        b = None
        if "a" in parts:
            part_a(tmp, a, lr, sp)
        if parts & {"b", "c"}:
            b = part_b(tmp, a, lr, sp)
        if "c" in parts:
            part_c(tmp, a, b)
        if "d" in parts:
            part_d(tmp, a, lr, sp, b)
        if "e" in parts:
            part_e(tmp, a, lr, sp)
        if "f" in parts:
            part_f(tmp, a, lr, sp)


if __name__ == "__main__":
    main()
