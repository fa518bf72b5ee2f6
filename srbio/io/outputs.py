"""Where srbio may write: outputs never destroy what srbio did not write.

Every output srbio writes is recognisable as its own, and by which stage:

- a stage folder holds a marker file :data:`MARKER` naming the stage;
- a zarr store (patches, prediction) carries ``attributes["srbio"]["output"]``;
- a JSON record carries its version tag ``srbio.<kind>/<n>``; the report starts ``# srbio report``.

:func:`claim` is called by every stage before any work. It locks the output for the run
(:mod:`srbio.io.locks`: a second writer is refused, naming the first). An existing path is replaced only when
it is an output of the same stage **and** the caller asked for it (``overwrite``, which the
workflow passes when re-running its own outputs); anything else that exists there is refused
with a message naming it, and so is an output equal to, inside or around one of the inputs.
:func:`srbio.io.atomic.replace_folder` then swaps a complete new folder in with one atomic
exchange (:func:`install`), so the outputs of two runs never mix and no moment exists without
one of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from srbio.io.locks import abandon, acquire, process_alive

MARKER = ".srbio-output.json"
# the stage that writes each record kind
_RECORD_STAGES = {"simulation": "simulate", "registration": "register", "crop": "crop",
                  "enhancement": "enhance", "normalisation": "normalise", "patches": "patches",
                  "training": "train", "evaluation": "evaluate", "prediction": "predict",
                  "export": "export"}


def read_json_or_none(path: str | os.PathLike) -> dict | None:
    """A JSON file's object, or None when it is absent, unreadable, no JSON or no object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def owner(path: str | os.PathLike) -> str | None:
    """The srbio stage whose output ``path`` is, or None (absent, or not written by srbio)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        marker = read_json_or_none(path / MARKER)
        if marker is not None and isinstance(marker.get("stage"), str):
            return marker["stage"]
        meta = read_json_or_none(path / "zarr.json")
        srbio = ((meta or {}).get("attributes") or {}).get("srbio")
        return srbio.get("output") if isinstance(srbio, dict) else None
    if path.is_file() and path.suffix == ".json":
        tag = (read_json_or_none(path) or {}).get("record")
        if isinstance(tag, str) and tag.startswith("srbio."):
            kind = tag.removeprefix("srbio.").split("/")[0]
            return _RECORD_STAGES.get(kind, kind)
    if path.is_file() and path.suffix == ".md":
        with contextlib.suppress(OSError, UnicodeDecodeError), path.open() as f:
            if f.readline().startswith("# srbio report"):
                return "report"
    return None


def _describe(path: Path) -> str:
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir())
        shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
        return f"a folder of {len(names)} entries ({shown})"
    return f"a file of {path.stat().st_size} bytes"


def _nested(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


_NAME_MAX = 255  # bytes in a file name on Linux and macOS file systems


def _check_name_length(given: Path, out: Path) -> None:
    """The output's name, and the temporary / lock names srbio writes beside it, must fit."""
    extra = max(len(temporary_name(out).name) + len(".old"),
                len(f".{out.name}.lock.part-9999-of-9999")) - len(out.name)
    for part in out.parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            raise ValueError(f"{given}: the name {part[:40]}… has {len(os.fsencode(part))} "
                             f"bytes; a file name may have {_NAME_MAX}")
    if len(os.fsencode(out.name)) + extra > _NAME_MAX:
        raise ValueError(f"{given}: the name {out.name[:40]}… has {len(os.fsencode(out.name))} "
                         f"bytes; srbio writes temporary and lock files beside it whose names "
                         f"add {extra}, and a file name may have {_NAME_MAX}: choose a name of "
                         f"at most {_NAME_MAX - extra} bytes")


def _check_writable(path: Path) -> None:
    """The first existing ancestor of ``path`` must be a writable folder."""
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir() and parent != path:
                raise ValueError(f"{path}: cannot be created: {parent} is a file, not a folder")
            folder = parent if parent.is_dir() else parent.parent
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ValueError(f"{path}: cannot write there: {folder} is not writable")
            return


