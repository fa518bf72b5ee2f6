"""napari widgets: compare a pair's methods, check its registration, predict an image.

Thin Qt over :mod:`srbio.stages.inspect`: every computation runs there, in a napari thread
worker, so the viewer stays responsive; results arrive as layers at their physical scale and
position; failures arrive as notifications naming the file or layer.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, QTimer, Signal

from srbio.config import PredictConfig
from srbio.core.qc import checkerboard, contrast_range
from srbio.core.region import Box, line_profile, world_box
from srbio.inference.monitor import Cancelled, Monitor
from srbio.io.view import pairs
from srbio.stages import inspect

PROFILE = "srbio profile"
# outputs above this many pixels go to an OME-Zarr beside the input, not into memory
IN_MEMORY_PIXELS = 2 ** 26


def _message(exc: BaseException) -> str:
    """What a user reads: the error's own words (they name the file, value and what to do)."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, (ValueError, OSError, TypeError)) else \
        f"{type(exc).__name__}: {text}"


class _Relay(QObject):
    """Carries progress from a worker thread to the widget's thread (a queued signal)."""

    progressed = Signal(int, int)


class _Panel(Container):
    """A widget whose work runs in one thread worker at a time, with a progress bar."""

    def __init__(self, viewer, widgets: list) -> None:
        self.viewer = viewer
        self.bar = ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = Label(value="")
        super().__init__(widgets=[*widgets, self.bar, self.status])
        self.worker: Any = None
        self._relay = _Relay()
        self._relay.progressed.connect(self._set_bar)

    def run(self, func, *args, done, what: str, **kwargs) -> None:
        """Run ``func`` in a worker; ``done`` gets its result, a failure a notification."""
        if self.worker is not None:
            show_info(f"srbio: {what} waits for the running task to end")
            return
        self.status.value = f"{what}…"
        # errors are ours to show (a notification with the message, never a traceback)
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        worker.returned.connect(lambda result: self._returned(worker, result, done, what))
        worker.errored.connect(lambda exc: self.failed(exc, what))
        worker.finished.connect(lambda: self._finished(worker))
        self.worker = worker
        worker.start()

    def _returned(self, worker, result, done, what: str) -> None:
        """The worker's result: this panel is free again, then ``done`` shows it."""
        if self.worker is worker:
            self.worker = None
        self._set_bar(1, 1)
        try:
            done(result)
        except Exception as exc:  # showing a result failed: say so, never a traceback
            self.failed(exc, what)

    def progress(self, done: int, total: int) -> None:
        """Called from the worker thread: the bar follows through a queued signal."""
        self._relay.progressed.emit(done, total)

    def _set_bar(self, done: int, total: int) -> None:
        self.bar.max, self.bar.value = max(total, 1), done

    def failed(self, exc: BaseException, what: str) -> None:
        """A failure: one notification, the status line says so."""
        if isinstance(exc, Cancelled):
            self.status.value = f"{what}: cancelled"
            show_info(f"srbio: {what} cancelled")
            return
        self.status.value = f"{what} failed"
        show_error(f"srbio {what}: {_message(exc)}")

    def _finished(self, worker) -> None:
        if self.worker is worker:
            self.worker = None

    def disconnect_on_close(self, *events) -> None:
        """Disconnect ``(emitter, callback)`` pairs when the widget is destroyed."""
        def disconnect() -> None:
            for emitter, callback in events:
                emitter.disconnect(callback)
        self.native.destroyed.connect(disconnect)


def _results_field() -> FileEdit:
    return FileEdit(label="results", mode="d", value=Path("results").absolute())


def _pairs_of(results: FileEdit) -> list[str]:
    folder = Path(results.value)
    return pairs(folder) if folder.is_dir() else []


def _replace(viewer, name: str, data, **kwargs):
    """Add an image layer ``name``, replacing one of that name."""
    if name in viewer.layers:
        viewer.layers.remove(name)
    return viewer.add_image(data, name=name, **kwargs)


def _image_layers(viewer) -> list:
    return [layer for layer in viewer.layers if layer._type_string == "image"]


