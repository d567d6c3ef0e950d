"""The Detect dock widget: run a detector over the view, a drawn rectangle or all tissue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_cpadv.errors import CpadvError
from napari_cpadv.inference.detect import SCOPES, DetectModel, score_against
from napari_cpadv.widgets._view import (
    REGION_LAYER,
    RunControls,
    box,
    ground_truth,
    notify,
    slide_layer,
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
        self._level = QSpinBox()
        self._level.setRange(0, 16)
        self._level.setValue(self.model.level)
        self._layout()
        self._browse.clicked.connect(self._on_browse)
        self._run.clicked.connect(self._on_run)

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("detector", self._detector)
        weights = QHBoxLayout()
        weights.addWidget(self._weights)
        weights.addWidget(self._browse)
        form.addRow("weights", weights)
        form.addRow("scope", self._scope)
        form.addRow("level", self._level)
        buttons = QHBoxLayout()
        buttons.addWidget(self._run)
        buttons.addWidget(self._cancel)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self._progress)
        layout.addWidget(self._status)
        layout.addStretch()

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
        self.model.level = self._level.value()

    def _box(self, layer: Any) -> tuple[float, float, float, float] | None:
        return box(self.viewer, layer, self.model.scope)

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
                self._notify(f"draw a rectangle in a Shapes layer named {REGION_LAYER!r} first")
                return
        try:
            slide = open_slide(layer.metadata["cpadv_slide_path"])
            detector = self.model.load()
            work = self.model.work(slide, box=box, detector=detector)
        except (CpadvError, ValueError, OSError) as exc:
            self._notify(str(exc))
            return
        self._run.setEnabled(False)
        self._status.setText(f"running {self.model.detector} at level {self.model.level}…")
        self.worker = start(
            lambda: work,
            bar=self._progress,
            cancel=self._cancel,
            on_done=lambda hm: self._on_done(hm, slide),
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
        data, kwargs, _ = heatmap_layer_data(
            lazy.levels(),
            cell_level0=lazy.detector.cell * float(slide.downsamples[self.model.level]),
            mpp=slide.mpp,
            name=f"{self.model.detector} heatmap (level {self.model.level}, on demand)",
            metadata={"cache": str(lazy.path)},
        )
        self.viewer.add_image(data, **kwargs)
        self._status.setText(f"computing blocks as you pan; cached in {lazy.path}")

    def _on_done(self, hm: Any, slide: Any) -> None:
        from napari_cpadv._heatmap_layers import heatmap_layer_data

        data, kwargs, _ = heatmap_layer_data(
            hm.probabilities(),
            cell_level0=hm.cell * hm.downsample,
            origin=hm.origin,
            mpp=slide.mpp,
            name=f"{hm.attrs.get('detector')} heatmap (level {hm.level})",
            metadata={"cpadv_slide_path": None, "slide": str(slide.path), "level": hm.level},
        )
        kwargs["metadata"].pop("cpadv_slide_path")
        self.viewer.add_image(data, **kwargs)
        self.last_score = self._score(hm, slide)
        text = f"done: {hm.logits.size} cells"
        if self.last_score is not None:
            s = self.last_score
            text += f"; AUC-PR {s['aucpr']:.3f} (null {s['null_aucpr']:.3f}) against ground truth"
        self._status.setText(text)

    def _score(self, hm: Any, slide: Any) -> dict[str, Any] | None:
        annotations = ground_truth(self.viewer)
        return None if annotations is None else score_against(hm, slide, annotations)

    def _on_error(self, exc: Exception) -> None:
        self._notify(str(exc))

    def _on_finish(self) -> None:
        self._run.setEnabled(True)
        if self.worker is not None and self.worker.abort_requested:
            self._status.setText("cancelled")

    def _notify(self, message: str) -> None:
        notify(self._status, message)
