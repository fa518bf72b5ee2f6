"""Checksums of the files and folders a stage reads, recorded in its record (``inputs``).

One SHA-256 per input path, by one of three methods (the method is recorded with it, so a
later check recomputes it the same way):

``file``
    SHA-256 of the file's bytes.
``tree``
    A folder (a zarr store, a stage folder) of at most :data:`TREE_LIMIT` bytes: SHA-256 of one
    line ``<relative path> TAB <size> TAB <sha256 of the file's bytes> LF`` per file, sorted by
    relative path (POSIX separators). Any change of any byte, and any file added, removed or
    renamed, changes it.
``tree-metadata``
    A larger folder (a big input volume): the same lines, but only metadata files (zarr's
    ``zarr.json``, ``.zarray``, ``.zattrs``, ``.zgroup``, ``.zmetadata`` and other ``*.json``)
    have their bytes hashed; the other files (chunks) enter by path and size, with ``-`` for
    the checksum. Reading terabytes again to record an input would cost more than the stage:
    this notices changed metadata (shape, dtype, pixel sizes, compression) and added,
    removed or resized chunks, but not a chunk rewritten in place with the same size.

``file-sampled``
    A file larger than :data:`TREE_LIMIT` (a big TIFF volume): SHA-256 of its size and of
    :data:`SAMPLES` blocks of 1 MiB spread evenly over it, the first and the last included
    (64 MiB read, whatever the size). It notices a changed size, header or trailing metadata,
    and changes that reach a sampled block, not every change of pixel values.
``file`` is used up to that size (SHA-256 reads 1–2 GB/s on one core).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

TREE_LIMIT = 1 << 30  # folders up to 1 GiB have every file's bytes hashed
METHODS = ("file", "tree", "tree-metadata", "file-sampled")
FOLDER_METHODS = ("tree", "tree-metadata")
SAMPLES = 64  # 1 MiB blocks read by ``file-sampled``
_ZARR_METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sampled_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's size and :data:`SAMPLES` evenly spread 1 MiB blocks (``file-sampled``)."""
    size = os.path.getsize(path)
    block = 1 << 20
    h = hashlib.sha256(f"{size}\n".encode())
    last = max(0, size - block)
    with open(path, "rb") as f:
        for k in range(SAMPLES):
            f.seek(last * k // (SAMPLES - 1))
            h.update(f.read(block))
    return h.hexdigest()


def _files(folder: Path) -> list[tuple[str, Path, int]]:
    """Every file below ``folder``: (relative POSIX path, path, size), by relative path."""
    found = [(p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file()]
    return [(rel, p, p.stat().st_size) for rel, p in sorted(found)]


def is_metadata(name: str) -> bool:
    """Whether a file of a folder is metadata (hashed even by ``tree-metadata``)."""
    return name in _ZARR_METADATA or name.endswith(".json")


def tree_digest(folder: str | os.PathLike, *, contents: bool = True,
                files: list[tuple[str, Path, int]] | None = None) -> str:
    """SHA-256 of a folder's tree (method ``tree``; ``contents=False``: ``tree-metadata``)."""
    h = hashlib.sha256()
    for rel, path, size in _files(Path(folder)) if files is None else files:
        hashed = contents or is_metadata(path.name)
        h.update(f"{rel}\t{size}\t{sha256_file(path) if hashed else '-'}\n".encode())
    return h.hexdigest()


def checksum(path: str | os.PathLike, method: str | None = None) -> dict[str, str | int]:
    """``{"sha256", "method", "size"}`` of a file or folder (see the module docstring).

    ``method`` None chooses by kind and size; a recorded method recomputes it the same way.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For a method that does not fit the path.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found")
    if path.is_dir():
        if method not in (None, *FOLDER_METHODS):
            raise ValueError(f"{path}: is a folder; checksum method {method!r} is for files")
        files = _files(path)  # one walk: a big store has many chunk files
        size = sum(n for _, _, n in files)
        method = method or ("tree" if size <= TREE_LIMIT else "tree-metadata")
        return {"sha256": tree_digest(path, contents=method == "tree", files=files),
                "method": method, "size": size}
    if method in FOLDER_METHODS or method not in (None, *METHODS):
        raise ValueError(f"{path}: is a file; checksum method {method!r} is not one for files")
    size = path.stat().st_size
    method = method or ("file" if size <= TREE_LIMIT else "file-sampled")
    digest = sha256_file(path) if method == "file" else sampled_digest(path)
    return {"sha256": digest, "method": method, "size": size}