def _visible_box(viewer, layer, shape: tuple[int, ...]) -> Box | None:
    """The pixels of ``layer`` (level 0) visible on the canvas: the view's box, this plane.

    For a multiscale layer napari widens the box to the chunks it loads.
    """
    if viewer.dims.ndisplay != 2:
        raise ValueError("the current view is a region of a 2D view; switch napari to 2D")
    corners = np.asarray(layer.corner_pixels, dtype=float)  # level 0 when not multiscale
    if layer.multiscale:
        f = np.asarray(layer.downsample_factors[layer.data_level])
        corners = np.stack([corners[0] * f, (corners[1] + 1) * f - 1])
    point = np.asarray(layer.world_to_data(viewer.dims.point), dtype=float)
    low, high = point.copy(), point.copy()
    for axis in viewer.dims.displayed:
        axis = axis - (viewer.dims.ndim - len(shape))
        if 0 <= axis < len(shape):
            low[axis], high[axis] = corners[0, axis], corners[1, axis]
    return world_box(low, high, scale=np.ones(len(shape)), translate=np.zeros(len(shape)),
                     shape=shape)


def _last_rectangle(viewer) -> tuple[Any, np.ndarray]:
    """The rectangle to predict: the selected shapes layer's (else the top one's) last one."""
    layers = [s for s in viewer.layers if s._type_string == "shapes"]
    active = viewer.layers.selection.active
    if active in layers:
        layers.append(active)  # looked at first
    for shapes in reversed(layers):
        rectangles = [d for d, t in zip(shapes.data, shapes.shape_type, strict=True)
                      if t == "rectangle"]
        if rectangles:
            return shapes, np.asarray(rectangles[-1], dtype=float)
    raise ValueError("draw a rectangle in a shapes layer first (region: drawn rectangle)")


def _rectangle_box(viewer, drawn: tuple[Any, np.ndarray], layer, shape: tuple[int, ...]
                   ) -> Box | None:
    """The pixels of ``layer`` inside a drawn rectangle (its bounding box, in world µm).

    Axes the rectangle does not span (the plane it was drawn on, or leading axes of a shapes
    layer with fewer dimensions) pick one plane: the rectangle's, else the one shown.
    """
    shapes, corners = drawn
    world = np.asarray([shapes.data_to_world(c) for c in corners])
    n = min(world.shape[1], len(shape))
    point = np.asarray(viewer.dims.point, float)[-len(shape):]
    low, high = point.copy(), point.copy()
    low[-n:], high[-n:] = world.min(0)[-n:], world.max(0)[-n:]
    return world_box(low, high, scale=layer.scale, translate=layer.translate, shape=shape)


