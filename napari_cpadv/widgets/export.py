"""The Export dock: ground truth and thresholded heatmaps as QuPath GeoJSON or ASAP XML,
heatmaps as label TIFF masks, the adversarial region as a lossless TIFF, the metrics as
CSV or JSON, and the session file. Each button asks for a file name; what the export needs
is read from the viewer on the GUI thread (``_job_*``), and the file is written in a thread
worker with a bar and Cancel (rasterising a whole level's ground truth takes seconds). The
``export_*`` methods do the same work here and now (scripts, tests and the demo call them)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from napari_cpadv.widgets._collector import watch
from napari_cpadv.widgets._view import LevelPicker, ground_truth, notify, scrolled_layout, tooltips

if TYPE_CHECKING:
    import napari


EXPORT_TIPS = {
    "Ground truth…": "The ground truth layer as QuPath GeoJSON or ASAP XML",
    "Ground truth as mask TIFF…": "The ground truth rasterised at the mask level, a "
    "pyramidal TIFF QuPath and ASAP open",
    "Heatmap as annotations…": "The heatmap's cells at or above the threshold as polygons",
    "Heatmap as mask TIFF…": "The heatmap thresholded, as a pyramidal TIFF mask",
    "Adversarial region TIFF…": "The attacked region of the adversarial slide as a TIFF",
    "Metrics…": "The last run's metrics table as CSV or JSON",
    "Session file…": "A file that reopens the slide, the ground truth and the run's layers",
}


def _is_selection(event: Any) -> bool:
    """Whether ``event`` is the layer list's selection changing (not a layer added)."""
    return event is not None and getattr(event, "type", "") == "active"


