"""The study docks: Build (the owner), Read (the pathologist, locked down), Analyse (the
owner, with the key). The work is ``napari_cpadv.study``'s; these only show it.

Reader mode shows one case at a time, as an image layer named by its opaque token with no
metadata and no file path; while a study is read, every other dock, the layer list and
the layer controls are hidden, the window title names only the study and the reader, and
any layer added from elsewhere is removed. Answers come from buttons or keys (bound on the
viewer and the case layer, so they work with the canvas focused) and are in the log,
fsynced, before the next case appears.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt, QTimer, QUrl
from qtpy.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenuBar,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from napari_cpadv.errors import CpadvError
from napari_cpadv.widgets._view import camera, notify, scrolled_layout, tooltips

if TYPE_CHECKING:
    import napari

    from napari_cpadv.study.read import ReaderSession


def _folder_row(edit: QLineEdit, parent: QWidget, title: str, file: str | None = None) -> QWidget:
    """A line edit with a Browse… button (a folder, or a file matching ``file``)."""
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit)
    browse = QPushButton("Browse…")
    browse.setToolTip(f"Choose: {title.lower()}")
    edit.setToolTip(title)

    def pick() -> None:
        if file is None:
            got = QFileDialog.getExistingDirectory(parent, title)
        else:
            got, _ = QFileDialog.getOpenFileName(parent, title, "", file)
        if got:
            edit.setText(got)

    browse.clicked.connect(pick)
    lay.addWidget(browse)
    return row


class StudyBuilderWidget(QWidget):
    """Build a study from a folder of image pairs or from workbench runs."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        from napari_cpadv.study.build import PRESETS, QUESTIONS

        super().__init__()
        self.viewer = viewer
        self.sources = QListWidget()
        self.sources.setToolTip(
            "one folder of <case>_original / <case>_adversarial images, or workbench run folders"
        )
        add = QPushButton("Add folder…")
        add.clicked.connect(self._add)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.sources.clear)
        self.out = QLineEdit()
        self.out.setPlaceholderText("a new folder for the study")
        self.readers = QLineEdit()
        self.readers.setPlaceholderText("reader ids, e.g. path01 path02 path03")
        self.replicates = QSpinBox()
        self.replicates.setRange(1, 10)
        self.replicates.setValue(2)
        self.min_gap = QSpinBox()
        self.min_gap.setRange(1, 1000)
        self.min_gap.setValue(2)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.questions = {q: QCheckBox(spec["text"]) for q, spec in QUESTIONS.items()}
        self.questions["tumour"].setChecked(True)
        self.questions["tumour"].setEnabled(False)  # the question every study asks
        self.corrections = QCheckBox("readers may revise answered cases")
        self.track = QDoubleSpinBox()
        self.track.setRange(0, 60)
        self.track.setSuffix(" s (0: off)")
        preset = QPushButton("Seed 001's design")
        preset.clicked.connect(lambda: self.apply_preset(PRESETS["seed001"]))
        self.build_button = QPushButton("Build study")
        self.build_button.clicked.connect(self._on_build)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.manifest: Path | None = None
        self.status = QLabel("")
        self.status.setWordWrap(True)
        tooltips(
            {
                add: "Add a folder of <case>_original / <case>_adversarial images, or "
                "workbench run folders",
                clear: "Remove every source folder",
                self.out: "A new folder for the study (given to the readers)",
                self.readers: "Reader ids, separated by spaces; each gets a code",
                self.replicates: "How often each image is shown to each reader (seed 001: 2)",
                self.min_gap: "Cases at least between two showings of the same image",
                self.seed: "Seed of the case order and of the blinding tokens",
                **{box: f"Ask: {box.text()}" for box in self.questions.values()},
                self.corrections: "Readers may go back and change answered cases",
                self.track: "Record the reader's view every so many seconds (0: off)",
                preset: "Seed 001's design: tumour present, each image twice, 2 apart",
                self.build_button: "Build the study folder, its key and the readers' codes",
                self.cancel: "Stop building; nothing half-written is left",
            }
        )
        form = QFormLayout()
        form.addRow("output", _folder_row(self.out, self, "Study folder"))
        form.addRow("readers", self.readers)
        form.addRow("presentations per image", self.replicates)
        form.addRow("same image at least", self.min_gap)
        form.addRow("seed", self.seed)
        form.addRow("camera sampled every", self.track)
        questions = QGroupBox("questions")
        qlay = QVBoxLayout(questions)
        for box in self.questions.values():
            qlay.addWidget(box)
        qlay.addWidget(self.corrections)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(clear)
        buttons.addWidget(preset)
        layout = scrolled_layout(self)
        layout.addWidget(QLabel("pairs folder or workbench runs"))
        layout.addWidget(self.sources)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addWidget(questions)
        run = QHBoxLayout()
        run.addWidget(self.build_button)
        run.addWidget(self.cancel)
        layout.addLayout(run)
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

    def build(self) -> Any:
        """Build the study in a worker (progress, Cancel); returns the worker, or None when
        the request is refused (said why)."""
        from napari_cpadv.study.build import pairs_from, study_work
        from napari_cpadv.widgets._work import start

        items = [self.sources.item(i) for i in range(self.sources.count())]
        folders = [it.text() for it in items if it is not None]
        readers = self.readers.text().split()
        if not folders or not self.out.text() or not readers:
            notify(
                self.status,
                "Add the pairs (a folder or runs), name the study folder and enrol the readers.",
            )
            return None
        out = self.out.text()
        options: dict[str, Any] = {
            "readers": readers,
            "replicates": self.replicates.value(),
            "seed": self.seed.value(),
            "min_gap": self.min_gap.value(),
            "questions": [q for q, box in self.questions.items() if box.isChecked()],
            "allow_corrections": self.corrections.isChecked(),
            "view_tracking": self.track.value(),
        }

        def work() -> Any:
            return (yield from study_work(pairs_from(folders), out, **options))

        def done(path: Path) -> None:
            import json

            from napari_cpadv.study.build import default_key_path, reader_codes

            n = len(json.loads(path.read_text())["order"])
            self.manifest = path
            key = default_key_path(path.parent)
            codes = "; ".join(f"{r}: {c}" for r, c in reader_codes(key).items())
            self.status.setText(
                f"Built {path.parent}: {n} presentations. The key is {key}: keep it yourself, "
                f"away from readers. Give each reader the study folder and their code: {codes}"
            )

        self.manifest = None
        self.build_button.setEnabled(False)
        self.status.setText("Building…")
        self.worker = start(
            work,
            bar=self.progress,
            cancel=self.cancel,
            on_done=done,
            on_error=lambda exc: notify(self.status, str(exc)),
            on_finish=lambda: self.build_button.setEnabled(True),
        )
        return self.worker


