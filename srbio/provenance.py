"""Provenance shared by every record that needs it: versions, source revision, time."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from srbio import __version__


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit of the srbio checkout in use (with ``+dirty``), or None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "srbio"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def provenance(**extra: Any) -> dict[str, Any]:
    """The srbio version, git revision, Python and (when loaded) torch versions, time, ``extra``."""
    out: dict[str, Any] = {"srbio": __version__, "git": git_revision(),
                           "python": platform.python_version(),
                           "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if "torch" in sys.modules:
        out["torch"] = str(sys.modules["torch"].__version__)
    out.update(extra)
    return out
