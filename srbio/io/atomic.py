"""Write-to-temporary-then-rename helpers, so a crash never leaves a finished-looking output.

A partial output lives under a hidden sibling name (``.NAME.tmp-HOST-PID``) and is put in
place with one atomic step (:func:`srbio.io.outputs.install`). Partial outputs of processes
that died (killed, out of memory) are found by their name and removed by the next write of
the same output on the same host.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from srbio.io.outputs import (
    MARKER,
    install,
    remove,
    remove_stale_temporaries,
    temporary_name,
)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path that replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path : path-like
        The final file or directory. Whether it may be replaced is the caller's decision
        (:func:`srbio.io.outputs.claim`).

    Yields
    ------
    Path
        A temporary path in the same directory; on success it is put at ``path`` in one atomic
        step (replacing an existing one), on failure it is removed.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(final):
        log.info("removed %s, a partial output left by a process that died", stale)
    tmp = temporary_name(final)
    remove(tmp)
    try:
        yield tmp
        install(tmp, final)
    finally:
        remove(tmp)


@contextlib.contextmanager
def replace_folder(folder: str | os.PathLike, stage: str) -> Iterator[Path]:
    """Yield a new, empty folder; on success it replaces ``folder`` whole (:func:`atomic_path`).

    The new folder carries the stage's :data:`~srbio.io.outputs.MARKER`. Nothing of an earlier
    output survives (no file of one run beside another's); on failure ``folder`` is left as it
    was.
    """
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / MARKER).write_text(json.dumps({"stage": stage}) + "\n")
        yield tmp


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike, *, last: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder whose files replace their namesakes in ``folder`` on success.

    For a folder that keeps other content across runs (the train stage's checkpoints): each
    file is moved into ``folder`` with an atomic rename, ``last`` (the stage's record, the mark
    of a complete output) after all others. On failure nothing in ``folder`` changes.

    Parameters
    ----------
    folder : path-like
        The stage's output folder (created if missing).
    last : str, optional
        Name of the file moved last.

    Yields
    ------
    Path
        The temporary folder (a hidden sibling inside ``folder``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(folder / "files")
    remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        names = sorted(p.name for p in tmp.iterdir())
        if last in names:
            names.remove(last)
            names.append(last)
        for name in names:
            install(tmp / name, folder / name)
    finally:
        remove(tmp)
