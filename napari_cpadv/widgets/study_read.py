"""The Study reader dock (the pathologist): one case at a time, locked down.

Reader mode shows one case at a time, as an image layer named by its opaque token with no
metadata and no file path; while a study is read, every other dock, the layer list and
the layer controls are hidden, the window title names only the study and the reader, and
any layer added from elsewhere is removed (``_lockdown.Lockdown``). Answers come from
buttons or keys (bound on the viewer and the case layer, so they work with the canvas
focused; ``_answers.AnswerPanel``) and are in the log, fsynced, before the next case
appears. The work is ``napari_cpadv.study.read``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QApplication,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_cpadv.errors import CpadvError
from napari_cpadv.widgets._answers import AnswerPanel, CountField
from napari_cpadv.widgets._collector import warm_units, watch
from napari_cpadv.widgets._lockdown import Lockdown
from napari_cpadv.widgets._view import (
    camera,
    folder_row,
    notify,
    scrolled_layout,
    tooltips,
)

if TYPE_CHECKING:
    import napari

    from napari_cpadv.study.read import ReaderSession


def _button(text: str, slot: Any) -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(slot)
    return b


class StudyReaderWidget(QWidget):
    """Reader mode (see the module docstring)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        watch(self, viewer)  # full garbage collections kept short (_collector)
        self.session: ReaderSession | None = None
        self.receipt = ""
        self.layer: Any = None
        self._keys: dict[str, Any] = {}
        self._last_view: tuple[Any, ...] | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.sample_view)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._lockdown = Lockdown(
            self,
            viewer,
            allowed=lambda: self.layer,
            on_refused=lambda: notify(self.status, "Reader mode shows the study's cases only."),
        )
        self.setup = self._setup_panel()
        self.reading = self._reading_panel()
        self.reading.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.receipt_panel = self._receipt_panel()
        self.receipt_panel.hide()
        layout = scrolled_layout(self)
        for w in (self.receipt_panel, self.setup, self.reading, self.status):
            layout.addWidget(w)
        layout.addStretch()
        QTimer.singleShot(0, warm_units)  # the first case's layer: 0.35 s less at Start

    def _receipt_panel(self) -> QWidget:
        """The receipt of the last session, on top, selectable, with a Copy button: the
        reader sends it to the study's owner (it proves what was answered)."""
        self.receipt_text = QLineEdit()
        self.receipt_text.setReadOnly(True)
        copy = _button("Copy", self._copy_receipt)
        tooltips(
            {
                self.receipt_text: "Your receipt: send it to the study's owner",
                copy: "Copy the receipt to the clipboard",
            }
        )
        panel = QWidget()
        lay = QVBoxLayout(panel)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("receipt for the study's owner"))
        row = QHBoxLayout()
        row.addWidget(self.receipt_text, 1)
        row.addWidget(copy)
        lay.addLayout(row)
        return panel

    def _copy_receipt(self) -> None:
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.receipt_text.text())

    def _show_receipt(self) -> None:
        self.receipt_text.setText(self.receipt or "")
        self.receipt_text.setCursorPosition(0)
        self.receipt_panel.setVisible(bool(self.receipt))

    def _setup_panel(self) -> QWidget:
        self.folder = QLineEdit()
        self.reader = QLineEdit()
        self.reader.setPlaceholderText("your reader id, e.g. path01")
        self.code = QLineEdit()
        self.code.setPlaceholderText("the code the study's owner gave you")
        self.code.setEchoMode(QLineEdit.EchoMode.Password)
        self.start_button = _button("Start reading", self._on_start)
        panel = QWidget()
        form = QFormLayout(panel)
        form.addRow("study folder", folder_row(self.folder, self, "Study folder"))
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
        return panel

    def _reading_panel(self) -> QWidget:
        self.progress = QLabel("")
        self.progress.setStyleSheet("font-size: 14pt")
        self.answers_box = QVBoxLayout()
        self.answers = AnswerPanel(self.answers_box)
        self.next_button = _button("Next (Enter)", self.submit)
        self.pause_button = _button("Pause (P)", self.toggle_pause)
        self.back_button = _button("Back (B)", self.back)
        self.stop_button = _button("Stop for now", self.stop)
        tooltips(
            {
                self.next_button: "Save this case's answers and show the next (Enter)",
                self.pause_button: "Pause: the case is hidden and time stops (P)",
                self.back_button: "Revise the previous case, where the study allows (B)",
                self.stop_button: "Stop; your answers so far are saved and you can resume",
            }
        )
        panel = QWidget()
        lay = QVBoxLayout(panel)
        lay.addWidget(self.progress)
        lay.addLayout(self.answers_box)
        row = QHBoxLayout()
        for b in (self.back_button, self.pause_button, self.next_button):
            row.addWidget(b)
        lay.addLayout(row)
        lay.addWidget(self.stop_button)
        return panel

    @property
    def pending(self) -> dict[str, Any]:
        """The answers chosen for the case on screen."""
        return self.answers.pending

    @property
    def _count(self) -> CountField | None:
        return self.answers.count

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
        given = {
            "study folder": folder or self.folder.text().strip(),
            "reader": reader or self.reader.text().strip(),
        }
        missing = [name for name, value in given.items() if not value]
        if missing:  # (an empty folder was read as the current one: ".: holds no study")
            notify(
                self.status,
                f"{' and '.join(missing).capitalize()} not given: the study's owner gave "
                "you both (Browse… to the study folder; your reader id, e.g. path01).",
            )
            return False
        if len(self.viewer.layers):
            notify(
                self.status,
                "Reader mode needs an empty viewer: close the open layers first (or open a "
                "new napari window), so nothing but the case is on screen.",
            )
            return False
        try:
            self.session = ReaderSession(
                given["study folder"], given["reader"], code or self.code.text()
            )
            self.code.clear()
        except CpadvError as exc:
            notify(self.status, str(exc))
            return False
        self.status.setText(" ".join(self.session.notes))
        self.receipt_panel.hide()
        self.answers.build(self.session.study.questions, self.choose)
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
        self._show_receipt()
        if n < total:
            self.status.setText(
                f"{n} of {total} answered and saved. Start again to continue at case {n + 1}. "
                "Send the receipt above to the study's owner."
            )

    def _finish(self) -> None:
        assert self.session is not None
        total = self.session.total
        self.stop()
        self.status.setText(
            f"All {total} cases answered and saved. Thank you. "
            "Send the receipt above to the study's owner."
        )

    def _lock(self) -> None:
        """Only this dock and the case on screen (see ``_lockdown.Lockdown``)."""
        assert self.session is not None
        study = self.session.study
        self._keys = {"Enter": self.submit, "P": self.toggle_pause}
        if study.allow_corrections:
            self._keys["B"] = self.back
        self._keys.update(AnswerPanel.keys(study.questions, self.choose))
        title = f"Reader study {study.study_id[:8]} — {self.session.reader}"
        self._lockdown.engage(title, self._keys)
        if study.view_tracking_s > 0:
            self._timer.start(int(study.view_tracking_s * 1000))

    def _unlock(self) -> None:
        self._timer.stop()
        if self.layer is not None and self.layer in self.viewer.layers:
            self.viewer.layers.remove(self.layer)
        self.layer = None
        self._lockdown.release()

    # -- answers ------------------------------------------------------------------------
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
        self.answers.choose(name, value)

    def submit(self) -> None:
        """Record the answer (durably) and show the next case."""
        from napari_cpadv.study.model import StudyError

        if self.session is None:
            return
        try:
            self.session.answer(**self.answers.answer())
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
        else:
            self.session.pause()
        self.layer.visible = not self.session.paused
        self.pause_button.setText("Resume (P)" if self.session.paused else "Pause (P)")

    def show_case(self, token: str | None = None) -> None:
        """Put a case (default: the first unanswered) on screen, alone."""
        import tifffile
        from napari.layers import Image

        assert self.session is not None
        try:
            path = self.session.show(token)
        except CpadvError as exc:
            notify(self.status, str(exc))
            return
        pixels = tifffile.imread(path)
        shown = path.stem  # the token
        if self.layer is not None and self.layer in self.viewer.layers:
            # the next case in the same layer: its pixels and name replaced (removing the
            # layer and adding a new one cost twice napari's layer add, 0.2-0.4 s here)
            self.layer.data = pixels
            self.layer.name = shown
        else:
            self.layer = Image(pixels, name=shown, rgb=True)  # nothing but the pixels
            self.viewer.add_layer(self.layer)
            for key, fn in self._keys.items():
                self.layer.bind_key(key, lambda _la, f=fn: f(), overwrite=True)
        self.viewer.reset_view()
        self._last_view = None
        self.answers.clear()
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
