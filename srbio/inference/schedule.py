"""Schedule the chunk function over a prediction store: in this process, or in N workers.

Every route calls :meth:`~srbio.inference.TiledPredictor.predict_chunk`'s two halves (read,
compute) on the store's blocks and :meth:`~srbio.io.store.PredictionStore.write_block`, so
every route writes the same bytes. In one process, reading the next block's input, writing
the previous block's output and building the pyramid blocks it completes run in threads while
the network computes. Worker processes each
build their own network and input from a picklable factory (the model is loaded once per
worker, never pickled into tasks).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from srbio.core.dtypes import cast_clipped
from srbio.inference.monitor import Monitor
from srbio.inference.predict import Chunk, TiledPredictor
from srbio.inference.pyramid import PyramidBuilder
from srbio.io.store import PredictionStore

log = logging.getLogger(__name__)

Job = tuple[TiledPredictor, object, PredictionStore]


@dataclass
class RunStats:
    """What a run computed: blocks, tiles, clipped pixels, the input's range."""

    blocks: int = 0
    pixels: int = 0
    tiles: int = 0
    clipped_low: int = 0
    clipped_high: int = 0
    input_range: list[float] = field(default_factory=lambda: [np.inf, -np.inf])

    def add(self, result: BlockResult) -> None:
        """Count one finished block."""
        self.blocks += 1
        self.pixels += result.pixels
        self.tiles += result.tiles
        self.clipped_low += result.low
        self.clipped_high += result.high
        self.input_range = [min(self.input_range[0], result.input_min),
                            max(self.input_range[1], result.input_max)]


@dataclass
class BlockResult:
    """One written block."""

    index: int
    pixels: int
    tiles: int
    low: int
    high: int
    input_min: float
    input_max: float


def _write(store: PredictionStore, index: int, chunk: Chunk) -> BlockResult:
    block, low, high = cast_clipped(chunk.data, store.levels[0].dtype)
    store.write_block(0, index, block, counts=(chunk.tiles, low, high))
    return BlockResult(index, block.size, chunk.tiles, low, high, chunk.input_min,
                       chunk.input_max)


def predict_block(predictor: TiledPredictor, source, store: PredictionStore, index: int
                  ) -> BlockResult:
    """Predict level-0 block ``index`` of ``store`` from ``source`` and write it."""
    return _write(store, index, predictor.predict_chunk(source, store.blocks(0)[index]))


def _bar(total: int, done: int, progress: bool) -> tqdm:
    return tqdm(total=total, initial=done, desc="predict blocks", unit="block",
                disable=not progress, dynamic_ncols=True)


def _tick(bar: tqdm, stats: RunStats, result: BlockResult, pixels: list, start: float,
          monitor: Monitor | None) -> None:
    stats.add(result)
    pixels[0] += result.pixels
    bar.set_postfix_str(f"{pixels[0] / 1e6 / max(time.perf_counter() - start, 1e-9):.2f} Mpx/s",
                        refresh=False)
    bar.update()
    if monitor is not None:  # a disabled bar keeps n at its start: count this run's blocks
        monitor.report(bar.n + (stats.blocks if bar.disable else 0), bar.total, "blocks")


class _Pyramid:
    """Pyramid blocks built in a thread pool as the level-0 blocks under them finish."""

    def __init__(self, builder: PyramidBuilder | None, pool: ThreadPoolExecutor) -> None:
        self.builder, self.pool, self.futures = builder, pool, []

    def finished(self, index: int) -> None:
        if self.builder is not None:
            self.futures += [self.pool.submit(self.builder.build_chain, *parent)
                             for parent in self.builder.done(0, index)]

    def wait(self) -> None:
        for f in self.futures:
            f.result()


