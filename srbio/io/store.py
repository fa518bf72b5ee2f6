"""The prediction store: one writer for an OME-Zarr 0.5 image that is filled block by block.

Layout: ``<name>.ome.zarr`` is an OME-Zarr 0.5 image (zarr v3) with a pyramid (level ``k`` is
2^k times coarser laterally), ``dimension_names`` on every array, scale **and translation** on
every level, and srbio's attributes (``srbio.output = "predict"``, the job's ``fingerprint``,
``status`` "incomplete" until the prediction record is stored with it). Work is done in
*blocks*: a shard when the arrays are sharded, else a chunk, so no two writers ever touch the
same file.

Progress lives beside the store, in ``.<name>.progress/<store id>/`` (a store made later at
the same path never reads an older one's logs): every process appends
``<level> <block> <crc32> f=<size>:<mtime>`` lines to a log of its own after a block is
written whole. A block without its line (a kill while writing) is redone; a block whose file
changed since and whose pixels no longer match its checksum is redone too. When the store is
complete its record is written into its attributes and the progress folder removed.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.writer import write_multiscales_metadata
from zarr.codecs import BloscCodec

from srbio.io.outputs import remove, remove_stale_temporaries, temporary_name

Region = tuple[slice, ...]


def pyramid_shapes(shape: Sequence[int], chunk: int) -> list[tuple[int, ...]]:
    """Level shapes: halve y and x (rounding up) until a level fits one chunk laterally."""
    levels = [tuple(int(n) for n in shape)]
    while max(levels[-1][-2:]) > chunk:
        prev = levels[-1]
        levels.append((*prev[:-2], *(math.ceil(n / 2) for n in prev[-2:])))
    return levels


def progress_folder(path: str | os.PathLike) -> Path:
    """The hidden sibling folder holding a store's completion logs."""
    path = Path(path)
    return path.with_name(f".{path.name}.progress")


def checksum(block: np.ndarray) -> int:
    """CRC-32 of a block's pixels (C order, native bytes)."""
    return zlib.crc32(np.ascontiguousarray(block).tobytes())


def _regions(shape: Sequence[int], block: Sequence[int]) -> list[Region]:
    grid = [range(math.ceil(n / b)) for n, b in zip(shape, block, strict=True)]
    return [tuple(slice(i * b, min((i + 1) * b, n)) for i, b, n in zip(idx, block, shape,
                                                                       strict=True))
            for idx in itertools.product(*grid)]


@dataclass(frozen=True)
class _Entry:
    """One completion line: ``<level> <block> <crc32 hex> f=<size>:<mtime ns> <counts>...``."""

    index: int
    crc: int
    stat: tuple[int, int] | None
    counts: tuple[int, ...]

    def line(self, level: int) -> str:
        stat = [f"f={self.stat[0]}:{self.stat[1]}"] if self.stat else []
        return " ".join([str(level), str(self.index), f"{self.crc:08x}", *stat,
                         *(str(c) for c in self.counts)])

    @classmethod
    def parse(cls, line: str, level: int) -> _Entry | None:
        """The entry of a line of ``level``; None for another level or a line torn by a kill."""
        parts = line.split()
        stat = None
        if len(parts) > 3 and parts[3].startswith("f="):
            size, _, mtime = parts.pop(3)[2:].partition(":")
            if not (size.isdigit() and mtime.isdigit()):
                return None
            stat = (int(size), int(mtime))
        if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()) \
                or int(parts[0]) != level or not all(p.isdigit() for p in parts[3:]):
            return None
        try:
            crc = int(parts[2], 16)
        except ValueError:
            return None
        return cls(int(parts[1]), crc, stat, tuple(int(p) for p in parts[3:]))