# --------------------------------------------------------------------------- compare
class CompareWidget(_Panel):
    """LR, bicubic, network and HR of a pair side by side, with scores of what is visible."""

    def __init__(self, viewer) -> None:
        self.results = _results_field()
        self.pair = ComboBox(label="pair", choices=lambda w: _pairs_of(self.results))
        self.model = ComboBox(label="model", choices=self._models)
        self.layout_mode = ComboBox(label="view", choices=["side by side", "overlay"],
                                    value="side by side")
        self.go = PushButton(text="Compare")
        self.profile = PushButton(text="Line profile")
        self.scores = Label(value="")
        self.cells = Label(value="")
        super().__init__(viewer, [self.results, self.pair, self.model, self.layout_mode,
                                  self.cells, self.go, self.profile, self.scores])
        self.comparison: inspect.Comparison | None = None
        self.region: Box | None = None
        self.results.changed.connect(self.refresh)
        self.go.clicked.connect(self.compare)
        self.layout_mode.changed.connect(self._arrange)
        self.profile.clicked.connect(self.add_profile_line)
        self._settle = QTimer()
        self._settle.setSingleShot(True)
        self._settle.setInterval(300)  # ms without camera or plane change: score the view
        self._settle.timeout.connect(self.score_view)
        events = (viewer.camera.events.center, viewer.camera.events.zoom,
                  viewer.dims.events.current_step)
        for emitter in events:
            emitter.connect(self._moved)
        self.disconnect_on_close(*((e, self._moved) for e in events))
        self._figure, self._canvas = _profile_canvas()
        self.native.layout().addWidget(self._canvas)
        self._canvas.setVisible(False)  # until a profile line is drawn
        self.refresh()

    def _models(self, widget=None) -> list[str]:
        folder = Path(self.results.value)
        return [str(p) for p in inspect.models(folder)] if folder.is_dir() else []

    def refresh(self) -> None:
        """Pairs and models of the chosen results folder."""
        self.pair.reset_choices()
        self.model.reset_choices()

    def compare(self) -> None:
        """Predict the pair with the model (in a worker), then show every method."""
        if not self.pair.value or not self.model.value:
            show_error(f"srbio compare: {self.results.value} holds no registered pair with a "
                       f"trained model (register/<pair> and train/<model>/model.pt)")
            return
        monitor = Monitor(on_progress=self.progress)
        self.run(inspect.compare_pair, str(self.results.value), self.pair.value,
                 self.model.value, PredictConfig(), monitor=monitor, done=self.show,
                 what=f"compare {self.pair.value}")

    def show(self, comparison: inspect.Comparison) -> None:
        """Every method as a layer on the HR grid, contrast linked to the fixed HR range."""
        self.comparison = comparison
        limits = list(comparison.normalisation.hr.pair)
        layers = []
        for method, image in comparison.images.items():
            layers.append(_replace(
                self.viewer, f"{comparison.pair} {method}", image, scale=comparison.spacing,
                translate=comparison.translate, contrast_limits=limits, colormap="gray",
                metadata={"srbio": "compare", "method": method}))
        for layer in layers:
            layer.events.contrast_limits.connect(lambda e, src=layer: self._link(src, layers))
        self._arrange()
        self.viewer.reset_view()
        band = comparison.test_box[-2] if comparison.test_box[-1] == (
            0, comparison.valid.shape[-1]) else comparison.test_box[-1]
        self.status.value = f"{comparison.pair}: held-out test band at HR pixels {band}"
        self.score_view()

    def _link(self, source, layers: list) -> None:
        for layer in layers:
            if layer is not source and layer.contrast_limits != source.contrast_limits:
                layer.contrast_limits = source.contrast_limits

    def _arrange(self) -> None:
        """Side by side (one camera for all: zoom, pan and plane move together) or overlaid."""
        side = self.layout_mode.value == "side by side"
        if PROFILE in self.viewer.layers:  # a line over one cell only would mislead
            self.viewer.layers[PROFILE].visible = not side
        self.viewer.grid.enabled = side
        if side and self.comparison is not None:
            n = len(self.comparison.images)
            self.viewer.grid.shape = (1, n) if n <= 3 else (2, 2)
        self.cells.value = "\n".join(_cells(self.viewer)) if side else ""

    def _moved(self, event=None) -> None:
        if self.comparison is not None:
            self._settle.start()

    def _hr_layer(self):
        if self.comparison is None:
            return None
        name = f"{self.comparison.pair} HR"
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def score_view(self) -> None:
        """Score the region the canvas shows (HR pixels), in a worker."""
        layer = self._hr_layer()
        if layer is None:
            return
        if self.worker is not None:  # busy: score once the running task ends
            self._settle.start()
            return
        if self.viewer.dims.ndisplay != 2:
            self.scores.value = "scores are of a 2D view: switch napari to 2D"
            return
        box = _visible_box(self.viewer, layer, self.comparison.images["HR"].shape)
        if box is None:
            self.scores.value = "the view shows no HR pixel"
            return
        if min(b - a for a, b in box[-2:]) < 7:
            self.scores.value = "zoom out: the view holds fewer than 7 × 7 HR pixels"
            return
        self.region = box
        self.run(inspect.region_scores, self.comparison, box, done=self._show_scores,
                 what="scores of the view")

    def _show_scores(self, scores: dict) -> None:
        rows = [f"region {[list(b) for b in self.region]} (HR px), vs HR:",
                f"{'method':<14}{'PSNR':>7}{'SSIM':>7}{'NRMSE':>7} | fitted"]
        for method, s in scores["fixed"].items():
            f = scores["fitted"][method]
            rows.append(f"{method:<14}{s.psnr:7.2f}{s.ssim:7.3f}{s.nrmse:7.3f} | "
                        f"{f.psnr:6.2f} {f.ssim:5.3f}")
        self.scores.value = "\n".join(rows)
        self.scores.native.setStyleSheet("font-family: monospace")
        self.status.value = "scores at the fixed normalisation | after a linear fit to HR"

    def add_profile_line(self) -> None:
        """A line layer: its first line's profile across every method is plotted."""
        if self.comparison is None:
            show_error("srbio compare: compare a pair first, then draw the profile line")
            return
        name = PROFILE
        hr = self._hr_layer()
        if hr is None:
            show_error("srbio compare: the HR layer of the comparison was removed; compare again")
            return
        self.layout_mode.value = "overlay"  # the line lies over every method at once
        if name not in self.viewer.layers:
            y0 = hr.translate[-2] + hr.scale[-2] * hr.data.shape[-2] / 2
            width = hr.scale[-1] * hr.data.shape[-1]
            x0, x1 = hr.translate[-1] + width / 4, hr.translate[-1] + 3 * width / 4
            lead = list(self.viewer.dims.point[:-2])
            line = np.array([[*lead, y0, x0], [*lead, y0, x1]])
            layer = self.viewer.add_shapes([line], shape_type="line", name=name,
                                           edge_color="yellow", edge_width=0.2)
            layer.events.data.connect(lambda e: self.plot_profile())
        self.plot_profile()

    def plot_profile(self) -> None:
        """Profiles of every method along the line (world µm) in the widget's plot."""
        layer = self.viewer.layers[PROFILE] if PROFILE in self.viewer.layers else None
        if layer is None or not len(layer.data) or self.comparison is None:
            return
        start, end = np.asarray(layer.data[0])[[0, -1]]
        c = self.comparison
        ax = self._figure.axes[0]
        ax.clear()
        for method, image in c.images.items():
            d, v = line_profile(image, start[-image.ndim:], end[-image.ndim:],
                                scale=c.spacing, translate=c.translate)
            ax.plot(d, v, label=method, lw=1)
        ax.set_xlabel("µm along the line")
        ax.set_ylabel("intensity (HR units)")
        ax.legend(fontsize=7)
        self._canvas.setVisible(True)
        self._canvas.draw_idle()


