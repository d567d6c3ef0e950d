"""The reader dock's answer panel: one group per question of the study (choice buttons, a
scale, or a typed count), the answer in progress, and the keys that answer."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

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


def _pairs(q: dict[str, Any]) -> list[tuple[Any, str]]:
    """A choice's or a scale's (value, key) pairs."""
    if q["kind"] == "choice":
        return list(zip(q["options"], q["keys"], strict=True))
    return [(v, str(v)) for v in range(q["min"], q["max"] + 1)]


class AnswerPanel:
    """The groups of one study's questions in ``box`` (a ``QVBoxLayout``), the answer in
    progress (``pending``, and ``count`` when the study asks for one) and its keys."""

    def __init__(self, box: QVBoxLayout) -> None:
        self.box = box
        self.pending: dict[str, Any] = {}
        self.buttons: dict[str, dict[Any, QPushButton]] = {}
        self.count: CountField | None = None

    def build(self, questions: dict[str, dict[str, Any]], choose: Callable[..., None]) -> None:
        """Replace the groups by those of ``questions``; a button calls ``choose(name, value)``."""
        while self.box.count():
            item = self.box.takeAt(0)
            old = item.widget() if item is not None else None
            if old is not None:
                old.deleteLater()
        self.buttons, self.count = {}, None
        for name, q in questions.items():
            group = QGroupBox(q["text"])
            lay = QHBoxLayout(group)
            if q["kind"] == "count":
                self.count = CountField()
                lay.addWidget(self.count)
            else:
                self._buttons(lay, name, q, choose)
            self.box.addWidget(group)

    def _buttons(
        self, lay: QHBoxLayout, name: str, q: dict[str, Any], choose: Callable[..., None]
    ) -> None:
        self.buttons[name] = {}
        low, high = q.get("anchors", SCALE_ANCHORS)
        if q["kind"] == "scale":
            lay.addWidget(QLabel(f"{low} ←"))
        for value, key in _pairs(q):
            b = QPushButton(f"{value} ({key.upper()})" if q["kind"] == "choice" else key)
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, n=name, v=value: choose(n, v))
            lay.addWidget(b)
            self.buttons[name][value] = b
        if q["kind"] == "scale":
            lay.addWidget(QLabel(f"→ {high}"))

    @staticmethod
    def keys(
        questions: dict[str, dict[str, Any]], choose: Callable[..., None]
    ) -> dict[str, Callable[[], None]]:
        """Key (upper case) -> the answer it gives."""
        keys: dict[str, Callable[[], None]] = {}
        for name, q in questions.items():
            if q["kind"] in ("choice", "scale"):
                for value, key in _pairs(q):
                    keys[key.upper()] = partial(choose, name, value)
        return keys

    def choose(self, name: str, value: Any) -> None:
        self.pending[name] = value
        for v, b in self.buttons.get(name, {}).items():
            b.setChecked(v == value)

    def answer(self) -> dict[str, Any]:
        """What was answered for the case on screen."""
        answer = dict(self.pending)
        if self.count is not None and self.count.value() >= 0:
            answer["count"] = self.count.value()
        return answer

    def clear(self) -> None:
        """No answer yet (a new case)."""
        self.pending = {}
        for buttons in self.buttons.values():
            for b in buttons.values():
                b.setChecked(False)
        if self.count is not None:
            self.count.setValue(-1)
            self.count.setFocus()