class ExportWidget(QWidget):
    """Exports of the open layers and of the Attack dock's last run."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        from napari_cpadv.workbench.state import shared

        super().__init__()
        self.viewer = viewer
        watch(self, viewer)  # full garbage collections kept short (_collector)
        self.state = shared(viewer)  # the last run and its layers, as the Attack dock left them
        self._heatmap = QComboBox()
        self._threshold = QDoubleSpinBox()
        self._threshold.setRange(0, 1)
        self._threshold.setSingleStep(0.05)
        self._threshold.setValue(0.5)
        self._status = QLabel("")
        self._status.setWordWrap(True)
        self._progress = QProgressBar()
        self._cancel = QPushButton("Cancel")
        self._cancel.setEnabled(False)
        self._cancel.setToolTip("Stop the export; nothing half-written is left")
        self.worker: Any = None
        self._picked: str | None = None  # a heatmap the user chose in this dock
        self._watched: weakref.WeakSet[Any] = weakref.WeakSet()  # heatmaps whose visibility
        # is followed (what is shown on top is what the user looks at)
        form = QFormLayout()
        form.addRow("heatmap", self._heatmap)
        form.addRow("threshold", self._threshold)
        self._levels = LevelPicker(2)  # the slide's levels, each with its µm per pixel
        self._level = self._levels.combo
        form.addRow("mask level", self._level)
        tooltips(
            {
                self._heatmap: "The heatmap layer to export: the one you chose here, else "
                "the selected layer if it is a heatmap, else the top one shown",
                self._threshold: "Tumour probability at or above which a cell is tumour",
                self._level: "The slide level the mask TIFFs are written at (default 2)",
            }
        )
        layout = scrolled_layout(self)
        layout.addLayout(form)
        for label, filt, fn in (
            ("Ground truth…", "GeoJSON (*.geojson);;ASAP XML (*.xml)", self.export_truth),
            ("Ground truth as mask TIFF…", "TIFF (*.tif)", self._job_truth_mask),
            ("Heatmap as annotations…", "GeoJSON (*.geojson);;ASAP XML (*.xml)",
             self._job_heatmap),
            ("Heatmap as mask TIFF…", "TIFF (*.tif)", self._job_mask),
            ("Adversarial region TIFF…", "TIFF (*.tif)", self._job_region),
            ("Metrics…", "CSV (*.csv);;JSON (*.json)", self.export_metrics),
            ("Session file…", "napari-cpadv session (*.cpadv.json)", self.export_session),
        ):  # fmt: skip
            button = QPushButton(label)
            button.setToolTip(EXPORT_TIPS[label])
            button.clicked.connect(lambda _=False, f=filt, g=fn: self._ask(f, g))
            layout.addWidget(button)
        row = QHBoxLayout()
        row.addWidget(self._progress, 1)
        row.addWidget(self._cancel)
        layout.addLayout(row)
        layout.addWidget(self._status)
        layout.addStretch()  # the controls together at the top of a tall (tabbed) dock
        self._follow(viewer)

    def _follow(self, viewer: Any) -> None:
        """Keep the level list and the heatmap offered in step with the viewer."""
        viewer.layers.events.inserted.connect(self._refresh)
        viewer.layers.events.inserted.connect(self._on_slides)
        viewer.layers.events.removed.connect(self._on_slides)
        self._on_slides()
        viewer.layers.events.removed.connect(self._refresh)
        viewer.layers.selection.events.active.connect(self._refresh)
        self._heatmap.activated.connect(
            lambda _: setattr(self, "_picked", self._heatmap.currentText())
        )
        self._refresh()

    def _on_slides(self, *_: Any) -> None:
        from napari_cpadv.widgets._view import slide_layer

        self._levels.set_slide(slide_layer(self.viewer))

    def _refresh(self, event: Any = None) -> None:
        """List the heatmaps; the one chosen is the user's pick from this list while it is
        there, else the one the user looks at: the selected layer if it is a heatmap, else
        the top visible one (after a run, "after" over "before"; after Flip, the other)."""
        heatmaps = [la for la in self.viewer.layers if la.metadata.get("cpadv_heatmap")]
        for la in heatmaps:  # Flip and Blink change what is shown on top
            if la not in self._watched:
                self._watched.add(la)
                la.events.visible.connect(self._refresh)
        names = [la.name for la in heatmaps]
        active = self.viewer.layers.selection.active
        if active is not None and active.name in names and _is_selection(event):
            self._picked = None  # the user selected a heatmap in the layer list
        shown = [la.name for la in heatmaps if la.visible]
        if self._picked in names:
            choice = self._picked
        elif active is not None and active.name in names:
            choice = active.name
        else:
            choice = (shown or names or [""])[-1]
        self._heatmap.blockSignals(True)
        self._heatmap.clear()
        self._heatmap.addItems(names)
        self._heatmap.setCurrentText(choice)
        self._heatmap.blockSignals(False)

    def _ask(self, filt: str, fn: Any) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export", "", filt)
        if path:
            self.export(fn, path)

    def export(self, fn: Callable[[str | Path], Any], path: str | Path) -> Any:
        """Run one export: ``fn(path)`` reads what it needs from the viewer and returns the
        file (a quick export), or a job writing it (``_job_*``), run in a worker. Returns
        the worker, or ``None`` when the export is done or refused."""
        from napari_cpadv.progress import Progress
        from napari_cpadv.widgets._work import start

        try:
            out = fn(path)
        except (ValueError, OSError) as exc:
            notify(self._status, str(exc))
            return None
        if not callable(out):
            self._status.setText(f"wrote {out}")
            return None

        def work() -> Any:
            yield Progress(0, 1, {"phase": "export"})
            return out()

        self._status.setText(f"writing {path}…")
        self.worker = start(
            work,
            bar=self._progress,
            cancel=self._cancel,
            on_done=lambda written: self._status.setText(f"wrote {written}"),
            on_error=lambda exc: notify(self._status, str(exc)),
            label="export",
        )
        return self.worker

    def _slide(self) -> Any:
        from napari_cpadv.slide import open_slide
        from napari_cpadv.widgets._view import slide_layer

        layer = slide_layer(self.viewer)
        if layer is None:
            raise ValueError("open a slide first")
        return open_slide(layer.metadata["cpadv_slide_path"])

    def _heatmap_values(self) -> tuple[np.ndarray, float, tuple[int, int]]:
        name = self._heatmap.currentText()
        if not name or name not in self.viewer.layers:
            raise ValueError("no heatmap layer to export")
        layer = self.viewer.layers[name]
        data = layer.data[0] if layer.multiscale else layer.data
        md = layer.metadata
        return np.asarray(data, np.float32), float(md["cell_level0"]), tuple(md["origin"])

    def export_truth(self, path: str | Path) -> Path:
        from napari_cpadv.annotations import write_annotations

        annotations = ground_truth(self.viewer)
        if annotations is None:
            raise ValueError("no 'ground truth' layer is open")
        return write_annotations(annotations, path)

    def export_truth_mask(self, path: str | Path) -> Path:
        return self._job_truth_mask(path)()

    def _job_truth_mask(self, path: str | Path) -> Callable[[], Path]:
        from napari_cpadv.workbench.export import write_annotation_mask

        annotations = ground_truth(self.viewer)
        if annotations is None:
            raise ValueError("no 'ground truth' layer is open")
        slide, level = self._slide(), self._levels.level()
        return lambda: write_annotation_mask(slide, annotations, level, path).path

    def export_heatmap(self, path: str | Path) -> Path:
        return self._job_heatmap(path)()

    def _job_heatmap(self, path: str | Path) -> Callable[[], Path]:
        from napari_cpadv.annotations import write_annotations
        from napari_cpadv.workbench.export import grid_annotations

        values, s, origin = self._heatmap_values()
        threshold = self._threshold.value()
        return lambda: write_annotations(
            grid_annotations(values, s, origin, threshold=threshold), path
        )

    def export_mask(self, path: str | Path) -> Path:
        return self._job_mask(path)()

    def _job_mask(self, path: str | Path) -> Callable[[], Path]:
        from napari_cpadv.annotations.masks import write_mask_tiff

        values, s, _ = self._heatmap_values()
        mask = (np.nan_to_num(values, nan=0.0) >= self._threshold.value()).astype(np.uint8)
        mpp = self._slide().mpp
        return lambda: write_mask_tiff(mask, path, mpp=mpp, downsample=(s, s))

    def _outcome(self) -> Any:
        if self.state.outcome is None:
            raise ValueError("run an attack first")
        return self.state.outcome

    def export_region(self, path: str | Path) -> Path:
        return self._job_region(path)()

    def _job_region(self, path: str | Path) -> Callable[[], Path]:
        from napari_cpadv.slide.delta import open_delta
        from napari_cpadv.workbench.export import write_region_tiff

        out = self._outcome()
        level, box = out.report["level"], out.level_box
        return lambda: write_region_tiff(open_delta(out.delta), level, box, path)

    def export_metrics(self, path: str | Path) -> Path:
        from napari_cpadv.workbench.export import write_metrics

        return write_metrics(self._outcome().metrics, path)

    def export_session(self, path: str | Path) -> Path:
        from napari_cpadv.widgets.attack_results import truth_record

        p = str(path)
        if not p.endswith(".cpadv.json"):
            p = p.removesuffix(".json") + ".cpadv.json"
        return Path(self.state.save_session(p, truth_record(self.viewer)))
