"""Tile plans for tiled inference, as data (pure numpy).

A network sees a *read window* of the input; only the centre of its prediction, the *kept*
part, is used: a halo of ``halo`` input pixels on every side that faces another tile is read,
then cropped away. When ``halo`` covers the network's receptive field, a kept pixel is exactly
what the network gives on the whole input. Neighbouring kept parts may overlap by ``overlap``
pixels; only there are predictions blended (linear ramps, normalised to sum to one), so a
network that is not local (channel attention pools over its whole input) shows no seam.

Plans are made per output region (one chunk of the output, in its input coordinates), axis by
axis: a :class:`TilePlan` is the product of one :class:`AxisPlan` per axis. An axis with
``tile=1, halo=0`` is iterated over (planes of a 2D network, time points). The plan depends
only on the region, the axis lengths and the settings, never on what else is computed, so any
scheduler that predicts the same regions gets the same output.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: its read window and its kept part, in input pixels."""

    read: tuple[int, int]
    keep: tuple[int, int]


@dataclass(frozen=True)
class AxisSettings:
    """How one axis is tiled: read size, cropped halo, blended overlap, output px per input px.

    ``tile`` is the largest read window; the kept part of a tile is at most
    ``tile - 2 * halo`` pixels and must exceed ``overlap``.
    """

    tile: int
    halo: int = 0
    overlap: int = 0
    factor: int = 1
    min_read: int = 1  # the smallest window the network accepts (RLFN: 15)

    def __post_init__(self) -> None:
        if min(self.tile, self.factor) < 1 or min(self.halo, self.overlap) < 0:
            raise ValueError(f"invalid tiling {self}: tile and factor ≥ 1, halo and overlap ≥ 0")
        if self.tile - 2 * self.halo <= self.overlap:
            raise ValueError(f"tile {self.tile} leaves no kept part: it must exceed 2 × halo "
                             f"({self.halo}) + overlap ({self.overlap})")


ITERATE = AxisSettings(tile=1)  # an axis predicted one index at a time


@dataclass(frozen=True)
class AxisPlan:
    """The tiles covering ``region`` (input pixels) of an axis of ``length`` pixels."""

    length: int
    region: tuple[int, int]
    factor: int
    tiles: tuple[AxisTile, ...]

    @property
    def window(self) -> tuple[int, int]:
        """The input read for the whole region: the union of the tiles' windows."""
        return min(t.read[0] for t in self.tiles), max(t.read[1] for t in self.tiles)

    @property
    def output(self) -> tuple[int, int]:
        """The output pixels of the region."""
        return self.region[0] * self.factor, self.region[1] * self.factor

    def weights(self) -> list[np.ndarray]:
        """Per tile, the blending weight of each output pixel of its kept part.

        1 where a tile alone covers a pixel; linear ramps where kept parts overlap, normalised
        so that the weights of every output pixel sum to one.
        """
        f = self.factor
        raw = []
        for i, t in enumerate(self.tiles):
            k0, k1 = t.keep[0] * f, t.keep[1] * f
            x = np.arange(k0, k1, dtype=np.float64) + 0.5
            w = np.ones(k1 - k0)
            if i > 0 and self.tiles[i - 1].keep[1] * f > k0:  # rise over the left overlap
                b = self.tiles[i - 1].keep[1] * f
                w = np.where(x < b, (x - k0) / (b - k0), w)
            if i + 1 < len(self.tiles) and self.tiles[i + 1].keep[0] * f < k1:  # fall
                a = self.tiles[i + 1].keep[0] * f
                w = np.minimum(w, np.where(x > a, (k1 - x) / (k1 - a), 1.0))
            raw.append(w)
        o0, o1 = self.output
        total = np.zeros(o1 - o0)
        for t, w in zip(self.tiles, raw, strict=True):
            total[t.keep[0] * f - o0:t.keep[1] * f - o0] += w
        return [(w / total[t.keep[0] * f - o0:t.keep[1] * f - o0]).astype(np.float32)
                for t, w in zip(self.tiles, raw, strict=True)]


