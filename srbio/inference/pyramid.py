"""The prediction store's pyramid, built block by block as soon as what lies under it is done.

Level ``k`` block ``i`` is the 2× lateral mean of the level ``k − 1`` region it covers. The
builder knows, for every pyramid block not yet finished, which blocks of the level below it
waits for; each finished block (of level 0 from the network, or of a pyramid level) releases
its parents. A run that predicts level 0 thus leaves the pyramid of the finished part built,
and a resume after a kill builds only what is missing. Finished pyramid blocks are logged like
level-0 blocks (:meth:`~srbio.io.store.PredictionStore.write_block`), so building is resumable.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
from tqdm.auto import tqdm

from srbio.core.pyramid import level_mean
from srbio.io.store import PredictionStore


def _children(store: PredictionStore, level: int, index: int) -> list[int]:
    """Indices of the blocks of ``level − 1`` that block ``index`` of ``level`` is made of."""
    region = store.blocks(level)[index]
    finer = store.levels[level - 1].shape
    shape = store.block_shape(level - 1)
    spans = [(r.start, r.stop) for r in region[:-2]]
    spans += [(2 * r.start, min(2 * r.stop, n)) for r, n in zip(region[-2:], finer[-2:],
                                                                strict=True)]
    grid = [-(-n // b) for n, b in zip(finer, shape, strict=True)]
    ranges = [range(a // b, (e - 1) // b + 1) for (a, e), b in zip(spans, shape, strict=True)]
    return [int(np.ravel_multi_index(idx, grid)) for idx in itertools.product(*ranges)]


class PyramidBuilder:
    """Builds pyramid blocks of a store once every block under them is finished.

    Parameters
    ----------
    store : PredictionStore
        The store; its finished blocks are read from its progress logs (checked).
    finished0 : set of int, optional
        The finished level-0 blocks, when the caller has just checked them.
    """

    def __init__(self, store: PredictionStore, finished0: set[int] | None = None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._waiting: dict[tuple[int, int], set[int]] = {}
        self._parents: dict[tuple[int, int], list[int]] = {}
        self.ready: list[tuple[int, int]] = []  # blocks whose children were all finished
        below = store.finished(0) if finished0 is None else set(finished0)
        for level in range(1, len(store.levels)):
            here = store.finished(level)
            for i in range(len(store.blocks(level))):
                if i in here:
                    continue
                kids = _children(store, level, i)
                self._waiting[(level, i)] = set(kids) - below
                for j in kids:
                    self._parents.setdefault((level - 1, j), []).append(i)
                if not self._waiting[(level, i)]:
                    self.ready.append((level, i))
            below = here
        self.written = 0

    @property
    def missing(self) -> int:
        """Pyramid blocks not built yet."""
        return len(self._waiting)

    def done(self, level: int, index: int) -> list[tuple[int, int]]:
        """Note block ``index`` of ``level`` as finished; the parents it completes."""
        released = []
        with self._lock:
            for i in self._parents.get((level, index), []):
                waiting = self._waiting.get((level + 1, i))
                if waiting is not None and index in waiting:
                    waiting.discard(index)
                    if not waiting:
                        released.append((level + 1, i))
        return released

    def build(self, level: int, index: int) -> list[tuple[int, int]]:
        """Build and write one pyramid block; the parents it completes."""
        store = self.store
        finer, arr = store.levels[level - 1], store.levels[level]
        region = store.blocks(level)[index]
        src = (*region[:-2], *(slice(2 * r.start, min(2 * r.stop, n))
                               for r, n in zip(region[-2:], finer.shape[-2:], strict=True)))
        store.write_block(level, index, level_mean(np.asarray(finer[src]), arr.dtype))
        with self._lock:
            self._waiting.pop((level, index), None)
            self.written += 1
        return self.done(level, index)

    def build_chain(self, level: int, index: int) -> int:
        """Build a block, then every block above it that this completes; blocks built."""
        todo, built = [(level, index)], 0
        while todo:
            todo.extend(self.build(*todo.pop()))
            built += 1
        return built

    def build_all(self, *, progress: bool = True) -> int:
        """Build every pyramid block still missing (all of level 0 must be finished)."""
        with tqdm(total=self.missing, desc="pyramid", unit="block",
                  disable=not progress or not self.missing) as bar:
            while self.ready:
                bar.update(self.build_chain(*self.ready.pop()))
        if self.missing:
            raise RuntimeError(f"{self.store.path}: {self.missing} pyramid blocks wait for "
                               f"blocks that are not finished")
        return self.written
