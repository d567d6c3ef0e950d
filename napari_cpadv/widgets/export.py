"""The Export dock: ground truth and thresholded heatmaps as QuPath GeoJSON or ASAP XML,
heatmaps as label TIFF masks, the adversarial region as a lossless TIFF, the metrics as
CSV or JSON, and the session file. Each button asks for a file name; the ``export_*``
methods do the work (and are what the tests and the demo call)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QWidget,
)

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


class ExportWidget(QWidget):
    """Exports of the open layers and of the Attack dock's last run."""

    def __init__(self, viewer: napari.viewer.Viewer, attack: Any = None) -> None:
        super().__init__()
        self.viewer = viewer
        self.attack = attack  # an AttackWidget, for the last run and the session
        self._heatmap = QComboBox()
        self._threshold = QDoubleSpinBox()
        self._threshold.setRange(0, 1)
        self._threshold.setSingleStep(0.05)
        self._threshold.setValue(0.5)
        self._status = QLabel("")
        self._status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("heatmap", self._heatmap)
        form.addRow("threshold", self._threshold)
        self._levels = LevelPicker(2)  # the slide's levels, each with its µm per pixel
        self._level = self._levels.combo
        form.addRow("mask level", self._level)
        tooltips(
            {
                self._heatmap: "The heatmap layer to export",
                self._threshold: "Tumour probability at or above which a cell is tumour",
                self._level: "The slide level the mask TIFFs are written at (default 2)",
            }
        )
        layout = scrolled_layout(self)
        layout.addLayout(form)
        for label, filt, fn in (
            ("Ground truth…", "GeoJSON (*.geojson);;ASAP XML (*.xml)", self.export_truth),
            ("Ground truth as mask TIFF…", "TIFF (*.tif)", self.export_truth_mask),
            ("Heatmap as annotations…", "GeoJSON (*.geojson);;ASAP XML (*.xml)",
             self.export_heatmap),
            ("Heatmap as mask TIFF…", "TIFF (*.tif)", self.export_mask),
            ("Adversarial region TIFF…", "TIFF (*.tif)", self.export_region),
            ("Metrics…", "CSV (*.csv);;JSON (*.json)", self.export_metrics),
            ("Session file…", "napari-cpadv session (*.cpadv.json)", self.export_session),
        ):  # fmt: skip
            button = QPushButton(label)
            button.setToolTip(EXPORT_TIPS[label])
            button.clicked.connect(lambda _=False, f=filt, g=fn: self._ask(f, g))
            layout.addWidget(button)
        layout.addWidget(self._status)
        viewer.layers.events.inserted.connect(self._refresh)
        viewer.layers.events.inserted.connect(self._on_slides)
        viewer.layers.events.removed.connect(self._on_slides)
        self._on_slides()
        viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _on_slides(self, *_: Any) -> None:
        from napari_cpadv.widgets._view import slide_layer

        self._levels.set_slide(slide_layer(self.viewer))

    def _refresh(self, *_: Any) -> None:
        names = [la.name for la in self.viewer.layers if la.metadata.get("cpadv_heatmap")]
        current = self._heatmap.currentText()
        self._heatmap.clear()
        self._heatmap.addItems(names)
        if current in names:
            self._heatmap.setCurrentText(current)

    def _ask(self, filt: str, fn: Any) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export", "", filt)
        if not path:
            return
        try:
            out = fn(path)
        except (ValueError, OSError) as exc:
            notify(self._status, str(exc))
            return
        self._status.setText(f"wrote {out}")

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
        from napari_cpadv.workbench.export import write_annotation_mask

        annotations = ground_truth(self.viewer)
        if annotations is None:
            raise ValueError("no 'ground truth' layer is open")
        return write_annotation_mask(self._slide(), annotations, self._levels.level(), path).path

    def export_heatmap(self, path: str | Path) -> Path:
        from napari_cpadv.annotations import write_annotations
        from napari_cpadv.workbench.export import grid_annotations

        values, s, origin = self._heatmap_values()
        anns = grid_annotations(values, s, origin, threshold=self._threshold.value())
        return write_annotations(anns, path)

    def export_mask(self, path: str | Path) -> Path:
        from napari_cpadv.annotations.masks import write_mask_tiff

        values, s, _ = self._heatmap_values()
        mask = (np.nan_to_num(values, nan=0.0) >= self._threshold.value()).astype(np.uint8)
        return write_mask_tiff(mask, path, mpp=self._slide().mpp, downsample=(s, s))

    def _attack(self) -> Any:
        from napari_cpadv.widgets._view import find_dock
        from napari_cpadv.widgets.attack import AttackWidget

        return self.attack if self.attack is not None else find_dock(self.viewer, AttackWidget)

    def _outcome(self) -> Any:
        attack = self._attack()
        if attack is None or attack.outcome is None:
            raise ValueError("run an attack first")
        return attack.outcome

    def export_region(self, path: str | Path) -> Path:
        from napari_cpadv.slide.delta import open_delta
        from napari_cpadv.workbench.export import write_region_tiff

        out = self._outcome()
        return write_region_tiff(open_delta(out.delta), out.report["level"], out.level_box, path)

    def export_metrics(self, path: str | Path) -> Path:
        from napari_cpadv.workbench.export import write_metrics

        return write_metrics(self._outcome().metrics, path)

    def export_session(self, path: str | Path) -> Path:
        attack = self._attack()
        if attack is None:
            raise ValueError("run an attack first")
        p = str(path)
        if not p.endswith(".cpadv.json"):
            p = p.removesuffix(".json") + ".cpadv.json"
        return Path(attack.save_session(p))