def plan_axis(start: int, stop: int, length: int, settings: AxisSettings) -> AxisPlan:
    """Tile the input pixels ``[start, stop)`` of an axis of ``length`` pixels.

    As few tiles as the kept size ``tile - 2*halo`` allows, all kept parts of one size (so the
    tiles of a region batch together), consecutive ones overlapping by at least ``overlap``.
    Every read window has the same size, ``kept + 2*halo`` but at least ``min_read`` (a
    narrow region at the end of an axis still gets what the network needs) and at most
    ``length``; at the ends of the axis a window shifts inwards, so a kept pixel always has
    ``halo`` pixels of real context on every side, or the end of the axis (where the
    whole-input prediction pads too).
    """
    if not 0 <= start < stop <= length:
        raise ValueError(f"region [{start}, {stop}) is not inside an axis of {length} pixels")
    size, ov = stop - start, settings.overlap
    most = settings.tile - 2 * settings.halo
    if size <= most:
        count, kept = 1, size
    else:
        count = math.ceil((size - ov) / (most - ov))
        kept = math.ceil((size + (count - 1) * ov) / count)
    window = min(max(kept + 2 * settings.halo, settings.min_read), length)
    tiles = []
    for i in range(count):
        k0 = start + (i * (size - kept)) // (count - 1) if count > 1 else start
        r0 = min(max(k0 - settings.halo, 0), length - window)
        tiles.append(AxisTile(read=(r0, r0 + window), keep=(k0, k0 + kept)))
    return AxisPlan(length=length, region=(start, stop), factor=settings.factor,
                    tiles=tuple(tiles))


@dataclass(frozen=True)
class TilePlan:
    """The tiles of one region of an n-dimensional input: the product of per-axis plans."""

    axes: tuple[AxisPlan, ...]

    @property
    def window(self) -> tuple[slice, ...]:
        """The input to read once for the whole region."""
        return tuple(slice(*a.window) for a in self.axes)

    @property
    def output(self) -> tuple[slice, ...]:
        """The output region the plan fills."""
        return tuple(slice(*a.output) for a in self.axes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the output region."""
        return tuple(b - a for a, b in (ax.output for ax in self.axes))

    def __len__(self) -> int:
        return math.prod(len(a.tiles) for a in self.axes)

    def indices(self) -> Iterator[tuple[int, ...]]:
        """Every tile, as one tile index per axis (row-major)."""
        return itertools.product(*(range(len(a.tiles)) for a in self.axes))

    def read(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """A tile's read window, relative to :attr:`window`."""
        return tuple(slice(a.tiles[i].read[0] - a.window[0], a.tiles[i].read[1] - a.window[0])
                     for a, i in zip(self.axes, index, strict=True))


def plan_region(region: Sequence[tuple[int, int]], shape: Sequence[int],
                settings: Sequence[AxisSettings]) -> TilePlan:
    """The tile plan of an input region (``(start, stop)`` per axis) of an input of ``shape``."""
    if not len(region) == len(shape) == len(settings):
        raise ValueError(f"region {list(region)}, shape {tuple(shape)} and {len(settings)} axis "
                         f"settings disagree on the number of axes")
    return TilePlan(tuple(plan_axis(a, b, n, s) for (a, b), n, s
                          in zip(region, shape, settings, strict=True)))


def input_region(output: Sequence[tuple[int, int]], shape: Sequence[int],
                 factors: Sequence[int]) -> list[tuple[int, int]]:
    """The input region whose prediction is the output region ``output``.

    Each output bound must fall on an input pixel boundary (a multiple of the axis' factor).
    """
    out = []
    for (o0, o1), n, f in zip(output, shape, factors, strict=True):
        if o0 % f or o1 % f or not 0 <= o0 < o1 <= n * f:
            raise ValueError(f"output region [{o0}, {o1}) does not fall on the input pixels of "
                             f"an axis of {n} pixels upsampled {f}×")
        out.append((o0 // f, o1 // f))
    return out


class Stitcher:
    """Accumulates tile predictions of a :class:`TilePlan` into its output region."""

    def __init__(self, plan: TilePlan, lead: tuple[int, ...] = ()) -> None:
        self.plan = plan
        self.out = np.zeros((*lead, *plan.output_shape), np.float32)
        self._weights = [a.weights() for a in plan.axes]
        self._ones = [[bool(np.all(w == 1)) for w in axis] for axis in self._weights]

    def add(self, index: tuple[int, ...], prediction: np.ndarray) -> None:
        """Add one tile's prediction (the network's output on its read window)."""
        dst, src, weight = [], [], None
        for axis, (plan, i) in enumerate(zip(self.plan.axes, index, strict=True)):
            tile, f, o0 = plan.tiles[i], plan.factor, plan.output[0]
            dst.append(slice(tile.keep[0] * f - o0, tile.keep[1] * f - o0))
            src.append(slice((tile.keep[0] - tile.read[0]) * f,
                             (tile.keep[1] - tile.read[0]) * f))
            w = self._weights[axis][i].reshape([-1 if d == axis else 1
                                                for d in range(len(self.plan.axes))])
            weight = w if weight is None else weight * w
        lead = (slice(None),) * (self.out.ndim - len(self.plan.axes))
        if all(ones[i] for ones, i in zip(self._ones, index, strict=True)):
            self.out[(*lead, *dst)] = prediction[(*lead, *src)]  # no other tile covers these
        else:
            self.out[(*lead, *dst)] += prediction[(*lead, *src)] * weight

    def result(self) -> np.ndarray:
        """The stitched output region (float32)."""
        return self.out
