"""Tiled inference: one output chunk at a time, from its coordinates.

:meth:`TiledPredictor.predict_chunk` is the one place tiling happens: for an output region it
reads the input window plus the halo once, predicts the tiles of its
:class:`~srbio.core.tiling.TilePlan` in batches, crops each tile's halo, blends where kept parts
overlap, and returns the region. Local workers, ``--part`` jobs, evaluation and tests all call
it; the result of a region depends only on the region, never on the order or the process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from srbio.core.tiling import ITERATE, AxisSettings, Stitcher, TilePlan, input_region, plan_region
from srbio.inference.monitor import Monitor
from srbio.io.image import load_pixels

log = logging.getLogger(__name__)

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16,
                                      "fp16": torch.float16}
TTA_CHOICES = (1, 2, 4, 8)


def _mps() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for ``name``: ``auto`` (CUDA, then MPS, then CPU), cpu, mps, cuda[:N].

    Raises
    ------
    ValueError
        When the device asked for is not available on this machine.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available()
                                  or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {name!r} asked for, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s); use device auto or cpu")
    if device.type == "mps" and not _mps():
        raise ValueError(f"device {name!r} asked for, but MPS is not available here")
    return device


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th of the 8 symmetries of the square on the last two axes (0: identity)."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def undo_dihedral(y: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`dihedral`."""
    if k >= 4:
        y = torch.flip(y, dims=(-1,))
    return torch.rot90(y, -(k % 4), dims=(-2, -1))


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc)