def _cells(viewer) -> list[str]:
    """Where each visible layer sits in the grid, e.g. ``top-left: HR``."""
    rows, cols = viewer.grid.actual_shape(viewer.layers)
    cells = []
    for i, layer in enumerate(viewer.layers):
        r, c = viewer.grid.position(i, viewer.layers)
        if r >= 0:
            where = {(0, 0): "top-left", (0, cols - 1): "top-right", (rows - 1, 0): "bottom-left",
                     (rows - 1, cols - 1): "bottom-right"}.get((r, c), f"row {r + 1} col {c + 1}")
            cells.append(((r, c), f"{where}: {layer.name}"))
    return [text for _, text in sorted(cells)]


def _profile_canvas():
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 2.6), layout="constrained")
    figure.add_subplot(1, 1, 1)
    canvas = FigureCanvasQTAgg(figure)
    canvas.setMinimumHeight(200)
    return figure, canvas


# --------------------------------------------------------------------------- registration QC
class QCWidget(_Panel):
    """A registered pair before / after (magenta HR, green LR), a checkerboard and its QC."""

    def __init__(self, viewer) -> None:
        self.results = _results_field()
        self.pair = ComboBox(label="pair", choices=lambda w: _pairs_of(self.results))
        self.show_which = ComboBox(label="LR", choices=["after", "before"], value="after")
        self.square = SpinBox(label="square (px)", min=2, max=512, value=16)
        self.go = PushButton(text="Show registration")
        self.record = Label(value="")
        super().__init__(viewer, [self.results, self.pair, self.show_which, self.square,
                                  self.go, self.record])
        self.views = None
        self.shown = ""  # the pair whose views are shown
        self.results.changed.connect(self.refresh)
        self.go.clicked.connect(self.load)
        self.show_which.changed.connect(self._toggle)
        self.square.changed.connect(self._update_checkerboard)
        self.refresh()

    def refresh(self) -> None:
        """Pairs of the chosen results folder."""
        self.pair.reset_choices()

    def load(self) -> None:
        """Recompute the pair's QC views (in a worker), then show them."""
        if not self.pair.value:
            show_error(f"srbio registration QC: {self.results.value} holds no registered pair "
                       f"(register/<pair>/registration.json)")
            return
        pair = self.pair.value
        self.run(inspect.pair_qc, str(self.results.value), pair,
                 done=lambda result: self.show(pair, result),
                 what=f"registration QC of {pair}")

    def _name(self, what: str) -> str:
        return f"{self.shown} QC {what}"

    def show(self, pair: str, result) -> None:
        """The views as layers on the LR grid in the HR frame; the record's verdict below."""
        record, v = result
        self.views, self.shown = v, pair
        place = {"scale": v.spacing, "translate": v.origin, "blending": "additive"}
        hr_lims = contrast_range(v.hr_lr, v.mask)
        self._put(v.hr_lr, "HR", colormap="magenta", contrast_limits=hr_lims, **place)
        for when, image, mask in (("after", v.after, v.mask),
                                  ("before", v.before, v.before_mask)):
            self._put(image, f"LR {when}", colormap="green",
                      contrast_limits=contrast_range(image, mask), **place)
        self._put(self._board(), "checkerboard", colormap="gray", visible=False,
                  contrast_limits=(0.0, 1.0), **{**place, "blending": "translucent"})
        if v.displacement is not None:
            self._put(v.displacement, "B-spline displacement (µm)", colormap="viridis",
                      visible=False, **{**place, "blending": "translucent"})
        self._toggle()
        self.record.value = _verdict(record)
        colour = "#2e7d32" if record.qc.passed else "#c62828"
        self.record.native.setStyleSheet(f"color: {colour}")
        self.status.value = f"{pair}: HR magenta, LR green; grey where they agree"

    def _put(self, data, what: str, **kwargs) -> None:
        _replace(self.viewer, self._name(what), data, metadata={"srbio": "qc"}, **kwargs)

    def _board(self) -> np.ndarray:
        v = self.views

        def unit(x, mask):
            lo, hi = contrast_range(x, mask)
            return np.clip((x - lo) / (hi - lo), 0, 1).astype(np.float32)

        before = self.show_which.value == "before"
        lr, mask = (v.before, v.before_mask) if before else (v.after, v.mask)
        return checkerboard(unit(v.hr_lr, mask), unit(lr, mask), int(self.square.value))

    def _update_checkerboard(self) -> None:
        name = self._name("checkerboard")
        if self.views is not None and name in self.viewer.layers:
            self.viewer.layers[name].data = self._board()

    def _toggle(self) -> None:
        self._update_checkerboard()  # HR against the LR shown
        for when in ("after", "before"):
            name = self._name(f"LR {when}")
            if name in self.viewer.layers:
                self.viewer.layers[name].visible = self.show_which.value == when


