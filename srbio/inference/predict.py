"""Tiled, blended, memory-bounded inference.

Every 2D plane is covered by one global grid of LR tiles that overlap by ``overlap`` pixels.
Each output pixel is the weighted mean of the predictions of all tiles that cover it (a
raised-cosine ramp over the overlap, so tile borders get almost no weight). Because the grid is
global, the result does not depend on how the output is chunked; chunks are filled one at a
time and tiles shared by neighbouring chunks are kept in a small LRU cache, so memory is bounded
by the tile and chunk sizes, not by the volume.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
import zarr
from tqdm.auto import tqdm

from srbio.core.dtypes import cast_clipped
from srbio.core.normalise import denormalise, normalise
from srbio.core.tiling import balanced_tile, blend_weight, intersecting, tile_starts
from srbio.io.image import load_pixels

log = logging.getLogger(__name__)


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


class TiledPredictor:
    """Apply a super-resolution network to planes or volumes of any size, tile by tile.

    A 2D network sees one plane at a time. A 3D network (``depth`` given) sees slabs of
    ``depth`` planes plus ``depth_margin`` planes of context on each side (discarded from its
    output), each slab tiled laterally like a plane.

    Parameters
    ----------
    model : torch.nn.Module
        Network mapping (N, 1, h, w) normalised LR to (N, 1, h*scale, w*scale) normalised HR.
    scale : int
        Upsampling factor of the network.
    lr_range, hr_range : (float, float)
        The model's fixed normalisation (vmin, vmax) of LR input and HR output.
    tile_shape : (int, int)
        LR tile size.
    overlap : int
        LR pixels shared by neighbouring tiles.
    batch_size : int
        Tiles per forward pass.
    device : torch.device
        Where the network runs.
    depth : int, optional
        Output planes per slab of a 3D network; ``None`` for a 2D network.
    depth_margin : int
        Planes of context read on each side of a slab (3D networks).
    """

    def __init__(self, model: torch.nn.Module, *, scale: int, lr_range: tuple[float, float],
                 hr_range: tuple[float, float], tile_shape: tuple[int, int] = (128, 128),
                 overlap: int = 16, batch_size: int = 4,
                 device: torch.device | str = "cpu", depth: int | None = None,
                 depth_margin: int = 2) -> None:
        self.model = model.eval()
        self.scale = int(scale)
        self.lr_range = tuple(float(v) for v in lr_range)
        self.hr_range = tuple(float(v) for v in hr_range)
        self.tile_shape = tuple(int(t) for t in tile_shape)
        self.overlap = int(overlap)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.depth, self.depth_margin = depth, int(depth_margin)
        self.tiles_computed = 0

    def slabs(self, planes: int) -> list[tuple[int, int, int, int]]:
        """``(z0, z1, a0, a1)`` per slab: output planes z0:z1, read planes a0:a1 (context).

        One plane per slab, without context, for a 2D network.
        """
        if self.depth is None:
            return [(z, z + 1, z, z + 1) for z in range(planes)]
        m = self.depth_margin
        return [(z, min(z + self.depth, planes), max(0, z - m), min(planes, z + self.depth + m))
                for z in range(0, planes, self.depth)]

    @torch.inference_mode()
    def _forward(self, tiles: list[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for i in range(0, len(tiles), self.batch_size):
            batch = np.stack([normalise(t, *self.lr_range) for t in tiles[i:i + self.batch_size]])
            if not np.isfinite(batch).all():
                raise ValueError("the input holds NaN or infinite pixels; fix them before predicting")
            x = torch.from_numpy(batch[:, None]).to(self.device)
            y = self.model(x).float().cpu().numpy()[:, 0]
            out.extend(denormalise(y, *self.hr_range))
        self.tiles_computed += len(tiles)
        return out

    def grid(self, shape: tuple[int, int]) -> tuple[list[int], list[int], tuple[int, int]]:
        """Tile starts (y, x) and the effective tile shape for an LR plane of ``shape``."""
        ov = self._overlap(shape)
        th, tw = (balanced_tile(n, t, ov) for t, n in zip(self.tile_shape, shape, strict=True))
        return tile_starts(shape[0], th, ov), tile_starts(shape[1], tw, ov), (th, tw)

    def _overlap(self, shape: tuple[int, int]) -> int:
        smallest = min(min(t, n) for t, n in zip(self.tile_shape, shape, strict=True))
        return min(self.overlap, max(0, smallest // 2 - 1))

    def predict_region(self, read_tile: Callable[[int, int, int, int], np.ndarray],
                       lr_shape: tuple[int, int], region: tuple[slice, slice],
                       cache: OrderedDict | None = None, cache_key: object = None,
                       cache_size: int = 0) -> np.ndarray:
        """Blend the prediction of one output region of a plane.

        Parameters
        ----------
        read_tile : callable
            ``read_tile(y0, y1, x0, x1)`` returns that LR window as a numpy array.
        lr_shape : (int, int)
            Shape of the LR plane.
        region : (slice, slice)
            Output (HR) region with explicit start/stop.
        cache, cache_key, cache_size
            Optional LRU cache of tile predictions shared between calls.

        Returns
        -------
        numpy.ndarray
            float32 prediction of the region, in HR intensity units.
        """
        s = self.scale
        sy, sx, (th, tw) = self.grid(lr_shape)
        ov = self._overlap(lr_shape)
        weight = blend_weight((th * s, tw * s), ov * s)
        (y0, y1), (x0, x1) = (region[0].start, region[0].stop), (region[1].start, region[1].stop)
        wanted = [(iy, ix) for iy in intersecting(sy, th, s, y0, y1)
                  for ix in intersecting(sx, tw, s, x0, x1)]
        preds: dict[tuple[int, int], np.ndarray] = {}
        missing = []
        for key in wanted:
            full = (cache_key, *key)
            if cache is not None and full in cache:
                cache.move_to_end(full)
                preds[key] = cache[full]
            else:
                missing.append(key)
        if missing:
            tiles = [read_tile(sy[iy], sy[iy] + th, sx[ix], sx[ix] + tw) for iy, ix in missing]
            for key, pred in zip(missing, self._forward(tiles), strict=True):
                preds[key] = pred
                if cache is not None and cache_size > 0:
                    cache[(cache_key, *key)] = pred
                    while len(cache) > cache_size:
                        cache.popitem(last=False)
        lead = next(iter(preds.values())).shape[:-2]  # () for planes, (d,) for slabs
        acc = np.zeros((*lead, y1 - y0, x1 - x0), np.float64)
        wsum = np.zeros((y1 - y0, x1 - x0), np.float64)
        for (iy, ix), pred in preds.items():
            ty, tx = sy[iy] * s, sx[ix] * s
            a0, a1 = max(y0, ty), min(y1, ty + th * s)
            b0, b1 = max(x0, tx), min(x1, tx + tw * s)
            w = weight[a0 - ty:a1 - ty, b0 - tx:b1 - tx]
            acc[..., a0 - y0:a1 - y0, b0 - x0:b1 - x0] += w * pred[..., a0 - ty:a1 - ty,
                                                                   b0 - tx:b1 - tx]
            wsum[a0 - y0:a1 - y0, b0 - x0:b1 - x0] += w
        return (acc / wsum).astype(np.float32)

    def predict_plane(self, plane: np.ndarray) -> np.ndarray:
        """Predict a whole in-memory 2D LR plane (float32, HR intensity units)."""
        plane = np.asarray(plane)
        if plane.ndim != 2:
            raise ValueError(f"predict_plane expects a 2D plane, got shape {plane.shape}")
        h, w = plane.shape
        return self.predict_region(lambda a, b, c, d: plane[a:b, c:d], (h, w),
                                   (slice(0, h * self.scale), slice(0, w * self.scale)))

    def predict_image(self, image: np.ndarray) -> np.ndarray:
        """Predict a 2D image, or a 3D stack plane by plane or slab by slab (z not upsampled)."""
        image = np.asarray(image)
        if self.depth is not None and image.ndim != 3:
            raise ValueError(f"a 3D network predicts volumes (zyx); got shape {image.shape}")
        if image.ndim == 2:
            return self.predict_plane(image)
        if self.depth is None:
            return np.stack([self.predict_plane(p) for p in image])
        h, w = image.shape[-2:]
        out = []
        for z0, z1, a0, a1 in self.slabs(image.shape[0]):
            slab = image[a0:a1]
            pred = self.predict_region(lambda a, b, c, d, v=slab: v[:, a:b, c:d], (h, w),
                                       (slice(0, h * self.scale), slice(0, w * self.scale)))
            out.append(pred[z0 - a0:z1 - a0])
        return np.concatenate(out)


def output_regions(shape: tuple[int, ...], chunks: tuple[int, ...]
                   ) -> list[tuple[slice, slice]]:
    """The lateral (y, x) regions of one output plane, one per chunk, in row-major order."""
    (h, w), (ch, cw) = shape[-2:], chunks[-2:]
    return [(slice(y0, min(y0 + ch, h)), slice(x0, min(x0 + cw, w)))
            for y0 in range(0, h, ch) for x0 in range(0, w, cw)]


def _log_clipping(low: int, high: int, total_px: int, dtype: np.dtype) -> None:
    if low:  # typical in black borders / fill regions, which normalise below vmin
        log.info("%d predicted pixels (%.1f%%) were below 0 and were set to 0 (black borders "
                 "and fill regions normalise below vmin)", low, 100 * low / total_px)
    if high:
        log.warning("%d predicted pixels (%.2f%%) exceeded %d and were clipped: consider "
                    "dtype float32", high, 100 * high / total_px, np.iinfo(dtype).max)


def _tile_reader(src, seen: list[float]) -> Callable[[int, int, int, int], np.ndarray]:
    """``read_tile(y0, y1, x0, x1)`` of a plane or slab; widens ``seen`` to the values read."""
    def read_tile(a: int, b: int, c: int, d: int) -> np.ndarray:
        tile = load_pixels(src[..., a:b, c:d], source=f"pixels [{a}:{b}, {c}:{d}]")
        seen[:] = min(seen[0], float(tile.min())), max(seen[1], float(tile.max()))
        return tile

    return read_tile


def predict_to_zarr(predictor: TiledPredictor, source, out: zarr.Array, *,
                    progress: bool = True) -> dict[str, int]:
    """Predict a 2D/3D LR array chunk by chunk (slab by slab for 3D networks) into ``out``.

    Parameters
    ----------
    predictor : TiledPredictor
        The configured predictor.
    source : array-like
        LR data supporting numpy-style slicing (numpy, zarr or dask array), ``yx``/``zyx``.
    out : zarr.Array
        Output (``source.shape``, lateral axes × scale); its chunks set the order and
        granularity of the work. Each chunk is written once.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``tiles`` computed; ``clipped_low`` / ``clipped_high``: pixels clipped below / above.
    """
    s = predictor.scale
    lr_shape = tuple(source.shape[-2:])
    expected = (*source.shape[:-2], lr_shape[0] * s, lr_shape[1] * s)
    if tuple(out.shape) != expected:
        raise ValueError(f"output shape {out.shape} does not match the input × {s}: {expected}")
    _, sx, (th, _) = predictor.grid(lr_shape)
    cache_size = len(sx) * (int(np.ceil(out.chunks[-2] / (th * s))) + 2)
    dtype = np.dtype(out.dtype)
    regions = output_regions(expected, tuple(out.chunks))
    if predictor.depth is not None and source.ndim != 3:
        raise ValueError(f"a 3D network predicts volumes (zyx); got shape {source.shape}")
    slabs = predictor.slabs(source.shape[0] if source.ndim == 3 else 1)
    low = high = 0
    seen = [np.inf, -np.inf]  # the input's range, over every tile read
    with tqdm(total=len(slabs) * len(regions), desc="predict chunks", disable=not progress,
              unit="chunk") as bar:
        for z0, z1, a0, a1 in slabs:
            # a plane (2D network) or a slab with its context planes (3D network)
            src = source if source.ndim == 2 else source[a0] if predictor.depth is None \
                else source[a0:a1]
            cache: OrderedDict = OrderedDict()
            read_tile = _tile_reader(src, seen)
            for region in regions:
                pred = predictor.predict_region(read_tile, lr_shape, region, cache, z0,
                                                cache_size)
                if predictor.depth is not None:
                    pred = pred[z0 - a0:z1 - a0]
                block, n_low, n_high = cast_clipped(pred, dtype)
                low, high = low + n_low, high + n_high
                if source.ndim == 2:
                    out[region] = block
                else:
                    out[(slice(z0, z1), *region)] = block if block.ndim == 3 else block[None]
                bar.update()
    _log_clipping(low, high, int(np.prod(out.shape)), dtype)
    if seen[0] == seen[1]:
        log.warning("the input is constant (every pixel is %g): the prediction holds no "
                    "information about the sample", seen[0])
    return {"tiles": predictor.tiles_computed, "clipped_low": low, "clipped_high": high}