def run_serial(predictor: TiledPredictor, source, store: PredictionStore,
               todo: Sequence[int], *, bar: tqdm, pyramid: PyramidBuilder | None = None,
               monitor: Monitor | None = None) -> RunStats:
    """Predict blocks in this process; reading, writing and the pyramid run in threads."""
    stats, pixels, start = RunStats(), [0], time.perf_counter()
    blocks = store.blocks(0)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="srbio-io") as io:
        pyr = _Pyramid(pyramid, io)
        reads = [io.submit(predictor.read, source, blocks[i]) for i in todo[:1]]
        writes: list[Future] = []

        def written(result: BlockResult) -> None:
            _tick(bar, stats, result, pixels, start, monitor)
            pyr.finished(result.index)

        for n, index in enumerate(todo):
            plan, window = reads.pop(0).result()
            if n + 1 < len(todo):  # read ahead while the network computes
                reads.append(io.submit(predictor.read, source, blocks[todo[n + 1]]))
            chunk = predictor.compute(plan, window)
            while len(writes) > 1:  # at most two blocks waiting to be written
                written(writes.pop(0).result())
            writes.append(io.submit(_write, store, index, chunk))
        for w in writes:
            written(w.result())
        pyr.wait()
    return stats


_WORKER: Job | None = None


def _init_worker(factory: Callable[[], Job], threads: int) -> None:
    import signal

    import torch

    global _WORKER
    # Ctrl-C reaches the whole process group: the parent stops the run, its workers finish
    # the block they hold instead of printing a traceback each
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _WORKER = factory()


def _work(index: int) -> BlockResult:
    if _WORKER is None:
        raise RuntimeError("a prediction worker was used before its initialiser ran")
    predictor, source, store = _WORKER
    return predict_block(predictor, source, store, index)


def run_workers(factory: Callable[[], Job], todo: Sequence[int], *, workers: int,
                bar: tqdm, pyramid: PyramidBuilder | None = None,
                monitor: Monitor | None = None) -> RunStats:
    """Predict blocks in ``workers`` processes, each building its job with ``factory``.

    CPU threads are shared out between the workers; on a machine with several CUDA devices the
    factory picks one per worker (``SRBIO_WORKER`` is the worker's number).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cpus or 1) // workers)  # the CPUs this job may use
    stats, pixels, start = RunStats(), [0], time.perf_counter()
    ctx = multiprocessing.get_context("spawn")  # fork after OpenMP/CUDA start is unsafe
    counter = ctx.Value("i", 0)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_numbered,
                             initargs=(factory, threads, counter)) as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="srbio-pyramid") as builders:
        pyr = _Pyramid(pyramid, builders)
        futures = [pool.submit(_work, i) for i in todo]
        try:
            for f in as_completed(futures):
                result = f.result()
                _tick(bar, stats, result, pixels, start, monitor)
                pyr.finished(result.index)
            pyr.wait()
        except BrokenProcessPool:
            raise ChildProcessError(
                "a prediction worker process died (killed by a signal, or by the system when "
                "memory ran out?); the blocks finished so far are kept") from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # blocks not started are dropped
            raise
    return stats


def _init_numbered(factory: Callable[[], Job], threads: int, counter) -> None:
    with counter.get_lock():
        os.environ["SRBIO_WORKER"] = str(counter.value)
        counter.value += 1
    _init_worker(factory, threads)


def predict_store(store: PredictionStore, todo: Sequence[int], *, done: int, total: int,
                  job: Job | None = None, factory: Callable[[], Job] | None = None,
                  workers: int = 1, progress: bool = True,
                  pyramid: PyramidBuilder | None = None, monitor: Monitor | None = None
                  ) -> RunStats:
    """Predict the level-0 blocks ``todo`` of ``store``, serially (``job``) or in workers.

    ``done`` and ``total`` only set the progress bar (blocks already finished, blocks in all).
    With ``pyramid``, pyramid blocks are built as soon as the blocks under them finish. A
    ``monitor`` hears of every block written (and, serially, of every batch of tiles) and
    may stop the run with :class:`~srbio.inference.monitor.Cancelled`.
    """
    with _bar(total, done, progress) as bar:
        if workers > 1 and len(todo) > 1:
            if factory is None:
                raise ValueError("worker processes need a job factory")
            return run_workers(factory, todo, workers=min(workers, len(todo)), bar=bar,
                               pyramid=pyramid, monitor=monitor)
        if job is None:
            if factory is None:
                raise ValueError("give the job or its factory")
            job = factory()
        job[0].monitor = monitor
        try:
            return run_serial(*job, todo, bar=bar, pyramid=pyramid, monitor=monitor)
        finally:
            job[0].monitor = None


def build_pyramid(store: PredictionStore, *, progress: bool = True) -> int:
    """Build every pyramid block still missing (level 0 finished); blocks written."""
    return PyramidBuilder(store).build_all(progress=progress)
