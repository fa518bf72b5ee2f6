"""Write-to-temporary-then-rename helpers, so a crash never leaves a finished-looking file."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path that replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path : path-like
        The final file or directory.

    Yields
    ------
    Path
        A temporary path in the same directory; on success it is renamed to ``path``
        (replacing an existing one), on failure it is removed.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if final.is_dir() and not final.is_symlink():
        _remove(final)  # a folder cannot be renamed onto: issue 8 makes this swap atomic too
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike, *, last: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder whose files replace their namesakes in ``folder`` on success.

    A stage writes all its outputs into the temporary folder; when the block succeeds each
    file is moved into ``folder`` with an atomic rename, ``last`` (the stage's record, the
    mark of a complete output) after all others. On failure nothing in ``folder`` changes.

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
    tmp = folder / f".tmp-{os.getpid()}"
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        names = sorted(p.name for p in tmp.iterdir())
        if last in names:
            names.remove(last)
            names.append(last)
        for name in names:
            target = folder / name
            if target.is_dir() and not target.is_symlink():
                _remove(target)
            os.replace(tmp / name, target)
    finally:
        _remove(tmp)