class StudyReaderWidget(QWidget):
    """Reader mode (see the module docstring)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.session: ReaderSession | None = None
        self.receipt = ""
        self.pending: dict[str, Any] = {}
        self.layer: Any = None
        self._saved: dict[str, Any] = {}
        self._keys: dict[str, Any] = {}
        self._last_view: tuple[Any, ...] | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.sample_view)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.folder = QLineEdit()
        self.reader = QLineEdit()
        self.reader.setPlaceholderText("your reader id, e.g. path01")
        self.code = QLineEdit()
        self.code.setPlaceholderText("the code the study's owner gave you")
        self.code.setEchoMode(QLineEdit.EchoMode.Password)
        self.start_button = QPushButton("Start reading")
        self.start_button.clicked.connect(self._on_start)
        self.setup = QWidget()
        form = QFormLayout(self.setup)
        form.addRow("study folder", _folder_row(self.folder, self, "Study folder"))
        form.addRow("reader", self.reader)
        form.addRow("code", self.code)
        form.addRow(self.start_button)
        tooltips(
            {
                self.folder: "The study folder the study's owner gave you",
                self.reader: "Your reader id, as enrolled in the study",
                self.code: "Your code, from the study's owner",
                self.start_button: "Start, or carry on where you stopped",
            }
        )

        self.reading = QWidget()
        self.progress = QLabel("")
        self.progress.setStyleSheet("font-size: 14pt")
        self.answers_box = QVBoxLayout()
        self.next_button = QPushButton("Next (Enter)")
        self.next_button.clicked.connect(self.submit)
        self.pause_button = QPushButton("Pause (P)")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.back_button = QPushButton("Back (B)")
        self.back_button.clicked.connect(self.back)
        self.stop_button = QPushButton("Stop for now")
        self.stop_button.clicked.connect(self.stop)
        tooltips(
            {
                self.next_button: "Save this case's answers and show the next (Enter)",
                self.pause_button: "Pause: the case is hidden and time stops (P)",
                self.back_button: "Revise the previous case, where the study allows (B)",
                self.stop_button: "Stop; your answers so far are saved and you can resume",
            }
        )
        rlay = QVBoxLayout(self.reading)
        rlay.addWidget(self.progress)
        rlay.addLayout(self.answers_box)
        row = QHBoxLayout()
        for b in (self.back_button, self.pause_button, self.next_button):
            row.addWidget(b)
        rlay.addLayout(row)
        rlay.addWidget(self.stop_button)
        self.reading.hide()

        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = scrolled_layout(self)
        layout.addWidget(self.setup)
        layout.addWidget(self.reading)
        layout.addWidget(self.status)
        layout.addStretch()
        self._choice_buttons: dict[str, dict[Any, QPushButton]] = {}
        self._count: QSpinBox | None = None

    # -- starting and stopping -------------------------------------------------------
    def _on_start(self) -> None:
        self.start()

    def start(
        self, folder: str | None = None, reader: str | None = None, code: str | None = None
    ) -> bool:
        """Open the reader's session and lock the viewer down; False when refused."""
        from napari_cpadv.study.read import ReaderSession

        if self.session is not None:
            return True
        if len(self.viewer.layers):
            notify(
                self.status,
                "Reader mode needs an empty viewer: close the open layers first (or open a "
                "new napari window), so nothing but the case is on screen.",
            )
            return False
        try:
            self.session = ReaderSession(
                folder or self.folder.text(),
                reader or self.reader.text(),
                code or self.code.text(),
            )
            self.code.clear()
        except CpadvError as exc:
            notify(self.status, str(exc))
            return False
        self.status.setText(" ".join(self.session.notes))
        self._build_answers()
        self._lock()
        self.setup.hide()
        self.reading.show()
        self.back_button.setVisible(self.session.study.allow_corrections)
        if self.session.done:
            self._finish()
        else:
            self.show_case()
        return True

    def stop(self) -> None:
        """Close the session (answers are already saved) and give the viewer back."""
        if self.session is None:
            return
        n, total = len(self.session.answers), self.session.total
        self.receipt = self.session.close()
        self.session = None
        self._unlock()
        self.reading.hide()
        self.setup.show()
        if n < total:
            self.status.setText(
                f"{n} of {total} answered and saved. Start again to continue at case {n + 1}. "
                f"Receipt for the study's owner: {self.receipt}"
            )

    def _finish(self) -> None:
        assert self.session is not None
        total = self.session.total
        self.stop()
        self.status.setText(
            f"All {total} cases answered and saved. Thank you. "
            f"Receipt for the study's owner: {self.receipt}"
        )

    def _lock(self) -> None:
        """Only this dock and the case: every other dock of the window (napari's layer
        list and controls, the console, other plugins) hidden and its menus disabled.

        Through Qt's public API on the window this dock lives in (``QWidget.window()``):
        napari has no public handle on its own docks, and reaching into
        ``window._qt_viewer`` shows the reader napari's "private attribute" warning.
        """
        assert self.session is not None
        main = self.window() or self
        hidden = []
        for dock in main.findChildren(QDockWidget):
            if dock is not _dock_of(self) and not dock.isHidden():
                dock.hide()
                hidden.append(dock)
        menus = main.findChildren(QMenuBar)
        disabled = [a for bar in menus for a in bar.actions() if a.isEnabled()]
        for action in disabled:  # each menu and, through it, its items and their shortcuts
            action.setEnabled(False)
            menu = action.menu()
            if menu is not None:
                disabled += [a for a in menu.actions() if a.isEnabled()]
                for item in menu.actions():
                    item.setEnabled(False)
        self._saved = {"title": self.viewer.title, "hidden": hidden, "disabled": disabled}
        self.viewer.title = (
            f"Reader study {self.session.study.study_id[:8]} — {self.session.reader}"
        )
        self.viewer.layers.events.inserted.connect(self._guard)
        self._keys = self._key_actions()
        for key, fn in self._keys.items():
            self._saved.setdefault("keys", {})[key] = self.viewer.bind_key(
                key, lambda _v, f=fn: f(), overwrite=True
            )
        if self.session.study.view_tracking_s > 0:
            self._timer.start(int(self.session.study.view_tracking_s * 1000))

    def _unlock(self) -> None:
        self._timer.stop()
        self.viewer.layers.events.inserted.disconnect(self._guard)
        if self.layer is not None and self.layer in self.viewer.layers:
            self.viewer.layers.remove(self.layer)
        self.layer = None
        for key, old in self._saved.get("keys", {}).items():
            self.viewer.bind_key(key, old, overwrite=True)
        self.viewer.title = self._saved.get("title", "napari")
        for dock in self._saved.get("hidden", []):
            dock.show()
        for action in self._saved.get("disabled", []):
            action.setEnabled(True)
        self._saved = {}

    def _guard(self, event: Any) -> None:
        """Only the current case may be on screen while reading: anything else added is
        removed as soon as napari has finished adding it."""
        layer = event.value
        if layer is not self.layer:
            QTimer.singleShot(0, lambda: self._drop(layer))

    def _drop(self, layer: Any) -> None:
        if layer in self.viewer.layers:
            self.viewer.layers.remove(layer)
            notify(self.status, "Reader mode shows the study's cases only.")

    # -- answers ------------------------------------------------------------------------
    def _build_answers(self) -> None:
        assert self.session is not None
        while self.answers_box.count():
            item = self.answers_box.takeAt(0)
            old = item.widget() if item is not None else None
            if old is not None:
                old.deleteLater()
        self._choice_buttons = {}
        self._count = None
        for name, q in self.session.study.questions.items():
            group = QGroupBox(q["text"])
            lay = QHBoxLayout(group)
            if q["kind"] == "count":
                self._count = CountField()
                lay.addWidget(self._count)
            else:
                if q["kind"] == "choice":
                    pairs = list(zip(q["options"], q["keys"], strict=True))
                else:
                    pairs = [(v, str(v)) for v in range(q["min"], q["max"] + 1)]
                self._choice_buttons[name] = {}
                if q["kind"] == "scale":
                    low, high = q.get("anchors", SCALE_ANCHORS)
                    lay.addWidget(QLabel(f"{low} ←"))
                for value, key in pairs:
                    b = QPushButton(f"{value} ({key.upper()})" if q["kind"] == "choice" else key)
                    b.setCheckable(True)
                    b.clicked.connect(lambda _=False, n=name, v=value: self.choose(n, v))
                    lay.addWidget(b)
                    self._choice_buttons[name][value] = b
                if q["kind"] == "scale":
                    lay.addWidget(QLabel(f"→ {high}"))
            self.answers_box.addWidget(group)

    def _key_actions(self) -> dict[str, Any]:
        assert self.session is not None
        keys: dict[str, Any] = {
            "Enter": self.submit,
            "P": self.toggle_pause,
        }
        if self.session.study.allow_corrections:
            keys["B"] = self.back
        for name, q in self.session.study.questions.items():
            if q["kind"] == "choice":
                for value, key in zip(q["options"], q["keys"], strict=True):
                    keys[key.upper()] = lambda n=name, v=value: self.choose(n, v)
            elif q["kind"] == "scale":
                for v in range(q["min"], q["max"] + 1):
                    keys[str(v)] = lambda n=name, v=v: self.choose(n, v)
        return keys

    def keyPressEvent(self, event: Any) -> None:
        enter = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        text = "Enter" if event.key() in enter else event.text()
        fn = self._keys.get(text.upper()) if self.session is not None and text else None
        if fn is None:
            super().keyPressEvent(event)
            return
        fn()

    def choose(self, name: str, value: Any) -> None:
        if self.session is None or self.session.paused:
            return
        self.pending[name] = value
        for v, b in self._choice_buttons.get(name, {}).items():
            b.setChecked(v == value)

    def submit(self) -> None:
        """Record the answer (durably) and show the next case."""
        from napari_cpadv.study.build import StudyError

        if self.session is None:
            return
        answer = dict(self.pending)
        if self._count is not None and self._count.value() >= 0:
            answer["count"] = self._count.value()
        try:
            self.session.answer(**answer)
        except StudyError as exc:
            self.status.setText(exc.reason)
            return
        self.status.setText("")
        if self.session.done:
            self._finish()
        else:
            self.show_case()

    def back(self) -> None:
        if self.session is None:
            return
        token = self.session.previous()
        if token is None:
            self.status.setText("No answered case to go back to.")
            return
        self.show_case(token)
        self.status.setText("Correcting an earlier answer: it is kept, and the new one added.")

    def toggle_pause(self) -> None:
        if self.session is None or self.layer is None:
            return
        if self.session.paused:
            self.session.resume()
            self.layer.visible = True
            self.pause_button.setText("Pause (P)")
        else:
            self.session.pause()
            self.layer.visible = False
            self.pause_button.setText("Resume (P)")

    def show_case(self, token: str | None = None) -> None:
        """Put a case (default: the first unanswered) on screen, alone."""
        import tifffile

        assert self.session is not None
        try:
            path = self.session.show(token)
        except CpadvError as exc:
            notify(self.status, str(exc))
            return
        pixels = tifffile.imread(path)
        shown = path.stem  # the token
        old = self.layer
        self.layer = None
        if old is not None and old in self.viewer.layers:
            self.viewer.layers.remove(old)
        from napari.layers import Image

        self.layer = Image(pixels, name=shown, rgb=True)  # nothing but the pixels
        self.viewer.add_layer(self.layer)
        for key, fn in self._keys.items():
            self.layer.bind_key(key, lambda _la, f=fn: f(), overwrite=True)
        self.viewer.reset_view()
        self._last_view = None
        self.pending = {}
        for buttons in self._choice_buttons.values():
            for b in buttons.values():
                b.setChecked(False)
        if self._count is not None:
            self._count.setValue(-1)
            self._count.setFocus()
        index = self.session.study.order.index(shown) + 1
        self.progress.setText(f"Case {index} of {self.session.total}")

    def sample_view(self) -> None:
        """One camera sample (centre, zoom) when it moved since the last one."""
        if self.session is None or self.session.showing is None:
            return
        cam = camera(self.viewer)
        now = (tuple(round(float(v), 1) for v in cam.center[-2:]), round(float(cam.zoom), 4))
        if now != self._last_view:
            self.session.view(now[0], now[1])
            self._last_view = now


