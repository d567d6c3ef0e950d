"""The Detect dock widget: run a detector over the view, a drawn rectangle or all tissue, or
as the user pans.

Levels are offered as the slide has them, each with its µm per pixel, with a warning when
the detector's weights were trained at another level. Long runs show one bar with the time
left and stop within one step on Cancel; "pan" adds a layer at once whose blocks are
computed in the background as napari shows them (the GUI thread only reads the cache) and
drawn as each finishes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QWidget,
)

from napari_cpadv.errors import CpadvError
from napari_cpadv.inference.detect import SCOPES, DetectModel, score_against
from napari_cpadv.widgets._collector import watch
from napari_cpadv.widgets._view import (
    REGION_LAYER,
    LevelPicker,
    RunControls,
    box,
    draw_region,
    ground_truth,
    notify,
    same_layer,
    scrolled_layout,
    show_scale,
    slide_layer,
    still_open,
    tooltips,
)
from napari_cpadv.widgets._work import start

if TYPE_CHECKING:
    import napari

__all__ = ["REGION_LAYER", "DetectWidget"]


class DetectWidget(QWidget):
    """Detector, scope and level; Run with a progress bar and Cancel; a heatmap layer out."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        watch(self, viewer)  # full garbage collections kept short (_collector)
        self.model = DetectModel()
        self.worker: Any = None
        self.last_score: dict[str, Any] | None = None
        self.cache: str | None = None  # on-demand heatmaps: None is the user cache
        controls = RunControls()
        self._detector, self._weights = controls.detector, controls.weights
        self._run, self._cancel = controls.run, controls.cancel
        self._progress, self._status = controls.progress, controls.status
        self._browse = QPushButton("…")
        self._scope = QComboBox()
        self._scope.addItems(SCOPES)
        self._draw = QPushButton("Draw region")
        self._levels = LevelPicker(self.model.level)
        self._level = self._levels.combo
        self.on_demand: list[tuple[Any, Any]] = []  # (layer, OnDemandHeatmap) in the background
        self._poll = QTimer(self)
        self._poll.setInterval(250)
        self._poll.timeout.connect(self._on_poll)
        self.resolution_warning: str | None = None
        self._layout()
        self._tooltips()
        self._browse.clicked.connect(self._on_browse)
        self._run.clicked.connect(self._on_run)
        self._draw.clicked.connect(self._on_draw)
        self._detector.currentTextChanged.connect(self._on_resolution)
        self._weights.textChanged.connect(self._on_resolution)  # dae-he: no warning
        self._level.currentIndexChanged.connect(self._on_resolution)
        viewer.layers.events.inserted.connect(self._on_layers)
        viewer.layers.events.removed.connect(self._on_layers)
        viewer.layers.events.removed.connect(self._on_removed)
        self._running_on: Any = None  # the slide layer the current run reads
        self._on_layers()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("detector", self._detector)
        weights = QHBoxLayout()
        weights.addWidget(self._weights)
        weights.addWidget(self._browse)
        form.addRow("weights", weights)
        scope = QHBoxLayout()
        scope.addWidget(self._scope, 1)
        scope.addWidget(self._draw)
        form.addRow("scope", scope)
        form.addRow("level", self._level)
        buttons = QHBoxLayout()
        buttons.addWidget(self._run)
        buttons.addWidget(self._cancel)
        layout = scrolled_layout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self._progress)
        layout.addWidget(self._status)
        layout.addStretch()

    def _tooltips(self) -> None:
        tooltips(
            {
                self._detector: "The detector to run (with the weights named below)",
                self._browse: "Choose a weights file",
                self._scope: "view: what the viewer shows; rectangle: the last rectangle of "
                "the 'detect region' Shapes layer; tissue: every block with tissue; pan: a "
                "layer computed in the background as you pan, cached on disk",
                self._draw: "Draw a rectangle on the slide (a 'detect region' Shapes layer)",
                self._level: "The slide level to run at: its µm per pixel and size (default 2, "
                "the level the shipped weights were trained at)",
                self._run: "Run the detector; the heatmap arrives as a layer",
                self._cancel: "Stop within one step",
            }
        )

    def _on_draw(self) -> None:
        draw_region(self.viewer)
        self._scope.setCurrentText("rectangle")

    def _on_layers(self, *_: Any) -> None:
        """Keep the levels in step with the slide; stop background heatmaps whose layer
        was removed."""
        self._levels.set_slide(slide_layer(self.viewer))
        for layer, lazy in list(self.on_demand):
            if layer not in self.viewer.layers:
                lazy.stop()
                self.on_demand.remove((layer, lazy))
        if not self.on_demand:
            self._poll.stop()
        self._on_resolution()

    def _on_resolution(self, *_: Any) -> None:
        """Warn, before Run, when the level is not the one the weights were trained at."""
        self.resolution_warning = self._levels.warn(
            slide_layer(self.viewer),
            self._detector.currentText(),
            self._weights.text().strip() or None,
            "The slide level to run at: its µm per pixel and size",
        )

    def _on_poll(self) -> None:
        """Redraw background heatmaps as their blocks finish; say what is left."""
        waiting = 0
        for layer, lazy in self.on_demand:
            if lazy.error is not None:
                self._notify(f"{layer.name}: {lazy.error}")
                lazy.error = None
            if lazy.ready != layer.metadata.get("cpadv_ready"):
                layer.metadata["cpadv_ready"] = lazy.ready
                layer.refresh()
            waiting += lazy.waiting
        if self.on_demand:
            self._status.setText(
                f"computing as you pan: {waiting} blocks waiting" if waiting else "up to date"
            )

    def _on_browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Detector weights", "", "Weights (*.safetensors)"
        )
        if path:
            self._weights.setText(path)

    def slide_layer(self) -> Any:
        return slide_layer(self.viewer)

    def _sync(self) -> None:
        self.model.detector = self._detector.currentText()
        self.model.weights = self._weights.text().strip() or None
        self.model.scope = SCOPES[self._scope.currentIndex()]
        self.model.level = self._levels.level()

    def _box(self, layer: Any) -> tuple[float, float, float, float] | None:
        return box(self.viewer, layer, self.model.scope)  # a rectangle: the last drawn

    def _on_removed(self, event: Any) -> None:
        """Removing the slide under a run stops the run, with a message."""
        running = self.worker is not None and self.worker.is_running
        if running and same_layer(event.value, self._running_on):
            self.worker.quit()
            self._notify("the slide was closed: the detection is stopped")

    def _on_run(self) -> None:
        from napari_cpadv.slide import open_slide

        self._sync()
        layer = self.slide_layer()
        if layer is None:
            self._notify("open a slide first")
            return
        if self.model.scope == "pan":
            self._add_on_demand(layer)
            return
        box = None
        if self.model.scope != "tissue":
            box = self._box(layer)
            if box is None:
                self._notify("press Draw region and draw a rectangle on the slide first")
                return
        try:
            slide = open_slide(layer.metadata["cpadv_slide_path"])
        except (CpadvError, ValueError, OSError) as exc:
            self._notify(str(exc))
            return
        annotations = ground_truth(self.viewer)
        model = replace(self.model)  # what this run does, whatever the controls do next

        def scored() -> Any:  # the weights, the AUC-PR and the layer data off the GUI thread
            hm = yield from model.work(slide, box=box, detector=model.load())
            score = None if annotations is None else score_against(hm, slide, annotations)
            return hm, score, self._layer_data(hm, slide)

        self._run.setEnabled(False)
        self._running_on = layer
        self._status.setText(f"running {self.model.detector} at level {self.model.level}…")
        self.worker = start(
            scored,
            bar=self._progress,
            cancel=self._cancel,
            on_done=lambda result: self._on_done(result[0], result[1], result[2], slide, layer),
            on_error=self._on_error,
            on_finish=self._on_finish,
            label=f"detect ({self.model.detector}, level {self.model.level})",
        )

    def _add_on_demand(self, layer: Any) -> None:
        """A heatmap layer whose blocks are computed as napari shows them."""
        from napari_cpadv._heatmap_layers import heatmap_layer_data
        from napari_cpadv.slide import open_slide

        try:
            slide = open_slide(layer.metadata["cpadv_slide_path"])
            lazy = self.model.on_demand(slide, cache=self.cache)
        except (CpadvError, ValueError, OSError) as exc:
            self._notify(str(exc))
            return
        lazy.start()  # reads answer from the cache; blocks are computed behind
        data, kwargs, _ = heatmap_layer_data(
            lazy.levels(),
            cell_level0=lazy.detector.cell * float(slide.downsamples[self.model.level]),
            mpp=slide.mpp,
            name=f"{self.model.detector} heatmap (level {self.model.level}, on demand)",
            metadata={"cache": str(lazy.path)},
        )
        layer = self._place_heatmap(data, kwargs)
        self.on_demand.append((layer, lazy))
        self._poll.start()
        self._status.setText(f"computing blocks as you pan; cached in {lazy.path}")

    @staticmethod
    def _layer_data(hm: Any, slide: Any) -> Any:
        from napari_cpadv._heatmap_layers import heatmap_layer_data

        data, kwargs, kind = heatmap_layer_data(
            hm.probabilities(),
            cell_level0=hm.cell * hm.downsample,
            origin=hm.origin,
            mpp=slide.mpp,
            name=f"{hm.attrs.get('detector')} heatmap (level {hm.level})",
            metadata={"slide": str(slide.path), "level": hm.level},
        )
        return data, kwargs, kind

    def _on_done(self, hm: Any, score: Any, layer_data: Any, slide: Any, layer: Any) -> None:
        if not still_open(self.viewer, layer):  # closed as the run ended: no heatmap over nothing
            self._notify("the slide was closed: its heatmap is not added")
            return
        data, kwargs, _ = layer_data
        self._place_heatmap(data, kwargs)
        self.last_score = score
        text = f"done: {heatmap_words(hm, slide)}"
        if self.last_score is not None:
            s = self.last_score
            text += f"; AUC-PR {s['aucpr']:.3f} (null {s['null_aucpr']:.3f}) against ground truth"
        self._status.setText(text)

    def _place_heatmap(self, data: Any, kwargs: dict[str, Any]) -> Any:
        """The heatmap as a layer: a rerun's replaces the layer of the same detector, level
        and slide where it stood (no "[1]" copies), and the ground truth stays on top."""
        from napari.layers import Image

        layers = self.viewer.layers
        slide = kwargs.get("metadata", {}).get("slide")
        old = [
            la for la in layers
            if la.name == kwargs["name"] and la.metadata.get("slide") == slide
        ]  # fmt: skip
        at = layers.index(old[0]) if old else len(layers)
        for la in old:
            layers.remove(la)
        layer = show_scale(Image(data, **kwargs))
        layers.insert(min(at, len(layers)), layer)
        truths = [la for la in layers if la.name.startswith("ground truth")]
        for truth in truths:
            layers.move(layers.index(truth), len(layers))
        layers.selection.active = layer
        return layer

    def _on_error(self, exc: Exception) -> None:
        self._notify(str(exc))

    def _on_finish(self) -> None:
        self._run.setEnabled(True)
        self._running_on = None
        stopped = self.worker is not None and self.worker.abort_requested
        if stopped and "closed" not in self._status.text():
            self._status.setText("cancelled")

    def _notify(self, message: str) -> None:
        notify(self._status, message)


def heatmap_words(hm: Any, slide: Any) -> str:
    """What a heatmap covers, in words: ``"98 x 175 cells of 4 x 4 pixels of level 1
    (1.9 µm a side)"``, or patches for a classifier."""
    rows, cols = hm.logits.shape
    side = hm.cell * hm.downsample * (slide.mpp[0] if slide.mpp else 1.0)
    unit = "µm" if slide.mpp else "level-0 pixels"
    what = "patches" if hm.cell >= 64 else "cells"
    return (
        f"{rows} x {cols} {what} of {hm.cell} x {hm.cell} pixels of level {hm.level} "
        f"({side:.3g} {unit} a side)"
    )
