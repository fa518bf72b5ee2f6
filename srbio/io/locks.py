"""One writer per output: a lock file claimed atomically for the whole run of a stage.

:func:`acquire` creates ``.NAME.lock`` beside an output with ``O_CREAT | O_EXCL`` (atomic on
local file systems and on NFSv3+), holding who writes it (host, process, stage, start time,
command). A second writer finds it and is refused with a message naming the holder. Locks are
released when the run ends (:func:`releasing`, or at the exit of the process); a lock left by
a process that died is *stale* and is taken over: on the same host when its process no longer
exists, on any host when its holder stopped refreshing it (a heartbeat thread touches every
held lock every :data:`HEARTBEAT_S` seconds; :data:`STALE_AFTER_S` without one means dead),
and at once when it was held by an earlier run of the same SLURM job that SLURM requeued
(``SLURM_JOB_ID`` equal, ``SLURM_RESTART_COUNT`` lower).

Work that several processes share on purpose (``srbio predict --part i/N``) takes a *share*
lock, ``.NAME.lock.<share>``: shares exclude the same share and the whole (unshared) lock, and
the whole lock excludes every share. Each side creates its own lock first, then looks for the
other kind, so two racing writers never both proceed (at worst both are refused).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0


class OutputBusy(ValueError):
    """Another live process is writing the output (the message names it)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock."""

    host: str
    pid: int
    stage: str
    started: str
    command: str = ""
    share: str | None = None
    slurm_job: str | None = None
    slurm_restart: int = 0

    @classmethod
    def me(cls, stage: str, share: str | None) -> Holder:
        """The holder record of the calling process, running ``stage``."""
        return cls(socket.gethostname(), os.getpid(), stage,
                   time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()),
                   " ".join(sys.argv)[:300], share, os.environ.get("SLURM_JOB_ID"),
                   int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0))

    def describe(self) -> str:
        """For messages: stage, share, process, host, start and command."""
        part = f" ({self.share})" if self.share else ""
        return (f"srbio {self.stage}{part}, process {self.pid} on {self.host}, started "
                f"{self.started}" + (f": {self.command}" if self.command else ""))


@dataclass
class _Held:
    file: Path
    holder: Holder
    scopes: int = field(default=1)


_held: dict[Path, _Held] = {}
_mutex = threading.Lock()
_scope: ContextVar[list[Path] | None] = ContextVar("srbio_lock_scope", default=None)
_beat: threading.Thread | None = None


def lock_file(output: str | os.PathLike, share: str | None = None) -> Path:
    """The lock file of ``output`` (of one share of it)."""
    output = Path(output).absolute()
    return output.with_name(f".{output.name}.lock" + (f".{share}" if share else ""))


def _read(file: Path) -> Holder | None:
    try:
        data: dict[str, Any] = json.loads(file.read_text())
        return Holder(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Holder("?", -1, "?", "?")  # being written, or not ours: judged by its age


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (ours, or another user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(file: Path, holder: Holder) -> bool:
    try:
        age = time.time() - file.stat().st_mtime
    except FileNotFoundError:
        return True
    if age > STALE_AFTER_S:
        return True
    me = Holder.me(holder.stage, holder.share)
    if holder.slurm_job is not None and holder.slurm_job == me.slurm_job \
            and holder.slurm_restart < me.slurm_restart:
        return True  # an earlier run of this SLURM job, which SLURM requeued: it has ended
    return holder.host == me.host and holder.pid > 0 and not process_alive(holder.pid)


def _live_holder(file: Path) -> Holder | None:
    """The live holder of ``file``; a stale lock is taken away (and None returned)."""
    holder = _read(file)
    if holder is None:
        return None
    if _stale(file, holder):
        log.warning("%s: taking over the lock of %s, which ended without releasing it", file,
                    holder.describe())
        _take_away(file, holder)
        return None
    return holder


def _take_away(file: Path, stale: Holder) -> None:
    """Remove the stale lock ``file`` of ``stale``, never a lock created since by another.

    Two processes may judge the same lock stale at once: each renames it to a name of its own
    (atomic), and deletes what it got only if that is the stale holder's lock. A live lock
    grabbed by mistake (created after the judgement) is linked back into place.
    """
    grab = file.with_name(f"{file.name}.takeover-{socket.gethostname()}-{os.getpid()}")
    try:
        os.rename(file, grab)
    except FileNotFoundError:
        return  # another process took it away first
    if _read(grab) != stale:
        with contextlib.suppress(FileExistsError):
            os.link(grab, file)
    grab.unlink(missing_ok=True)


def _create(file: Path, holder: Holder) -> bool:
    """Create the lock ``file`` holding ``holder``, complete or not at all; False if it exists.

    The content is written to a private file first and linked into place (atomic, exclusive
    like ``O_EXCL``, also on NFS), so a lock never exists without its holder.
    """
    tmp = file.with_name(f".{file.name}.new-{socket.gethostname()}-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            json.dump(asdict(holder), f)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, file)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _conflicts(output: Path, share: str | None) -> list[Path]:
    """The lock files of the other kind that exclude this one."""
    whole = lock_file(output)
    if share is not None:
        return [whole]
    return sorted(p for p in whole.parent.glob(f"{_escape(whole.name)}.*")
                  if ".takeover-" not in p.name)


def _escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def _busy(output: Path, holder: Holder, file: Path) -> OutputBusy:
    return OutputBusy(f"{output}: is being written by {holder.describe()}; refused so that two "
                      f"runs never mix (nothing was changed). Wait for it to end; if that "
                      f"process no longer runs, delete {file}")


def acquire(output: str | os.PathLike, stage: str, *, share: str | None = None) -> Path:
    """Claim ``output`` for this process's run of ``stage``; return the lock file.

    Re-entrant within a process. Released by :func:`release` / :func:`releasing`, or when
    the process exits.

    Raises
    ------
    OutputBusy
        When a live process holds the output (or, for a share, the same share or the whole).
    """
    output = Path(output).absolute()
    file = lock_file(output, share)
    with _mutex:
        if file in _held:
            _held[file].scopes += 1
            _remember(file)
            return file
    output.parent.mkdir(parents=True, exist_ok=True)
    me = Holder.me(stage, share)
    for _ in range(3):
        if _create(file, me):
            break
        holder = _live_holder(file)
        if holder is not None:
            raise _busy(output, holder, file)
    else:
        raise OutputBusy(f"{output}: could not claim {file} (it keeps being re-created)")
    try:
        for other in _conflicts(output, share):
            holder = _live_holder(other) if other != file else None
            if holder is not None:
                raise _busy(output, holder, other)
    except BaseException:
        if _read(file) == me:  # never leave a lock of ours behind a refusal
            file.unlink(missing_ok=True)
        raise
    with _mutex:
        _held[file] = _Held(file, me)
    _remember(file)
    _start_heartbeat()
    return file


def _remember(file: Path) -> None:
    scope = _scope.get()
    if scope is not None:
        scope.append(file)


def abandon(file: Path) -> None:
    """Release a claim just acquired that the caller gives up (its scope forgets it too)."""
    scope = _scope.get()
    if scope is not None and file in scope:
        del scope[len(scope) - 1 - scope[::-1].index(file)]
    release(file)


def release(file: Path) -> None:
    """Release one claim of ``file`` (deleted when its last claim in this process ends)."""
    with _mutex:
        held = _held.get(file)
        if held is None:
            return
        held.scopes -= 1
        if held.scopes > 0:
            return
        del _held[file]
    if held.holder.pid != os.getpid():
        return  # a forked child (e.g. a data loader worker) never releases its parent's lock
    if _read(file) == held.holder:  # still ours (never delete a lock taken over by another)
        with contextlib.suppress(FileNotFoundError):
            file.unlink()


@contextlib.contextmanager
def releasing() -> Iterator[None]:
    """Release, on leaving, every lock acquired inside (a stage's run)."""
    token = _scope.set([])
    try:
        yield
    finally:
        files = _scope.get() or []
        _scope.reset(token)
        for file in reversed(files):
            release(file)


F = TypeVar("F", bound=Callable[..., Any])


def releases_claims(func: F) -> F:
    """Decorate a stage's run function: the outputs it claims are released when it returns."""
    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with releasing():
            return func(*args, **kwargs)
    return run  # type: ignore[return-value]


def held() -> list[Path]:
    """The lock files this process holds."""
    with _mutex:
        return list(_held)


def _heartbeat() -> None:
    """Touch every held lock; a lock that is gone or no longer ours is reported, never touched."""
    while True:
        time.sleep(HEARTBEAT_S)
        for file in held():
            with _mutex:
                mine = _held.get(file)
            try:
                if mine is None or _read(file) != mine.holder:
                    log.error("%s: this run's lock was removed or taken by another process",
                              file)
                    continue
                os.utime(file)
            except OSError as exc:  # a network file system's hiccup: try again next beat
                log.warning("%s: cannot refresh this run's lock (%s)", file, exc)


def _start_heartbeat() -> None:
    global _beat
    with _mutex:
        if _beat is None or not _beat.is_alive():
            _beat = threading.Thread(target=_heartbeat, name="srbio-lock-heartbeat", daemon=True)
            _beat.start()


@atexit.register
def _release_all() -> None:
    for file in held():
        with _mutex:
            if file in _held:
                _held[file].scopes = 1
        release(file)