class StudyAnalysisWidget(QWidget):
    """Unblind and analyse (the owner, with the key); shows the HTML report."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
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
        form.addRow("study folder", _folder_row(self.folder, self, "Study folder"))
        form.addRow("key", _folder_row(self.key, self, "The study's key", "key (*.json)"))
        form.addRow("results folder", _folder_row(self.out, self, "Results folder"))
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


SCALE_ANCHORS = ("not sure", "sure")  # what a scale's ends mean unless the study says


class CountField(QLineEdit):
    """A whole number typed at once (nothing typed: no answer yet), 0 to 100,000."""

    def __init__(self) -> None:
        from qtpy.QtGui import QIntValidator

        super().__init__()
        self.setValidator(QIntValidator(0, 100_000, self))
        self.setPlaceholderText("type a number")

    def value(self) -> int:
        """The number typed, or -1 when there is none."""
        text = self.text().strip()
        return int(text) if text.isdigit() else -1

    def setValue(self, value: int) -> None:  # Qt's naming, as QSpinBox
        self.setText("" if value < 0 else str(value))

    def keyPressEvent(self, event: Any) -> None:
        """Digits and editing keys stay here; Enter and the answer keys go to the dock."""
        text = event.text()
        editing = text.isdigit() or event.key() in (
            Qt.Key.Key_Backspace, Qt.Key.Key_Delete, Qt.Key.Key_Left, Qt.Key.Key_Right,
        )  # fmt: skip
        if editing:
            super().keyPressEvent(event)
        else:
            event.ignore()  # passed on to the parent: the reader dock's keys


def _dock_of(widget: Any) -> Any:
    """The dock widget holding ``widget`` (or None)."""
    w = widget
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parent()
    return w
