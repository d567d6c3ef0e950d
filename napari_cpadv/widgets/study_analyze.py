"""The Study analysis dock (the study's owner, with the key): verify and unblind every
reader's log and show the HTML report. The work is ``napari_cpadv.study.analyze``'s, run in
a thread worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QUrl
from qtpy.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QTextEdit,
    QWidget,
)

from napari_cpadv.errors import CpadvError
from napari_cpadv.widgets._collector import watch
from napari_cpadv.widgets._view import folder_row, notify, scrolled_layout, tooltips

if TYPE_CHECKING:
    import napari


class StudyAnalysisWidget(QWidget):
    """Unblind and analyse (the owner, with the key); shows the HTML report."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        watch(self, viewer)  # full garbage collections kept short (_collector)
        self.folder = QLineEdit()
        self.key = QLineEdit()
        self.out = QLineEdit()
        self.run_button = QPushButton("Analyse")
        self.run_button.clicked.connect(self._on_run)
        self._bar = QProgressBar()
        self._cancel = QPushButton("Cancel")
        self._cancel.setEnabled(False)
        self.worker: Any = None
        self.report = QTextBrowser()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("study folder", folder_row(self.folder, self, "Study folder"))
        form.addRow("key", folder_row(self.key, self, "The study's key", "key (*.json)"))
        form.addRow("results folder", folder_row(self.out, self, "Results folder"))
        tooltips(
            {
                self.folder: "The study folder the readers read",
                self.key: "The study's key (kept by its owner, never given to readers)",
                self.out: "Where answers.csv, summary.json and report.html go; default: "
                "an 'analysis' folder beside the key",
                self.run_button: "Unblind the logs with the key and write the analysis",
                self._cancel: "Stop the analysis; nothing half-written is left",
                self.report: "The analysis report (report.html)",
            }
        )
        # the report's tables laid out at a readable width, scrolled inside the browser,
        # instead of wrapped letter by letter in a narrow dock
        self.report.setLineWrapMode(QTextEdit.LineWrapMode.FixedPixelWidth)
        self.report.setLineWrapColumnOrWidth(900)
        self.report.setMinimumHeight(300)
        layout = scrolled_layout(self)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self._cancel)
        layout.addLayout(buttons)
        layout.addWidget(self._bar)
        layout.addWidget(self.report, 1)
        layout.addWidget(self.status)

    def _on_run(self) -> None:
        """Analyse off the GUI thread (verifying and unblinding every log takes seconds)."""
        from napari_cpadv.progress import Progress
        from napari_cpadv.widgets._work import start

        args = self._args()
        if args is None:
            return

        def work() -> Any:
            yield Progress(0, 1, {"phase": "analysis"})
            return self._analyse(*args)

        self.run_button.setEnabled(False)
        self.status.setText("verifying the logs and unblinding…")
        self.worker = start(
            work,
            bar=self._bar,
            cancel=self._cancel,
            on_done=lambda summary: self._show(args[2]),
            on_error=lambda exc: notify(self.status, str(exc)),
            on_finish=lambda: self.run_button.setEnabled(True),
            label="study analysis",
        )

    def _args(self) -> tuple[str, str, str] | None:
        folder, key = self.folder.text(), self.key.text()
        # by default beside the key, never inside the study folder readers are given
        out = self.out.text() or (str(Path(key).parent / "analysis") if key else "")
        if not folder or not key:
            notify(self.status, "give the study folder and its key")
            return None
        return folder, key, out

    @staticmethod
    def _analyse(folder: str, key: str, out: str) -> dict[str, Any]:
        from napari_cpadv.study.analyze import analyze

        return analyze(folder, key, out)

    def _show(self, out: str) -> None:
        self.report.setSource(QUrl.fromLocalFile(str(Path(out).resolve() / "report.html")))
        self.status.setText(f"Written to {out}: answers.csv, summary.json, report.html.")

    def analyse(self) -> dict[str, Any] | None:
        """Analyse here and now (scripts and tests; the button works off the GUI thread)."""
        args = self._args()
        if args is None:
            return None
        try:
            summary = self._analyse(*args)
        except (CpadvError, OSError) as exc:
            notify(self.status, str(exc))
            return None
        self._show(args[2])
        return summary