class PredictionStore:
    """An OME-Zarr prediction store being written or resumed (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.group = zarr.open_group(str(self.path), mode="r+")
        except Exception as exc:  # zarr raises several unrelated types for unreadable stores
            raise ValueError(f"{self.path}: cannot open as a zarr group ({exc})") from None
        attrs: dict[str, Any] = self.group.attrs.asdict()
        self.srbio: dict[str, Any] = dict(attrs.get("srbio", {}))
        multiscales = attrs.get("ome", {}).get("multiscales") or [{}]
        try:
            levels = [self.group[d["path"]] for d in multiscales[0]["datasets"]]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a complete OME-Zarr image ({exc})") from None
        if not all(isinstance(a, zarr.Array) for a in levels):
            raise ValueError(f"{self.path}: a multiscale level is not an array")
        self.levels: list[zarr.Array] = [a for a in levels if isinstance(a, zarr.Array)]
        # this store's own logs: a store created later at the same path never reads them
        self.progress = progress_folder(self.path) / str(self.srbio.get("store_id", "none"))
        self._blocks: dict[int, list[Region]] = {}

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | os.PathLike, *, shape: tuple[int, ...], dtype: str,
               chunks: tuple[int, ...], spacing: tuple[float, ...],
               translation: tuple[float, ...], fingerprint: str, shards: tuple[int, ...] | None
               = None, name: str | None = None, metadata: dict | None = None,
               axes: list[dict] | None = None) -> PredictionStore:
        """Create an empty store at ``path`` (which must not exist) in one rename.

        The store is built under a temporary name and renamed into place, so concurrent
        creators (``--part`` jobs) never see half of one: the loser of the race gets
        ``FileExistsError`` and opens the winner's store.

        Parameters
        ----------
        path : path-like
            The store's folder (``<name>.ome.zarr``).
        shape, dtype, chunks
            Of level 0 (axes ``[t|p,] [z,] y, x``).
        spacing, translation : tuple of float
            Pixel size and position of pixel 0's centre of level 0, per axis (µm for the space
            axes).
        fingerprint : str
            Identifies the job (model, input, settings); a resume must present the same.
        shards : tuple of int, optional
            Shard shape (a multiple of ``chunks``); the unit of work when given.
        name : str, optional
            Image name in the metadata.
        metadata : dict, optional
            Extra ``srbio`` attributes (provenance).
        axes : list of dict, optional
            OME-Zarr ``axes`` entries (default: ``yx`` / ``zyx`` in micrometres).
        """
        path = Path(path)
        axes = axes or [{"name": n, "type": "space", "unit": "micrometer"}
                        for n in ("z", "y", "x")[-len(shape):]]
        if len(shape) not in (2, 3, 4) or not len(spacing) == len(chunks) == len(translation) \
                == len(shape) == len(axes):
            raise ValueError(f"{path}: shape {shape}, chunks {chunks}, spacing {spacing}, "
                             f"translation {translation}, axes {axes} disagree")
        remove_stale_temporaries(path)  # half-built stores of creators that died
        tmp = temporary_name(path)
        remove(tmp)
        try:
            cls.build(tmp, shape=shape, dtype=dtype, chunks=chunks, shards=shards,
                       spacing=spacing, translation=translation, name=name, axes=axes,
                       srbio={"output": "predict", "status": "incomplete",
                              "fingerprint": fingerprint, "store_id": uuid.uuid4().hex,
                              **(metadata or {})})
            try:
                os.rename(tmp, path)  # fails when another creator won (a non-empty folder)
            except OSError as exc:
                raise FileExistsError(f"{path}: created meanwhile by another process") from exc
        finally:
            remove(tmp)
        return cls(path)

    @staticmethod
    def build(path: Path, *, shape, dtype, chunks, shards, spacing, translation, name,
              axes, srbio) -> None:
        """Write an empty store's arrays and metadata at ``path`` (holding no zarr group yet).

        :meth:`create` builds under a temporary name and renames; a caller staging a whole
        folder itself (:func:`~srbio.io.atomic.replace_folder`) builds into it directly.
        ``srbio`` is the group's ``srbio`` attributes; the other arguments are :meth:`create`'s.
        """
        names = [a["name"] for a in axes]
        if (Path(path) / "zarr.json").exists():
            raise FileExistsError(f"{path}: holds a zarr group already")
        # an existing folder (a staging folder with its marker) is kept, not emptied
        group = zarr.open_group(str(path), mode="a" if Path(path).is_dir() else "w-",
                                zarr_format=3)
        lateral = max(chunks[-2:])
        datasets = []
        for k, level in enumerate(pyramid_shapes(shape, lateral)):
            f = 2 ** k
            level_chunks = tuple(min(c, n) for c, n in zip(chunks, level, strict=True))
            level_shards = None if shards is None or level_chunks == tuple(level) else tuple(
                min(s, math.ceil(n / c) * c) for s, c, n in zip(shards, level_chunks, level,
                                                                strict=True))
            group.create_array(
                str(k), shape=level, dtype=dtype, chunks=level_chunks, shards=level_shards,
                dimension_names=names, fill_value=0,
                compressors=BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
                config={"write_empty_chunks": True})  # every chunk on disk: missing = error
            factors = (1,) * (len(shape) - 2) + (f, f)
            datasets.append({"path": str(k), "coordinateTransformations": [
                {"type": "scale", "scale": [float(s * g) for s, g in
                                            zip(spacing, factors, strict=True)]},
                {"type": "translation", "translation": [
                    float(t + (g - 1) / 2 * s) for t, s, g in
                    zip(translation, spacing, factors, strict=True)]}]})
        write_multiscales_metadata(group, datasets, fmt=FormatV05(), axes=axes, name=name)
        group.attrs["srbio"] = srbio

    # ------------------------------------------------------------------ attributes
    @property
    def fingerprint(self) -> str | None:
        """The job fingerprint the store was created for."""
        return self.srbio.get("fingerprint")

    @property
    def record(self) -> dict | None:
        """The prediction record, present once the store is complete."""
        return self.srbio.get("prediction")

    def set_attrs(self, values: dict) -> None:
        """Merge ``values`` into the store's ``srbio`` attributes."""
        self.srbio.update(values)
        self.group.attrs["srbio"] = self.srbio

    # ------------------------------------------------------------------ blocks
    def block_shape(self, level: int = 0) -> tuple[int, ...]:
        """The unit of work of a level: its shard shape, else its chunk shape."""
        arr = self.levels[level]
        return tuple(arr.shards or arr.chunks)

    def blocks(self, level: int = 0) -> list[Region]:
        """Every block of a level as explicit slices, row-major (the block index order)."""
        if level not in self._blocks:
            self._blocks[level] = _regions(self.levels[level].shape, self.block_shape(level))
        return self._blocks[level]

    def block_file(self, level: int, index: int) -> Path:
        """The file holding block ``index`` of ``level`` (zarr v3 default chunk keys)."""
        region, shape = self.blocks(level)[index], self.block_shape(level)
        coords = [str(r.start // b) for r, b in zip(region, shape, strict=True)]
        return self.path.joinpath(str(level), "c", *coords)

    def _logged(self, level: int) -> dict[int, list[_Entry]]:
        """Block → every entry logged for it at ``level`` (torn lines skipped)."""
        logged: dict[int, list[_Entry]] = {}
        if not self.progress.is_dir():
            return logged
        for log in sorted(self.progress.glob("*.log")):
            for line in log.read_text().splitlines():
                entry = _Entry.parse(line, level)
                if entry is not None:
                    logged.setdefault(entry.index, []).append(entry)
        return logged

    def _file_stat(self, level: int, index: int) -> tuple[int, int] | None:
        try:
            st = self.block_file(level, index).stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def finished(self, level: int = 0, *, verify: bool = True,
                 among: Iterable[int] | None = None) -> set[int]:
        """Indices of the blocks of ``level`` written whole (checked against their checksum).

        A block counts when it is logged and its file still has the size and modification
        time logged with it; otherwise its pixels must match a logged checksum (a block
        rewritten since is read and checked, never trusted). ``among`` limits the check to
        those blocks (a ``--part`` job's share).
        """
        logged = self._logged(level)
        if among is not None:
            wanted = set(among)
            logged = {i: v for i, v in logged.items() if i in wanted}
        if not verify:
            return set(logged)
        blocks = self.blocks(level)
        arr = self.levels[level]
        good = set()
        for i, entries in logged.items():
            if i >= len(blocks):
                continue
            stat = self._file_stat(level, i)
            if stat is not None and any(e.stat == stat for e in entries):
                good.add(i)
                continue
            try:
                crc = checksum(np.asarray(arr[blocks[i]]))
            except Exception:  # noqa: BLE001 - a torn block fails to decode: redo it
                continue
            if any(e.crc == crc for e in entries):
                good.add(i)
        return good

    def counts(self, level: int = 0) -> list[int]:
        """The per-block counts logged with :meth:`write_block`, summed over every block."""
        rows = [v[-1].counts for v in self._logged(level).values()]
        return [sum(col) for col in zip(*rows, strict=False)] if rows else []

    def write_block(self, level: int, index: int, data: np.ndarray,
                    counts: Sequence[int] = ()) -> None:
        """Write block ``index`` of ``level`` whole, then log it as finished (with ``counts``).

        The log line holds the pixels' CRC-32 and the block file's size and modification
        time, so a resume trusts an untouched file without reading it back.
        """
        region = self.blocks(level)[index]
        arr = self.levels[level]
        data = np.asarray(data, dtype=arr.dtype)
        # a block is written whole: drop what a killed writer may have left (a torn shard
        # would otherwise be read back and merged)
        self.block_file(level, index).unlink(missing_ok=True)
        arr[region] = data
        self.progress.mkdir(parents=True, exist_ok=True)
        entry = _Entry(index, checksum(data), self._file_stat(level, index),
                       tuple(int(c) for c in counts))
        log = self.progress / f"{socket.gethostname()}-{os.getpid()}.log"
        with log.open("a") as f:
            f.write(entry.line(level) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, name: str, values: dict) -> None:
        """Keep a run's summary (e.g. of one ``--part``) with the progress logs."""
        self.progress.mkdir(parents=True, exist_ok=True)
        tmp = self.progress / f".{name}.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(values))
        os.replace(tmp, self.progress / f"{name}.json")

    def summaries(self) -> dict[str, dict]:
        """Every summary kept by :meth:`write_summary`, by name."""
        if not self.progress.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.progress.glob("*.json"))}

    def complete(self, record: dict) -> None:
        """Store the prediction record in the attributes and drop the progress logs."""
        self.set_attrs({"prediction": record, "status": "complete"})
        remove(progress_folder(self.path))
