"""The Study builder dock (the study's owner): pairs or runs in, a blinded study folder,
its key and the readers' codes out. The work is ``napari_cpadv.study.build``'s, run in a
thread worker with progress and Cancel."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_cpadv.widgets._collector import watch
from napari_cpadv.widgets._view import (
    WARN_STYLE,
    folder_row,
    notify,
    scrolled_layout,
    spin,
    tooltips,
)

if TYPE_CHECKING:
    import napari


class StudyBuilderWidget(QWidget):
    """Build a study from a folder of image pairs or from workbench runs."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        watch(self, viewer)  # full garbage collections kept short (_collector)
        self.manifest: Path | None = None
        self.worker: Any = None
        self._make_controls()
        self._explain()
        self._lay_out()

    def _make_controls(self) -> None:
        from napari_cpadv.study.model import PRESETS, QUESTIONS

        self.sources = QListWidget()
        self.add_button = QPushButton("Add folder…")
        self.add_button.clicked.connect(self._add)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.sources.clear)
        self.out = QLineEdit()
        self.out.setPlaceholderText("a new folder for the study")
        self.readers = QLineEdit()
        self.readers.setPlaceholderText("reader ids, e.g. path01 path02 path03")
        self.replicates = spin(1, 10, 2)
        self.min_gap = spin(1, 1000, 2)
        self.seed = spin(0, 2**31 - 1, 0)
        # a check box's text does not wrap: long questions are broken over lines here
        self.questions = {
            q: QCheckBox(textwrap.fill(spec["text"], 30)) for q, spec in QUESTIONS.items()
        }
        self.questions["tumour"].setChecked(True)
        self.questions["tumour"].setEnabled(False)  # the question every study asks
        self.corrections = QCheckBox("readers may revise\nanswered cases")
        self.track = QDoubleSpinBox()
        self.track.setRange(0, 60)
        self.track.setSuffix(" s (0: off)")
        self.preset = QPushButton("Seed 001's design")
        self.preset.clicked.connect(lambda: self.apply_preset(PRESETS["seed001"]))
        self.build_button = QPushButton("Build study")
        self.build_button.clicked.connect(self._on_build)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)

    def _explain(self) -> None:
        tooltips(
            {
                self.sources: "one folder of <case>_original / <case>_adversarial images, or "
                "workbench run folders",
                self.add_button: "Add a folder of <case>_original / <case>_adversarial images, "
                "or workbench run folders",
                self.clear_button: "Remove every source folder",
                self.out: "A new folder for the study (given to the readers)",
                self.readers: "Reader ids, separated by spaces; each gets a code",
                self.replicates: "How often each image is shown to each reader (seed 001: 2)",
                self.min_gap: "Cases at least between two showings of the same image",
                self.seed: "Seed of the case order and of the blinding tokens",
                **{box: "Ask: " + box.text().replace("\n", " ") for box in self.questions.values()},
                self.corrections: "Readers may go back and change answered cases",
                self.track: "Record the reader's view every so many seconds (0: off)",
                self.preset: "Seed 001's design: tumour present, each image twice, 2 apart",
                self.build_button: "Build the study folder, its key and the readers' codes",
                self.cancel: "Stop building; nothing half-written is left",
            }
        )

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.addRow("output", folder_row(self.out, self, "Study folder"))
        form.addRow("readers", self.readers)
        form.addRow("presentations per image", self.replicates)
        form.addRow("same image at least", self.min_gap)
        form.addRow("seed", self.seed)
        form.addRow("camera sampled every", self.track)
        questions = QGroupBox("questions")
        qlay = QVBoxLayout(questions)
        for box in (*self.questions.values(), self.corrections):
            qlay.addWidget(box)
        layout = scrolled_layout(self)
        layout.addWidget(QLabel("pairs folder or workbench runs"))
        layout.addWidget(self.sources)
        layout.addLayout(_row(self.add_button, self.clear_button))
        layout.addWidget(self.preset)  # three buttons in a row are wider than the dock
        layout.addLayout(form)
        layout.addWidget(questions)
        layout.addLayout(_row(self.build_button, self.cancel))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    def _add(self) -> None:
        got = QFileDialog.getExistingDirectory(self, "Pairs folder or workbench run")
        if got:
            self.sources.addItem(got)

    def apply_preset(self, preset: dict[str, Any]) -> None:
        self.replicates.setValue(preset["replicates"])
        self.min_gap.setValue(preset["min_gap"])
        for q, box in self.questions.items():
            box.setChecked(q in preset["questions"])

    def _on_build(self) -> None:
        self.build()

    def _options(self) -> dict[str, Any]:
        return {
            "readers": self.readers.text().split(),
            "replicates": self.replicates.value(),
            "seed": self.seed.value(),
            "min_gap": self.min_gap.value(),
            "questions": [q for q, box in self.questions.items() if box.isChecked()],
            "allow_corrections": self.corrections.isChecked(),
            "view_tracking": self.track.value(),
        }

    def build(self) -> Any:
        """Build the study in a worker (progress, Cancel); returns the worker, or None when
        the request is refused (said why)."""
        from napari_cpadv.study.build import study_work
        from napari_cpadv.study.pairs import pairs_from
        from napari_cpadv.widgets._work import start

        items = [self.sources.item(i) for i in range(self.sources.count())]
        folders = [it.text() for it in items if it is not None]
        out, options = self.out.text(), self._options()
        if not folders or not out or not options["readers"]:
            notify(
                self.status,
                "Add the pairs (a folder or runs), name the study folder and enrol the readers.",
            )
            return None

        def work() -> Any:
            return (yield from study_work(pairs_from(folders), out, **options))

        self.manifest = None
        self.build_button.setEnabled(False)
        self.status.setText("Building…")
        self.worker = start(
            work,
            bar=self.progress,
            cancel=self.cancel,
            on_done=self._built,
            on_error=lambda exc: notify(self.status, str(exc)),
            on_finish=lambda: self.build_button.setEnabled(True),
        )
        return self.worker

    def _built(self, path: Path) -> None:
        import json

        from napari_cpadv.study.model import default_key_path, reader_codes

        n = len(json.loads(path.read_text())["order"])
        self.manifest = path
        key = default_key_path(path.parent)
        codes = "; ".join(f"{r}: {c}" for r, c in reader_codes(key).items())
        text = (
            f"Built {path.parent}: {n} presentations. The key is {key}: keep it yourself, "
            f"away from readers. Give each reader the study folder and their code: {codes}"
        )
        seen = json.loads(key.read_text()).get("visible_pairs", [])
        if seen:  # said first and in orange: these pairs un-blind themselves
            cases = ", ".join(f"{v['case']} ({v['psnr_db']:.1f} dB)" for v in seen[:5])
            text = (f"Warning: {len(seen)} pairs differ visibly (PSNR below 30 dB), which "
                    f"un-blinds them: {cases}. {text}")  # fmt: skip
        self.status.setText(text)
        self.status.setStyleSheet(WARN_STYLE if seen else "")


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    return row
