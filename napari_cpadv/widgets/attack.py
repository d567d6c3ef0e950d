"""The Attack dock: attack the detectors from the viewer, compare, measure.

Target detector, attack and its parameters, region (view, drawn rectangle, the selected
shapes of the region layer, all tissue),
the device in use; Run with a progress bar and Cancel (stops within one step). Results
arrive as layers with the slide's scale: the adversarial slide, the perturbation
(amplified, diverging colormap centred on 0) and the heatmaps before and after of every
ticked detector; the metrics table can be copied or saved. Flip (key F), Blink and Side
by side compare the original and the adversarial slide; Saliency adds gradient saliency
before and after. Each run is kept in the results folder as it completes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_cpadv.errors import CpadvError
from napari_cpadv.models.detector import NAMES
from napari_cpadv.widgets._view import RunControls, box, boxes, ground_truth, notify, slide_layer
from napari_cpadv.widgets._work import start
from napari_cpadv.widgets.compare import FLIP_KEY, Comparison
from napari_cpadv.workbench.attack import METRIC_COLUMNS, AttackModel, metrics_csv

if TYPE_CHECKING:
    import napari

ATTACKS = ("fgsm", "pgd", "latent", "universal", "noise")
NORMS = ("l2", "linf", "l1", "l0", "none")
REGIONS = ("view", "rectangle", "selected tiles", "tissue")


class AttackWidget(QWidget):
    """The Attack dock (see the module docstring)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from napari_cpadv.device import pick_device

        self.viewer = viewer
        self.model = AttackModel()
        self.worker: Any = None
        self.outcome: Any = None
        self.run_folder: str | None = None  # the current run's folder, once it exists
        self.records: list[Any] = []
        self.compare = Comparison(viewer)
        controls = RunControls()
        self._detector, self._weights = controls.detector, controls.weights
        self._run, self._cancel = controls.run, controls.cancel
        self._progress, self._status = controls.progress, controls.status
        self._attack = QComboBox()
        self._attack.addItems(ATTACKS)
        self._norm = QComboBox()
        self._norm.addItems(NORMS)
        self._budget = QDoubleSpinBox()
        self._budget.setRange(-1e9, 1e9)  # a wrong sign is refused with a message, not hidden
        self._budget.setDecimals(4)
        self._budget.setValue(self.model.budget)
        self._unit = QComboBox()
        self._unit.addItems(("total", "per_pixel"))
        self._steps = QSpinBox()
        self._steps.setRange(0, 100_000)
        self._steps.setValue(self.model.steps)
        self._step_size = QDoubleSpinBox()
        self._step_size.setRange(0, 1e6)
        self._step_size.setDecimals(5)
        self._step_size.setSpecialValueText("default")
        self._restarts = QSpinBox()
        self._restarts.setRange(1, 1000)
        self._seed = QSpinBox()
        self._seed.setRange(0, 2**31 - 1)
        self._region = QComboBox()
        self._region.addItems(REGIONS)
        self._level = QSpinBox()
        self._level.setRange(0, 16)
        self._level.setValue(self.model.level)
        self._tile = QSpinBox()
        self._tile.setRange(8, 4096)
        self._tile.setValue(self.model.tile)
        self._heatmaps = {name: QCheckBox(name) for name in NAMES if name != "resnet18"}
        self._results = QLineEdit()
        self._results.setPlaceholderText("SLIDE.cpadv next to the slide")
        self._device = QLabel(f"device: {pick_device(None)}")
        self._table = QTableWidget(len(METRIC_COLUMNS) - 1, 0)
        self._table.setVerticalHeaderLabels(list(METRIC_COLUMNS[1:]))
        self._copy = QPushButton("Copy")
        self._save = QPushButton("Save CSV…")
        self._flip = QPushButton(f"Flip ({FLIP_KEY})")
        self._blink = QCheckBox("Blink")
        self._rate = QDoubleSpinBox()
        self._rate.setRange(0.2, 20)
        self._rate.setValue(2.0)
        self._rate.setSuffix(" Hz")
        self._grid = QCheckBox("Side by side")
        self._saliency = QPushButton("Saliency")
        self._layout()
        self._run.clicked.connect(self._on_run)
        self._copy.clicked.connect(self._on_copy)
        self._save.clicked.connect(self._on_save)
        self._flip.clicked.connect(self._on_flip)
        self._blink.toggled.connect(lambda on: self.compare.blink(on, self._rate.value()))
        self._grid.toggled.connect(self.compare.side_by_side)
        self._saliency.clicked.connect(self.add_saliency)

    def _on_copy(self) -> None:
        self.copy_metrics()

    def _on_flip(self) -> None:
        self.compare.flip()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("detector", self._detector)
        form.addRow("weights", self._weights)
        form.addRow("attack", self._attack)
        form.addRow("norm", self._norm)
        budget = QHBoxLayout()
        budget.addWidget(self._budget)
        budget.addWidget(self._unit)
        form.addRow("budget", budget)
        form.addRow("steps", self._steps)
        form.addRow("step size", self._step_size)
        form.addRow("restarts", self._restarts)
        form.addRow("seed", self._seed)
        form.addRow("region", self._region)
        form.addRow("level", self._level)
        form.addRow("tile", self._tile)
        ticks = QHBoxLayout()
        for cb in self._heatmaps.values():
            ticks.addWidget(cb)
        form.addRow("heatmaps", ticks)
        form.addRow("results", self._results)
        buttons = QHBoxLayout()
        buttons.addWidget(self._run)
        buttons.addWidget(self._cancel)
        table_buttons = QHBoxLayout()
        table_buttons.addWidget(self._copy)
        table_buttons.addWidget(self._save)
        compare = QGroupBox("compare")
        row = QHBoxLayout(compare)
        for w in (self._flip, self._blink, self._rate, self._grid, self._saliency):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self._device)
        layout.addLayout(buttons)
        layout.addWidget(self._progress)
        layout.addWidget(self._status)
        layout.addWidget(compare)
        layout.addWidget(self._table)
        layout.addLayout(table_buttons)

    def _sync(self) -> None:
        m = self.model
        m.detector = self._detector.currentText()
        m.weights = self._weights.text().strip() or None
        m.attack = self._attack.currentText()
        m.norm = self._norm.currentText()
        m.budget = self._budget.value()
        m.unit = self._unit.currentText()
        m.steps = self._steps.value()
        m.step_size = self._step_size.value() or None
        m.restarts = self._restarts.value()
        m.seed = self._seed.value()
        m.level = self._level.value()
        m.tile = self._tile.value()

    def _on_run(self) -> None:
        from napari_cpadv.models.weights import resolve
        from napari_cpadv.workbench.attack import results_folder

        self._sync()
        try:
            self.model.spec()
        except ValueError as exc:
            notify(self._status, str(exc))
            return
        layer = slide_layer(self.viewer)
        if layer is None:
            notify(self._status, "open a slide first")
            return
        scope = self._region.currentText()
        slide_path = layer.metadata["cpadv_slide_path"]
        region: Any
        if scope == "tissue":
            rows, cols = layer.data[0].shape[:2]
            region = (0.0, 0.0, float(rows), float(cols))
        elif scope == "selected tiles":
            region = boxes(self.viewer, layer)
            if not region:
                notify(self._status, "draw tiles in a Shapes layer named 'detect region'")
                return
        else:
            region = box(self.viewer, layer, scope)
            if region is None:
                notify(self._status, "draw a rectangle in a Shapes layer named 'detect region'")
                return
        try:
            detector = self.model.load()
            detectors = {self.model.detector: detector}
            for name, cb in self._heatmaps.items():
                if cb.isChecked() and name not in detectors:
                    detectors[name] = resolve(name, None)
            results = self._results.text().strip() or results_folder(slide_path)
            work = self.model.work(
                slide_path,
                box=region,
                results=results,
                annotations=ground_truth(self.viewer),
                detectors=detectors,
                detector=detector,
                tissue_only=scope == "tissue",
            )
        except (CpadvError, ValueError, OSError) as exc:
            notify(self._status, str(exc))
            return
        self._run.setEnabled(False)
        self._status.setText(
            f"attacking {self.model.detector} with {self.model.attack}; results go to {results}"
        )
        self.worker = start(
            lambda: work,
            bar=self._progress,
            cancel=self._cancel,
            on_done=lambda out: self._on_done(out, layer),
            on_error=lambda exc: notify(self._status, str(exc)),
            on_finish=self._on_finish,
            label=f"attack {self.model.detector} ({self.model.attack})",
        )
        self.run_folder = None
        self.worker.yielded.connect(self._on_progress)

    def _on_progress(self, p: Any) -> None:
        if "run" in p.payload:
            self.run_folder = p.payload["run"]
            self._status.setText(
                f"attacking {self.model.detector} with {self.model.attack}; "
                f"results in {self.run_folder}"
            )

    def _on_finish(self) -> None:
        self._run.setEnabled(True)
        if self.worker is not None and self.worker.abort_requested:
            where = self.run_folder or "the results folder"
            self._status.setText(f"cancelled: the tiles done so far are in {where}")

    def _on_done(self, outcome: Any, original: Any) -> None:
        from napari_cpadv._heatmap_layers import heatmap_layer_data, perturbation_layer_data
        from napari_cpadv._reader import read_delta_slide
        from napari_cpadv.slide import open_slide
        from napari_cpadv.workbench.session import LayerRecord

        self.outcome = outcome
        slide = open_slide(original.metadata["cpadv_slide_path"])
        r = outcome.report
        index = list(self.viewer.layers).index(original) + 1
        data, kwargs, _ = read_delta_slide(str(outcome.delta))[0]
        kwargs["name"] = f"adversarial ({r['detector']}, {r['attack']})"
        kwargs["metadata"]["cpadv_adversarial"] = True
        adv_layer = self.viewer.add_image(data, **kwargs)
        self.viewer.layers.move(list(self.viewer.layers).index(adv_layer), index)
        ds = float(slide.downsamples[r["level"]])
        data, kwargs, _ = perturbation_layer_data(
            outcome.perturbation(),
            level_origin=outcome.level_box[:2],
            downsample=ds,
            mpp=slide.mpp,
        )
        self.viewer.add_image(data, **kwargs)
        for name, (before, after) in outcome.heatmaps.items():
            for when, hm in (("before", before), ("after", after)):
                data, kwargs, _ = heatmap_layer_data(
                    hm.probabilities(),
                    cell_level0=hm.cell * hm.downsample,
                    origin=hm.origin,
                    mpp=slide.mpp,
                    name=f"{name} heatmap {when}",
                )
                self.viewer.add_image(data, **kwargs)
        self.compare.set_pair(original, adv_layer)
        if not any(rec.kind == "slide" for rec in self.records):
            self.records.append(LayerRecord("slide", original.name, str(slide.path)))
        self.records += outcome.records()
        self.show_metrics(outcome.metrics)
        from napari_cpadv.widgets._view import find_dock
        from napari_cpadv.widgets.plots import PlotsWidget

        plots = find_dock(self.viewer, PlotsWidget)
        if plots is not None:
            plots.set_report(outcome.report)
        self._status.setText(
            f"done: {r['tiles']} tiles, success {r['success_rate']:.2f}; saved in {outcome.folder}"
        )

    def show_metrics(self, rows: list[dict[str, Any]]) -> None:
        self._table.setColumnCount(len(rows))
        self._table.setHorizontalHeaderLabels([r["detector"] for r in rows])
        for j, row in enumerate(rows):
            for i, key in enumerate(METRIC_COLUMNS[1:]):
                v = row.get(key)
                text = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
                self._table.setItem(i, j, QTableWidgetItem(text))

    def copy_metrics(self) -> str:
        text = metrics_csv(self.outcome.metrics if self.outcome else [])
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(text)
        return text

    def _on_save(self) -> None:
        from napari_cpadv.workbench.export import write_metrics

        if self.outcome is None:
            notify(self._status, "run an attack first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Metrics", "", "CSV (*.csv);;JSON (*.json)")
        if path:
            write_metrics(self.outcome.metrics, path)

    def add_saliency(self) -> None:
        """Saliency of the attacked detector before and after, on the attacked tiles."""
        from napari_cpadv._heatmap_layers import saliency_layer_data
        from napari_cpadv.slide import open_slide
        from napari_cpadv.slide.delta import open_delta
        from napari_cpadv.workbench.attack import saliency_pair

        if self.outcome is None or not self.compare.ready():
            notify(self._status, "run an attack first")
            return
        r = self.outcome.report
        slide = open_slide(r["slide"])
        adversarial = open_delta(self.outcome.delta)
        det = self.model.load() if self.model.detector == r["detector"] else None
        if det is None:
            from napari_cpadv.models.weights import resolve

            det = resolve(r["detector"], None)
        before, after = saliency_pair(det, slide, adversarial, r["level"], self.outcome.level_box)
        limit = float(max(before.max(), after.max()))
        for when, values in (("before", before), ("after", after)):
            data, kwargs, _ = saliency_layer_data(
                values,
                level_origin=self.outcome.level_box[:2],
                downsample=float(slide.downsamples[r["level"]]),
                mpp=slide.mpp,
                name=f"{r['detector']} saliency {when}",
                limit=limit,
            )
            self.viewer.add_image(data, **kwargs)

    def save_session(self, path: str | Path) -> Path:
        """Write the session file of what this dock added (``*.cpadv.json``)."""
        from napari_cpadv.workbench.session import write_session

        slides = [rec for rec in self.records if rec.kind == "slide"]
        if not slides:
            raise ValueError("nothing to save yet: run an attack first")
        return write_session(path, slides[0].path, self.records)
