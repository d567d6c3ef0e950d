"""The Plots dock: PR curves before and after the last attack, success against budget from a
``cpadv sweep`` report, seed 000 Fig. 10 from a ``cpadv transfer`` report; drawn with
matplotlib on a Qt canvas inside napari and saved as PNG or SVG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from napari_cpadv.widgets._collector import watch
from napari_cpadv.widgets._view import scrolled_layout
from napari_cpadv.workbench import plots
from napari_cpadv.workbench.state import shared

if TYPE_CHECKING:
    import napari

KINDS = ("PR curves (last attack)", "success against budget", "damage by condition (Fig. 10)")


class PlotsWidget(QWidget):
    """A figure, what it shows, a report to load, Save."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        watch(self, viewer)  # full garbage collections kept short (_collector)
        self.figure = Figure(figsize=(5, 4))
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(320)  # never collapsed by the docks beside it
        self.reports: dict[str, dict[str, Any]] = {}
        self._kind = QComboBox()
        self._kind.addItems(KINDS)
        self._load = QPushButton("Load report…")
        self._save = QPushButton("Save PNG/SVG…")
        self._status = QLabel("")
        self._status.setWordWrap(True)
        self._kind.setToolTip("Which figure to show")
        self._load.setToolTip("Load a report.json of cpadv attack, sweep or transfer")
        self._save.setToolTip("Save the figure as PNG or SVG")
        buttons = QHBoxLayout()  # under the figure's choice: the three do not fit in a row
        buttons.addWidget(self._load)
        buttons.addWidget(self._save)
        layout = scrolled_layout(self)
        layout.addWidget(self._kind)
        layout.addLayout(buttons)
        layout.addWidget(self.canvas)
        layout.addWidget(self._status)
        self._kind.currentIndexChanged.connect(self.draw)
        self._load.clicked.connect(self._on_load)
        self._save.clicked.connect(self._on_save)
        shared(viewer).connect(self._on_run)  # a finished run's PR curves

    def _on_run(self, state: Any) -> None:
        if state.outcome is not None:
            self.set_report(state.outcome.report)

    def set_report(self, report: dict[str, Any]) -> str:
        """Take a run, sweep or transfer report; returns which plot it feeds and shows it."""
        if "pr_curves" not in report and "delta" in report and "aucpr" in report:
            report = {**report, "pr_curves": plots.attack_pr_curves(report)}  # cpadv attack
        if "pr_curves" in report:
            kind = KINDS[0]
        elif "success_rates" in report:
            kind = KINDS[1]
        elif "detectors" in report and ("aucpr" in report or "success" in report):
            kind = KINDS[2]
        else:
            raise ValueError("not a cpadv attack, sweep or transfer report")
        self.reports[kind] = report
        self._kind.setCurrentText(kind)
        self.draw()
        return kind

    def load(self, path: str | Path) -> str:
        p = Path(path)
        try:
            report = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{p}: cannot be read as JSON ({exc})") from exc
        try:
            return self.set_report(report)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from exc

    def draw(self) -> None:
        kind = self._kind.currentText()
        report = self.reports.get(kind)
        self.figure.clear()
        if report is None:
            self._status.setText("run an attack, or load a sweep.json or transfer.json")
        elif kind == KINDS[0]:
            plots.pr_curves(report["pr_curves"], self.figure)
        elif kind == KINDS[1]:
            plots.success_curve(report, self.figure)
        else:
            plots.damage_bars(report, self.figure)
        self.canvas.draw_idle()

    def save(self, path: str | Path) -> Path:
        return plots.save(self.figure, path)

    def _on_load(self) -> None:
        from napari_cpadv.widgets._view import notify

        path, _ = QFileDialog.getOpenFileName(self, "Report", "", "JSON (*.json)")
        if path:
            try:
                self.load(path)
            except ValueError as exc:
                notify(self._status, str(exc))

    def _on_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Figure", "", "PNG (*.png);;SVG (*.svg)")
        if path:
            self.save(path)
