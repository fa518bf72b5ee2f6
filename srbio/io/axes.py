"""Axis names of stored images: honoured by name, put in srbio's order, or refused.

srbio works on ``yx`` / ``zyx`` arrays, and ``srbio predict`` on one more *series* axis in front
(time points or positions, iterated over and never resampled or tiled). Files declare their
own axis order (OME-Zarr ``axes``, a plain zarr's ``axes`` attribute, tifffile's series axes);
:func:`arrange_axes` turns that declaration into the index and transposition that give srbio's
order, or says, naming the file, why the file cannot be read that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SPATIAL = ("z", "y", "x")
# names (lower case) of a leading axis that srbio predict iterates over, and its kind
SERIES_NAMES: dict[str, Literal["time", "position"]] = {
    "t": "time", "time": "time", "p": "position", "position": "position", "pos": "position"}


@dataclass(frozen=True)
class SeriesAxis:
    """A leading axis of time points or positions: iterated over, never resampled or tiled.

    Attributes
    ----------
    name : str
        The axis name as written to the output (``t`` or ``p``).
    size : int
        Its length.
    kind : {"time", "position"}
        NGFF writes a time axis as type ``time`` and a position axis as type ``custom``.
    step, origin : float
        The coordinate step and first coordinate (1 and 0 when the file records none).
    unit : str or None
        The unit of ``step`` as the file records it (time axes only).
    """

    name: str
    size: int
    kind: Literal["time", "position"] = "time"
    step: float = 1.0
    origin: float = 0.0
    unit: str | None = None

    def ngff(self) -> dict:
        """The axis as an OME-Zarr 0.5 ``axes`` entry."""
        if self.kind == "time":
            return {"name": self.name, "type": "time", **({"unit": self.unit} if self.unit
                                                           else {})}
        return {"name": self.name, "type": "custom"}


@dataclass(frozen=True)
class Arrangement:
    """How to read a stored array in srbio's axis order.

    ``index`` drops length-1 axes that are not kept (channel, time, ...); ``order`` then
    transposes the kept axes into ``[series], z, y, x``; ``kept`` are the stored positions of
    the kept axes in that final order (to reorder per-axis metadata); ``series`` is the stored
    position of the series axis, if any.
    """

    index: tuple[int | slice, ...]
    order: tuple[int, ...]
    kept: tuple[int, ...]
    names: tuple[str, ...]
    series: int | None

    @property
    def identity(self) -> bool:
        """Whether the stored order is srbio's order already (no transposition)."""
        return self.order == tuple(range(len(self.order)))


def _kind(name: str, kind: str | None) -> str:
    if name in SPATIAL and kind in (None, "space"):
        return "space"
    if kind == "space":
        return "space-unknown"
    if kind == "channel" or name in ("c", "channel", "rgb"):
        return "channel"
    if kind == "time" or SERIES_NAMES.get(name) == "time":
        return "time"
    if name in SERIES_NAMES:
        return "position"
    return "other"


def _unread(source: str, name: str, kind: str, n: int, declared: str) -> str:
    """Why an axis longer than 1 cannot be read, and what to do."""
    what = "sample (RGB)" if name == "rgb" else (
        kind if kind in ("channel", "time", "position") else repr(name))
    hint = ("srbio reads single-channel images: select one channel first" if kind == "channel"
            else "srbio predict iterates over one time or position axis; other steps read one "
            "time point / position: select one first" if kind in ("time", "position")
            else "srbio reads 2D/3D images (with one time or position axis in predict): "
            "select one entry of this axis first")
    return f"{source}: its {what} axis has {n} entries ({declared}); {hint}"


def arrange_axes(names: list[str], shape: tuple[int, ...], *, source: str,
                 kinds: list[str | None] | None = None, series: bool = False) -> Arrangement:
    """The reading of a stored array whose axes are ``names`` (stored order) in srbio's order.

    Parameters
    ----------
    names : list of str
        Axis names as stored, lower case (``z``, ``y``, ``x``, ``c``, ``t``, ``p``, ...).
    shape : tuple of int
        The stored shape.
    source : str
        The file, for messages.
    kinds : list of str or None, optional
        NGFF axis types (``space``, ``time``, ``channel``, ``custom``) where known.
    series : bool
        Allow one time or position axis longer than 1 (``srbio predict``); otherwise such an
        axis is refused.

    Raises
    ------
    ValueError
        For duplicate names, a space axis not named z/y/x, no y and x, a channel axis (or a
        second series axis) longer than 1: the message names the file, its axes and shape.
    """
    names = [str(n).lower() for n in names]
    kinds = list(kinds) if kinds is not None else [None] * len(names)
    declared = f"axes {names} (shape {list(shape)})"
    if len(names) != len(shape):
        raise ValueError(f"{source}: declares {len(names)} axes {names} for an array of "
                         f"{len(shape)} dimensions {list(shape)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: {declared} name an axis twice")
    index: list[int | slice] = []
    spatial: dict[str, int] = {}
    lead: int | None = None
    for pos, (name, n) in enumerate(zip(names, shape, strict=True)):
        kind = _kind(name, kinds[pos])
        if kind == "space-unknown":
            raise ValueError(f"{source}: space axis {name!r} of {declared} is not z, y or x; "
                             f"srbio cannot tell which way it points")
        if kind == "space":
            spatial[name] = pos
            index.append(slice(None))
        elif n == 1:
            index.append(0)
        elif kind in ("time", "position") and series and lead is None:
            lead = pos
            index.append(slice(None))
        else:
            raise ValueError(_unread(source, name, kind, n, declared))
    if "y" not in spatial or "x" not in spatial:
        raise ValueError(f"{source}: {declared} have no y and x axes")
    kept_stored = [pos for pos, i in enumerate(index) if isinstance(i, slice)]
    wanted = ([lead] if lead is not None else []) + [spatial[a] for a in SPATIAL if a in spatial]
    order = tuple(kept_stored.index(pos) for pos in wanted)
    out_names = tuple(names[pos] for pos in wanted)
    return Arrangement(tuple(index), order, tuple(wanted), out_names, lead)
