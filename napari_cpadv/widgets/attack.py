"""The Attack dock: attack the detectors from the viewer, compare, measure.

Target detector, attack and its parameters (the budget's unit in words, beside it live the
budget in the other unit with the PSNR it allows), where (a drawn region, selected shapes,
the view's or all tissue, with a preview of the tiles and the run's time), the level (with
its µm per pixel) and tile; Run with one bar and its time left, and Cancel (within one
step). Results arrive as the run's layers: the adversarial slide and the attacked detector's
heatmap after are shown, the perturbation and the other heatmaps hidden, the ground truth's
outline on top; a re-run of the same detector and attack replaces its layers; the metrics
table copies or saves. Flip (F), Blink, Side by side and Saliency compare the two slides.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QWidget,
)

from napari_cpadv.errors import CpadvError
from napari_cpadv.experiments.metrics_table import METRIC_COLUMNS, METRIC_LABELS
from napari_cpadv.widgets._attack_form import AttackForm
from napari_cpadv.widgets._collector import watch
from napari_cpadv.widgets._estimate import Estimator
from napari_cpadv.widgets._outlines import tile_outlines
from napari_cpadv.widgets._view import (
    LevelPicker,
    RunControls,
    draw_region,
    grid_group,
    ground_truth,
    notify,
    pinned_layout,
    same_layer,
    scope_region,
    scrolled_layout,
    shapes_layers,
    slide_layer,
    tooltips,
)
from napari_cpadv.widgets._work import start
from napari_cpadv.widgets.attack_results import AttackResults, with_layer_data
from napari_cpadv.widgets.compare import FLIP_KEY, Comparison
from napari_cpadv.workbench.attack import HEATMAP_DETECTORS, AttackModel
from napari_cpadv.workbench.state import shared

if TYPE_CHECKING:
    import napari

REGIONS = ("drawn region", "selected shapes", "view", "tissue")
PREVIEW_LAYER = "tiles to attack"


class AttackWidget(AttackResults, QWidget):
    """The Attack dock (see the module docstring)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from napari_cpadv.device import pick_device

        self.viewer = viewer
        watch(self, viewer)  # full garbage collections kept short (_collector)
        self.model = AttackModel()
        self.worker: Any = None
        self.state = shared(viewer)  # the last run and its layers' records, for every dock
        self.run_folder: str | None = None  # the current run's folder, once it exists
        self.run_layers: dict[str, list[Any]] = {}  # "detector attack" to its layers
        self.compare = Comparison(viewer)
        self._running_on: Any = None  # the slide layer the current run attacks
        self.adding = False  # a finished run's layers are being added (Run waits)
        self.planned = ""  # what Preview found, in words
        self.estimate_s: float | None = None  # Preview's estimate of Run's seconds
        self.estimator = Estimator(self)
        controls = RunControls()
        self._detector, self._weights = controls.detector, controls.weights
        self._run, self._cancel = controls.run, controls.cancel
        self._progress, self._status = controls.progress, controls.status
        self._tile = QSpinBox()
        self._tile.setRange(8, 4096)
        self._tile.setValue(self.model.tile)
        self._tile.setSuffix(" px")
        self.form = AttackForm(self.model, self._detector, self._weights, self._tile.value)
        f = self.form
        self._attack, self._norm, self._budget, self._unit = f.attack, f.norm, f.budget, f.unit
        self._unit_label, self._meaning, self._steps = f.unit_label, f.meaning, f.steps
        self._step_size, self._restarts, self._seed = f.step_size, f.restarts, f.seed
        self._region = QComboBox()
        self._region.addItems(REGIONS)
        self._region.setCurrentText("view")
        self._shapes = QComboBox()
        self._draw = QPushButton("Draw region")
        self._preview = QPushButton("Preview tiles")
        self._levels = LevelPicker(self.model.level)
        self._level = self._levels.combo
        self._heatmaps = {name: QCheckBox(name) for name in HEATMAP_DETECTORS}
        self._results = QLineEdit()
        self._results.setPlaceholderText("SLIDE.cpadv next to the slide")
        self._device = QLabel("device: (torch loading)")
        self.form.when_found(lambda: self._device.setText(f"device: {pick_device(None)}"))
        self._table = QTableWidget(len(METRIC_COLUMNS) - 1, 0)
        self._table.setVerticalHeaderLabels([METRIC_LABELS[k] for k in METRIC_COLUMNS[1:]])
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
        self._tooltips()
        self._connect()
        self._on_layers()
        self._on_budget()

    def _connect(self) -> None:
        self._run.clicked.connect(self._on_run)
        self._copy.clicked.connect(self._on_copy)
        self._save.clicked.connect(self._on_save)
        self._flip.clicked.connect(self._on_flip)
        self._blink.toggled.connect(lambda on: self.compare.blink(on, self._rate.value()))
        self._grid.toggled.connect(self.compare.side_by_side)
        self._saliency.clicked.connect(self._on_saliency)
        self._draw.clicked.connect(self._on_draw)
        self._preview.clicked.connect(self._on_preview)
        self._tile.valueChanged.connect(self._on_budget)
        for changed in (self._detector.currentTextChanged, self._weights.textChanged):
            changed.connect(self._on_resolution)  # (weights: dae-he on real tissue)
        self._level.currentIndexChanged.connect(self._on_resolution)
        self.viewer.layers.events.inserted.connect(self._on_layers)
        self.viewer.layers.events.removed.connect(self._on_layers)
        self.viewer.layers.events.removed.connect(self._on_removed)

    def _on_copy(self) -> None:
        self.copy_metrics()

    def _on_flip(self) -> None:
        self.compare.flip()

    def _on_draw(self) -> None:
        draw_region(self.viewer)
        self._region.setCurrentText("drawn region")

    def _layout(self) -> None:
        where = QFormLayout()
        where.addRow("region", self._region)
        shapes = QHBoxLayout()
        shapes.addWidget(self._shapes, 1)
        shapes.addWidget(self._draw)
        where.addRow("shapes", shapes)
        where.addRow("level", self._level)
        where.addRow("tile", self._tile)
        where.addRow("", self._preview)
        ticks = QHBoxLayout()
        for cb in self._heatmaps.values():
            ticks.addWidget(cb)
        where.addRow("also score", ticks)
        where.addRow("results", self._results)
        buttons = QHBoxLayout()
        buttons.addWidget(self._run)
        buttons.addWidget(self._cancel)
        table_buttons = QHBoxLayout()
        table_buttons.addWidget(self._copy)
        table_buttons.addWidget(self._save)
        two_rows = [[self._flip, self._blink, self._rate], [self._grid, None, self._saliency]]
        compare = grid_group("compare", two_rows)  # type: ignore[arg-type]  # 5 in a row: too wide
        layout = scrolled_layout(self)
        layout.addWidget(self.form)
        group = QGroupBox("where")
        group.setLayout(where)
        layout.addWidget(group)
        layout.addWidget(self._device)
        layout.addWidget(compare)
        self._table.setMinimumHeight(160)
        layout.addWidget(self._table)
        layout.addLayout(table_buttons)
        bar = pinned_layout(self)  # Run in view however tall the form (1366 x 768)
        bar.addLayout(buttons)
        bar.addWidget(self._progress)
        bar.addWidget(self._status)

    def _tooltips(self) -> None:
        tooltips(
            {
                self._region: "drawn region: the last rectangle of the shapes layer; "
                "selected shapes: the selected ones; view: the tiles with tissue in what the "
                "viewer shows; tissue: every tile with tissue on the slide",
                self._shapes: "The Shapes layer the region comes from",
                self._draw: "Draw a rectangle on the slide (a 'detect region' Shapes layer)",
                self._level: "The slide level attacked: its µm per pixel and size",
                self._tile: "Side of each attacked tile, in pixels of the level (default 256; "
                "seed 000's 512 costs four times as much a tile; rounded down to the "
                "detector's multiple)",
                self._preview: "Outline the tiles that Run will attack and estimate how long "
                "the run takes on this machine, before running",
                **{
                    cb: f"Also compute {name}'s heatmaps before and after and score them"
                    for name, cb in self._heatmaps.items()
                },
                self._results: "Folder for the run folders; default: SLIDE.cpadv next to the slide",
                self._run: "Attack, then compute the heatmaps before and after and measure",
                self._cancel: "Stop within one step; the tiles finished are kept",
                self._copy: "Copy the metrics table as CSV",
                self._save: "Save the metrics table as CSV or JSON",
                self._flip: "Show the original or the adversarial slide in place (key F)",
                self._blink: "Alternate the two at the rate beside it",
                self._rate: "Blink rate",
                self._grid: "napari's grid: each layer in its own cell, one camera",
                self._saliency: "Gradient saliency of the attacked detector before and after",
                self._table: "One column per detector; hover a row name for its meaning",
            }
        )

    def _on_layers(self, event: Any = None) -> None:
        """Keep the level choices and the shapes picker in step with the viewer's layers;
        an adversarial slide reopened from a session brings its run's metrics table."""
        added = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        metrics = getattr(added, "metadata", {}).get("cpadv_metrics") if added else None
        if metrics and self.outcome is None:
            self.show_metrics(metrics)
        self._levels.set_slide(slide_layer(self.viewer))
        current = self._shapes.currentText()
        names = [la.name for la in shapes_layers(self.viewer)]
        self._shapes.blockSignals(True)
        self._shapes.clear()
        self._shapes.addItems(names or ["(none: Draw region)"])
        if current in names:
            self._shapes.setCurrentText(current)
        elif "detect region" in names:
            self._shapes.setCurrentText("detect region")
        self._shapes.blockSignals(False)
        self._on_resolution()

    def _on_removed(self, event: Any) -> None:
        """Removing the slide under a run stops the run, with a message."""
        running = self.worker is not None and self.worker.is_running
        if running and same_layer(event.value, self._running_on):
            self.worker.quit()
            notify(self._status, "the slide was closed: the attack is stopped")

    def _on_budget(self, *_: Any) -> None:
        self.form.show_meaning()

    def _on_resolution(self, *_: Any) -> None:
        """Warn, before Run, when the level is not the one the weights were trained at."""
        self.resolution_warning = self._levels.warn(
            slide_layer(self.viewer),
            self._detector.currentText(),
            self._weights.text().strip() or None,
            "The slide level attacked: its µm per pixel and size",
        )

    def _sync(self) -> None:
        m = self.model
        m.detector = self._detector.currentText()
        m.weights = self._weights.text().strip() or None
        self.form.sync(m)
        m.level = self._levels.level()
        m.tile = self._tile.value()

    def region(self, layer: Any) -> Any:
        """The region Run attacks (level-0 box or boxes), or a message saying what is
        missing (``_view.scope_region``)."""
        return scope_region(
            self.viewer, layer, self._region.currentText(), self._shapes.currentText()
        )

    def preview_tiles(self) -> int:
        """Outline the tiles Run would attack (a Shapes layer); returns how many."""
        from napari_cpadv.experiments.regions import planned_tiles
        from napari_cpadv.models.weights import architecture_of

        self._sync()
        layer = slide_layer(self.viewer)
        if layer is None:
            notify(self._status, "open a slide first")
            return 0
        region = self.region(layer)
        if isinstance(region, str):
            notify(self._status, region)
            return 0
        try:
            # the architecture only (its tile multiple): the weights load when Run runs
            detector = architecture_of(self.model.detector, self.model.weights)
            path = layer.metadata["cpadv_slide_path"]
            tiles = planned_tiles(path, self.model.level, self.model.tile, region, detector,
                                  tissue_only=self._tissue_only())  # fmt: skip
        except (CpadvError, ValueError, OSError) as exc:
            notify(self._status, str(exc))
            return 0
        tile_outlines(self.viewer, layer, tiles, PREVIEW_LAYER)
        self.planned = f"{len(tiles)} tiles of level {self.model.level} will be attacked"
        self._status.setText(f"{self.planned}; estimating how long…")
        self._estimate(len(tiles))
        return len(tiles)

    def _tissue_only(self) -> bool:
        return self._region.currentText() in ("view", "tissue")

    def _on_preview(self) -> None:
        self.preview_tiles()

    def _estimate(self, tiles: int) -> None:
        """Say how long Run would take (``widgets._estimate``)."""
        others = [c for n, c in self._heatmaps.items() if n != self.model.detector]
        scored = 1 + sum(c.isChecked() for c in others)
        failed = lambda e: notify(self._status, str(e))  # noqa: E731
        self.estimator.estimate(replace(self.model), tiles, scored, self._said, failed)

    def _said(self, seconds: float, text: str) -> None:
        self.estimate_s = seconds
        self._status.setText(f"{self.planned}: {text}")

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
        region = self.region(layer)
        if isinstance(region, str):
            notify(self._status, region)
            return
        slide_path = layer.metadata["cpadv_slide_path"]
        results = self._results.text().strip() or results_folder(slide_path)
        model = replace(self.model)  # what this run does, whatever the controls do next
        scored = [n for n, cb in self._heatmaps.items() if cb.isChecked() and n != model.detector]
        annotations = ground_truth(self.viewer)
        tissue_only = self._tissue_only()
        meta = dict(layer.metadata)

        def work() -> Any:  # the weights load in the worker too (a quarter of a second)
            detector = model.load()
            detectors = {model.detector: detector, **{n: resolve(n, None) for n in scored}}
            run = model.work(
                slide_path,
                box=region,
                results=results,
                annotations=annotations,
                detectors=detectors,
                detector=detector,
                tissue_only=tissue_only,
            )
            return (yield from with_layer_data(run, meta))

        self._run.setEnabled(False)
        self._running_on = layer
        self.run_folder = None
        self._status.setText(
            f"attacking {self.model.detector} with {self.model.attack}; results go to {results}"
        )
        self.worker = start(
            work,
            bar=self._progress,
            cancel=self._cancel,
            on_done=lambda out: self._on_done(out, layer),
            on_error=lambda exc: notify(self._status, str(exc)),
            on_finish=self._on_finish,
            label=f"attack {self.model.detector} ({self.model.attack})",
        )
        self.worker.yielded.connect(self._on_progress)

    def _on_progress(self, p: Any) -> None:
        if "run" in p.payload:
            self.run_folder = p.payload["run"]
            self._status.setText(
                f"attacking {self.model.detector} with {self.model.attack}; "
                f"results in {self.run_folder}"
            )

    def _on_finish(self) -> None:
        self._run.setEnabled(not self.adding)  # else when the last layer is in
        self._running_on = None
        if self.worker is not None and self.worker.abort_requested:
            where = self.run_folder or "the results folder"
            if "closed" not in self._status.text():
                self._status.setText(f"cancelled: the tiles done so far are in {where}")