def _verdict(record) -> str:
    rows = [f"QC {'PASSED' if record.qc.passed else 'FAILED'} ({record.transform})",
            f"NCC {record.ncc_before:.3f} → {record.ncc_after:.3f}",
            f"Mattes MI {-record.mattes_before:.3f} → {-record.mattes_after:.3f}",
            f"valid fraction {record.valid_fraction:.2f}"]
    if record.bspline_max_um is not None:
        rows.append(f"B-spline displacement max {record.bspline_max_um:.3f} µm")
    if record.tre_mean_px is not None:
        rows.append(f"error vs truth {record.tre_mean_px:.3f} HR px (max {record.tre_max_px:.3f})")
    rows += [f"✗ {f}" for f in record.qc.failures]
    return "\n".join(rows)


# --------------------------------------------------------------------------- predict
def _upsampling(model: Path) -> int:
    """Output pixels per input pixel of a model file (read from its header)."""
    from srbio.io.modelfile import read_model_file

    header, _ = read_model_file(model)
    net = header.network
    return int(net.scale) ** 2 * int(net.params.get("z_scale", 1))


class PredictWidget(_Panel):
    """Predict an image layer (whole, the view, or a drawn rectangle) with a model file."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.model = FileEdit(label="model", mode="r", filter="*.pt")
        self.image = ComboBox(label="image", choices=self._images)
        self.region = ComboBox(label="region", choices=["whole", "current view",
                                                        "drawn rectangle"], value="whole")
        self.go = PushButton(text="Predict")
        self.cancel = PushButton(text="Cancel", enabled=False)
        super().__init__(viewer, [self.model, self.image, self.region, self.go, self.cancel])
        self._stop = threading.Event()
        self.go.clicked.connect(self.predict)
        self.cancel.clicked.connect(self._stop.set)
        # napari refreshes the choices of docked widgets; this one may live elsewhere too
        events = (viewer.layers.events.inserted, viewer.layers.events.removed)
        for emitter in events:
            emitter.connect(self._layers_changed)
        self.disconnect_on_close(*((e, self._layers_changed) for e in events))

    def _layers_changed(self, event=None) -> None:
        self.image.reset_choices()

    def _images(self, widget=None) -> list:
        return [layer.name for layer in _image_layers(self.viewer)]

    def _layer(self):
        name = self.image.value
        if not name or name not in self.viewer.layers:
            raise ValueError("choose an image layer to predict")
        return self.viewer.layers[name]

    def _box(self, layer, shape: tuple[int, ...]) -> Box | None:
        mode = self.region.value
        if mode == "whole":
            return None
        if mode == "current view":
            box = _visible_box(self.viewer, layer, shape)
        else:
            box = _rectangle_box(self.viewer, _last_rectangle(self.viewer), layer, shape)
        if box is None:
            raise ValueError(f"the {mode} covers no pixel of layer {layer.name!r}")
        return box

    def predict(self) -> None:
        """Start the prediction in a worker (Cancel stops it within one batch of tiles)."""
        if self.worker is not None:  # a pending cancel of the running job stays
            show_info("srbio: predict waits for the running prediction to end")
            return
        try:
            job = self._job()
        except (ValueError, OSError) as exc:
            show_error(f"srbio predict: {_message(exc)}")
            return
        func, args, kwargs, done, what = job
        self._stop.clear()
        self.cancel.enabled = True
        self.run(func, *args, done=done, what=what, **kwargs)

    def _job(self) -> tuple:
        model = Path(str(self.model.value))
        if not model.is_file():
            raise ValueError(f"{model}: no such model file (choose srbio's model.pt)")
        layer = self._layer()
        if layer.rgb:
            raise ValueError(f"layer {layer.name!r} is RGB; srbio predicts single-channel "
                             f"images (split the channels first)")
        data = layer.data[0] if layer.multiscale else layer.data
        shape = tuple(int(n) for n in data.shape)
        box = self._box(layer, shape)
        pixels = int(np.prod([b - a for a, b in (box or [(0, n) for n in shape])]))
        pixels *= _upsampling(model)  # output pixels
        source = getattr(layer.source, "path", None)
        if box is None and pixels > IN_MEMORY_PIXELS and source:
            monitor = Monitor(on_progress=self.progress, should_stop=self._stop.is_set,
                              unit="blocks")
            return (inspect.predict_to_store, (model, source, PredictConfig()),
                    {"monitor": monitor}, self._opened, f"predict {layer.name} (to a store)")
        if pixels > IN_MEMORY_PIXELS:
            raise ValueError(f"layer {layer.name!r}: an output of {pixels} pixels is too "
                             f"large for memory; open the image from a file and predict it "
                             f"whole (written to an OME-Zarr beside it), or choose a region")
        monitor = Monitor(on_progress=self.progress, should_stop=self._stop.is_set)
        return (inspect.predict_region, (model, data),
                {"spacing": tuple(layer.scale), "translate": tuple(layer.translate),
                 "box": box, "monitor": monitor}, self._added(layer), f"predict {layer.name}")

    def _added(self, layer):
        def done(result: inspect.RegionPrediction) -> None:
            self.viewer.add_image(result.data, name=f"{layer.name} srbio", scale=result.spacing,
                                  translate=result.translate, contrast_limits=result.hr_range,
                                  metadata={"srbio": "prediction", "source": layer.name})
            self.status.value = f"{layer.name}: predicted {result.data.shape}"
        return done

    def _opened(self, record) -> None:
        from srbio.napari._reader import read_store

        path = record.store if record is not None else None
        if path:
            for data, kwargs, _ in read_store(path):
                self.viewer.add_image(data, **kwargs)
            self.status.value = f"written to {path}"

    def _finished(self, worker) -> None:
        super()._finished(worker)
        self.cancel.enabled = False