class NetworkRunner:
    """Run a network on batches of raw tiles: normalise, forward, denormalise.

    Parameters
    ----------
    model : torch.nn.Module
        Network mapping normalised (N, 1, *spatial) LR to normalised HR.
    lr_range, hr_range : (float, float)
        The model's fixed normalisation (vmin, vmax) of its input and output.
    device : torch.device
        Where the network runs.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision of the forward pass (the output is always float32).
    tta : {1, 2, 4, 8}
        Test-time augmentation: the mean over the first ``tta`` symmetries of the square
        (lateral axes; rotations, then their mirror images), each undone on the output.
    batch_size : int or "auto"
        Tiles per forward pass; on a CUDA out-of-memory error it is halved and the batch
        retried. ``auto``: on CUDA, what 70 % of the free device memory holds (measured with
        one tile), elsewhere 4.
    channels_last : bool
        Run in the channels-last memory format (faster convolutions on CPU and GPU).
    """

    def __init__(self, model: torch.nn.Module, *, lr_range: tuple[float, float],
                 hr_range: tuple[float, float], device: torch.device | str = "cpu",
                 precision: str = "fp32", tta: int = 1, batch_size: int | str = 4,
                 channels_last: bool = True) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if tta not in TTA_CHOICES:
            raise ValueError(f"tta {tta!r} is not one of {TTA_CHOICES}")
        self.device = torch.device(device)
        self.model = model.eval()
        self.lr_range = tuple(float(v) for v in lr_range)
        self.hr_range = tuple(float(v) for v in hr_range)
        self.precision, self.tta = precision, int(tta)
        self.batch_size: int | None = None if batch_size == "auto" else int(batch_size)
        self.channels_last = channels_last
        self._formatted = False
        self.tiles_computed = 0

    def _format(self, ndim: int) -> torch.memory_format:
        fmt = torch.channels_last if ndim == 4 else torch.channels_last_3d
        if self.channels_last and not self._formatted:
            with torch.inference_mode(False), torch.no_grad():  # weights stay trainable
                self.model.to(memory_format=fmt)
            self._formatted = True
        return fmt if self.channels_last else torch.contiguous_format

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor, precision: str) -> torch.Tensor:
        """Raw (N, 1, *spatial) tiles → float32 predictions in HR units, on the device.

        Normalisation and its inverse run on the device too, with the same float32
        arithmetic as :func:`~srbio.core.normalise.normalise` / ``denormalise``.
        """
        x = x.to(self.device, non_blocking=True).float()
        if not bool(torch.isfinite(x).all()):
            raise ValueError("the input holds NaN or infinite pixels; fix them before predicting")
        (lo, hi), (out_lo, out_hi) = self.lr_range, self.hr_range
        x = ((x - lo) / (hi - lo)).contiguous(memory_format=self._format(x.ndim))
        dtype = PRECISIONS[precision]
        total = None
        for k in range(self.tta):
            with torch.autocast(self.device.type, dtype=dtype, enabled=precision != "fp32"):
                y = self.model(dihedral(x, k) if k else x)
            y = undo_dihedral(y.float(), k) if k else y.float()
            total = y if total is None else total + y
        if self.tta > 1:
            total = total / self.tta
        return total * (out_hi - out_lo) + out_lo

    def batch_for(self, tile: np.ndarray) -> int:
        """The batch size, measured on the first call for ``auto`` (``tile``: one raw tile)."""
        if self.batch_size is None:
            self.batch_size = 4
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
                base = torch.cuda.memory_allocated(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
                self._forward(torch.from_numpy(np.ascontiguousarray(tile[None, None])),
                              self.precision)
                per_tile = max(1, torch.cuda.max_memory_allocated(self.device) - base)
                free = torch.cuda.mem_get_info(self.device)[0]
                self.batch_size = int(min(256, max(1, 0.7 * free // per_tile)))
                log.info("batch size %d: %.0f MB per tile, %.0f MB free on %s",
                         self.batch_size, per_tile / 2**20, free / 2**20, self.device)
        return self.batch_size

    def __call__(self, tiles: np.ndarray, *, precision: str | None = None) -> np.ndarray:
        """Predict raw tiles (N, *spatial) → float32 (N, *spatial × factors) in HR units.

        ``tiles`` may be of any dtype torch reads (uint8, uint16, float32, …).
        """
        self.batch_for(tiles[0])
        out = []
        start = 0
        while start < len(tiles):
            batch = tiles[start:start + self.batch_size]
            try:
                y = self._forward(torch.from_numpy(np.ascontiguousarray(batch[:, None])),
                                  precision or self.precision)
            except RuntimeError as exc:
                if not (_out_of_memory(exc) and self.batch_size > 1):
                    raise
                torch.cuda.empty_cache()
                self.batch_size //= 2
                log.warning("out of device memory: batch size halved to %d", self.batch_size)
                continue
            out.append(y.cpu().numpy()[:, 0])
            start += len(batch)
        self.tiles_computed += len(tiles)
        return out[0] if len(out) == 1 else np.concatenate(out)


@dataclass
class Chunk:
    """A predicted output region and what was seen of the input."""

    data: np.ndarray  # float32, HR units
    input_min: float
    input_max: float
    tiles: int


class TiledPredictor:
    """Apply a super-resolution network to inputs of any size, one output region at a time.

    A 2D network predicts planes (every leading axis iterated over); a 3D network (``depth``
    given) predicts slabs of ``depth`` planes with ``depth_margin`` planes of context on each
    side, cropped. Lateral tiles read ``halo`` pixels of context on each side, cropped; kept
    parts of neighbouring tiles overlap by ``overlap`` pixels and are blended there.

    Parameters
    ----------
    model : torch.nn.Module
        Network mapping (N, 1, [d,] h, w) normalised LR to normalised HR.
    scale : int
        Lateral upsampling factor of the network.
    lr_range, hr_range : (float, float)
        The model's fixed normalisation (vmin, vmax) of LR input and HR output.
    tile_shape : (int, int)
        Largest lateral read window (input pixels), halos included.
    overlap : int
        Input pixels shared by the kept parts of neighbouring tiles (blended).
    halo : int
        Input pixels of context read and cropped on each inner side of a tile; exact when it
        covers the network's receptive field (:func:`receptive_field`).
    batch_size, device, precision, tta
        See :class:`NetworkRunner`.
    depth, depth_margin, z_scale
        Slab planes, context planes and z upsampling of a 3D network (None: a 2D network).
    min_input : int
        The smallest lateral input the network accepts: narrow regions read at least this.
    """

    def __init__(self, model: torch.nn.Module, *, scale: int, lr_range: tuple[float, float],
                 hr_range: tuple[float, float], tile_shape: tuple[int, int] = (256, 256),
                 overlap: int = 16, halo: int = 8, batch_size: int | str = 4,
                 device: torch.device | str = "cpu", depth: int | None = None,
                 depth_margin: int = 2, z_scale: int = 1, precision: str = "fp32",
                 tta: int = 1, channels_last: bool = True, min_input: int = 1) -> None:
        self.runner = NetworkRunner(model, lr_range=lr_range, hr_range=hr_range, device=device,
                                    precision=precision, tta=tta, batch_size=batch_size,
                                    channels_last=channels_last)
        self.scale = int(scale)
        self.tile_shape = tuple(int(t) for t in tile_shape)
        self.overlap, self.halo = int(overlap), int(halo)
        self.depth, self.depth_margin, self.z_scale = depth, int(depth_margin), int(z_scale)
        self.net_dims = 2 if depth is None else 3
        self.reach: int | None = None  # the network's measured lateral reach, when known
        self.monitor: Monitor | None = None  # progress and cancel of a caller (a GUI)
        self._lateral = [AxisSettings(tile=t, halo=self.halo, overlap=self.overlap,
                                      factor=self.scale, min_read=min(t, min_input))
                         for t in self.tile_shape]

    @property
    def tiles_computed(self) -> int:
        """Tiles predicted so far (each counted once, whatever ``tta``)."""
        return self.runner.tiles_computed

    @tiles_computed.setter
    def tiles_computed(self, value: int) -> None:
        self.runner.tiles_computed = value

    def settings(self, ndim: int) -> list[AxisSettings]:
        """How each axis of an ``ndim``-dimensional input is tiled."""
        if ndim < self.net_dims:
            kind = "volumes (zyx)" if self.net_dims == 3 else "planes (yx)"
            raise ValueError(f"a {self.net_dims}D network predicts {kind}; got {ndim} axes")
        axes = [ITERATE] * (ndim - self.net_dims)
        if self.depth is not None:
            m = self.depth_margin
            axes.append(AxisSettings(tile=self.depth + 2 * m, halo=m, factor=self.z_scale))
        return [*axes, *self._lateral]

    def factors(self, ndim: int) -> tuple[int, ...]:
        """Output pixels per input pixel along each axis."""
        return tuple(s.factor for s in self.settings(ndim))

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output shape for an input of ``shape``."""
        return tuple(n * f for n, f in zip(shape, self.factors(len(shape)), strict=True))

    def plan(self, shape: tuple[int, ...], region: tuple[slice, ...]) -> TilePlan:
        """The tile plan of the output ``region`` of an input of ``shape``."""
        bounds = [(s.start, s.stop) for s in region]
        return plan_region(input_region(bounds, shape, self.factors(len(shape))), shape,
                           self.settings(len(shape)))

    def read(self, source, region: tuple[slice, ...]) -> tuple[TilePlan, np.ndarray]:
        """The tile plan of an output region and its input window, read once (float32)."""
        shape = tuple(int(n) for n in source.shape)
        plan = self.plan(shape, region)
        window = load_pixels(source[plan.window],
                             source=f"input window {[(s.start, s.stop) for s in plan.window]}")
        return plan, np.asarray(window)

    def tiles(self, plan: TilePlan, window: np.ndarray, indices: list[tuple[int, ...]]
              ) -> np.ndarray:
        """The network inputs of some tiles of ``plan``: (N, *the network's axes)."""
        lead = window.ndim - self.net_dims
        tiles = np.stack([window[plan.read(idx)] for idx in indices])
        return tiles.reshape(len(indices), *tiles.shape[1 + lead:])

    def compute(self, plan: TilePlan, window: np.ndarray) -> Chunk:
        """Predict the tiles of ``plan`` from its input ``window`` and stitch them."""
        stitcher = Stitcher(plan)
        lead = window.ndim - self.net_dims
        indices = list(plan.indices())
        step = self.runner.batch_for(self.tiles(plan, window, indices[:1])[0])
        for i in range(0, len(indices), step):
            if self.monitor is not None:  # before each batch: a cancel waits one batch at most
                self.monitor.report(i, len(indices), "tiles")
            group = indices[i:i + step]
            for idx, pred in zip(group, self.runner(self.tiles(plan, window, group)),
                                 strict=True):
                stitcher.add(idx, pred.reshape((1,) * lead + pred.shape))
        if self.monitor is not None:
            self.monitor.report(len(indices), len(indices), "tiles")
        return Chunk(stitcher.result(), float(window.min()), float(window.max()), len(indices))

    def predict_chunk(self, source, region: tuple[slice, ...]) -> Chunk:
        """Predict one output region (explicit start/stop per axis) of ``source``.

        ``source`` is any array supporting numpy slicing (numpy, zarr, dask, a lazily
        resampled volume); its window plus halo is read once.
        """
        return self.compute(*self.read(source, region))

    def predict_image(self, image: np.ndarray) -> np.ndarray:
        """Predict a whole in-memory input (float32, HR intensity units)."""
        image = np.asarray(image)
        out = self.output_shape(image.shape)
        return self.predict_chunk(image, tuple(slice(0, n) for n in out)).data


def receptive_field(model: torch.nn.Module, *, dims: int = 2, device: torch.device | str = "cpu",
                    cap: int = 48, z_cap: int = 8, threshold: float = 1e-3) -> tuple[int, int]:
    """Measure how far (input pixels) a network's output looks: ``(lateral, z)``.

    The gradient of the outputs of the centre input pixel with respect to a random input of
    ``2*cap + 1``
    pixels a side (``2*z_cap + 1`` planes in 3D) is taken; the reach is the largest distance
    from the centre at which it exceeds ``threshold`` times its maximum. Networks that pool
    over their whole input (channel attention) have a small gradient everywhere: that part
    is below the threshold, and tiling cannot be exact for them anyway. A reach at the cap
    means the network may look further (a warning says so). ``z`` is 0 for a 2D network.
    """
    device = torch.device(device)
    lateral = 2 * cap + 1
    shape = (1, 1, lateral, lateral) if dims == 2 else (1, 1, 2 * z_cap + 1, lateral, lateral)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=gen).to(device).requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            y = model(x)
            # every output pixel of the centre input pixel (s × s of them, and z_scale in z):
            # at odd scales one alone may miss the neighbour the others interpolate from
            centre = tuple(slice((n // 2) * (m // n), (n // 2 + 1) * (m // n))
                           for n, m in zip(x.shape[2:], y.shape[2:], strict=True))
            y[(0, 0, *centre)].sum().backward()
    finally:
        model.train(was_training)
    g = x.grad.abs()[0, 0].cpu().numpy()
    strong = np.argwhere(g > threshold * g.max())
    mid = np.array(g.shape) // 2
    reach = np.abs(strong - mid).max(axis=0)
    lat, z = int(reach[-2:].max()), int(reach[0]) if dims == 3 else 0
    if lat >= cap or (dims == 3 and z >= z_cap):
        log.warning("the network's receptive field reaches the edge of the %d-pixel (%d-plane) "
                    "probe: it may look further, and tiles may not be exact", cap, z_cap)
    return min(lat, cap), min(z, z_cap)


def halo_for(model: torch.nn.Module, halo: int | str, *, dims: int, device,
             tile_shape: tuple[int, int], overlap: int, depth_margin: int = 0
             ) -> tuple[int, int]:
    """The lateral halo and measured reach: ``halo`` itself, or the measured reach (``auto``).

    An ``auto`` halo is limited so each tile keeps at least half its size. A 3D network
    reaching further in z than ``depth_margin`` planes gets a warning.
    """
    lat, z = receptive_field(model, dims=dims, device=device)
    if dims == 3 and z > depth_margin:
        log.warning("the network reaches %d planes in z, more than depth_margin %d: slabs may "
                    "show seams in z (raise predict.depth_margin to %d)", z, depth_margin, z)
    if halo != "auto":
        return int(halo), lat
    most = max(0, (min(tile_shape) // 2 - overlap) // 2)
    if lat > most:
        log.warning("the network's reach (%d px) exceeds what tiles of %s keep with overlap %d; "
                    "halo %d: use larger tiles for an exact result", lat, list(tile_shape),
                    overlap, most)
    return min(lat, most), lat