def claim(path: str | os.PathLike, stage: str, *, inputs: Iterable[str | os.PathLike] = (),
          overwrite: bool = False, share: str | None = None) -> Path:
    """Claim ``path`` for this run of stage ``stage`` (see :mod:`srbio.io.locks`); return it.

    The output is locked for the run first (a second writer is refused, naming this one),
    then checked: it may be replaced only when it is an earlier output of the same stage.

    Parameters
    ----------
    path : path-like
        The output file, folder or store.
    stage : str
        The stage writing it (``register``, ``crop``, ``predict``, …).
    inputs : paths
        The stage's inputs: the output may not be one of them, lie inside one or contain one.
    overwrite : bool
        Replace an earlier output of the same stage (never anything else).
    share : str, optional
        Claim one share of an output that several processes write on purpose (a
        ``predict --part``): shares exclude the same share and an unshared claim.

    Raises
    ------
    ValueError
        Naming the path and why it cannot be written (nothing has been written yet);
        :class:`~srbio.io.locks.OutputBusy` when another live process writes it.
    """
    out = Path(path).absolute()
    for given in inputs:
        src = Path(given).absolute()
        if _nested(out, src):
            how = "is" if out == src else ("lies inside" if src in out.parents else "contains")
            raise ValueError(f"{path}: the output {how} the input {given}; choose another "
                             f"output path (inputs are never written)")
    _check_name_length(Path(path), out)
    _check_writable(out)
    lock = acquire(out, stage, share=share)
    try:
        _check_owner(path, out, stage, overwrite)
    except BaseException:
        abandon(lock)
        raise
    return Path(path)


def _check_owner(path: str | os.PathLike, out: Path, stage: str, overwrite: bool) -> None:
    """Refuse an existing ``out`` unless it is an output of ``stage`` and ``overwrite``."""
    if not out.exists() and not out.is_symlink():
        return
    found = owner(out)
    if out.is_dir() and found is None and not any(out.iterdir()):
        return  # an empty folder (e.g. made by Snakemake for its outputs)
    if found != stage:
        what = f"an srbio {found} output" if found else _describe(out)
        raise ValueError(f"{path}: exists and is not an output of srbio {stage} (it is {what}); "
                         f"nothing was changed: choose another path, or move it away yourself")
    if not overwrite:
        raise ValueError(f"{path}: holds an earlier srbio {stage} output; pass --overwrite to "
                         f"replace it (nothing was changed)")


def temporary_name(final: Path) -> Path:
    """The hidden sibling a partial ``final`` is written to: ``.NAME.tmp-HOST-PID``."""
    return final.with_name(f".{final.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove partial outputs of ``final`` left by dead processes of this host; return them."""
    prefix = f".{final.name}.tmp-{socket.gethostname()}-"
    removed: list[Path] = []
    if not final.parent.is_dir():
        return removed
    for tmp in final.parent.glob(f"{glob_escape(prefix)}*"):
        pid = tmp.name.removeprefix(prefix)
        if pid.isdigit() and not process_alive(int(pid)):
            remove(tmp)
            removed.append(tmp)
    return removed


def glob_escape(text: str) -> str:
    """Escape glob metacharacters of a literal name part."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def remove(path: Path) -> None:
    """Delete a file, link or folder tree (absent is fine)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def install(tmp: Path, final: Path) -> None:
    """Put the complete ``tmp`` at ``final``, replacing what is there in one atomic step.

    Files are replaced by :func:`os.replace`; a folder is exchanged with the old one
    (``renameat2``), so every moment sees either the old or the new output, then the old one is
    deleted. Where the exchange is unavailable the old folder is renamed aside first.
    """
    if not (final.is_dir() and not final.is_symlink()):
        os.replace(tmp, final)
        return
    if _exchange(tmp, final):
        remove(tmp)  # now holds the old output
        return
    old = final.with_name(f"{temporary_name(final).name}.old")
    os.replace(final, old)
    os.replace(tmp, final)
    remove(old)


def mark_folder(folder: str | os.PathLike, stage: str) -> Path:
    """Create ``folder`` (if needed) and mark it as the output of ``stage``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(json.dumps({"stage": stage}) + "\n")
    return folder


def process_rank() -> int:
    """The rank of this process in a multi-process (DDP) run, from the launchers' variables.

    Lightning's launcher starts ranks ≥ 1 by re-running the command (``LOCAL_RANK``); SLURM
    starts every task (``SLURM_PROCID``). Only rank 0 claims and writes the stage's outputs.
    """
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    return 0
