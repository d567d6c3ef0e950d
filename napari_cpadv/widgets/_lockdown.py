"""Reader mode's hold on the window: only the reader dock and the case on screen.

Through Qt's public API on the window the dock lives in (``QWidget.window()``): napari has
no public handle on its own docks, and reaching into ``window._qt_viewer`` shows the reader
napari's "private attribute" warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QMenuBar


def dock_of(widget: Any) -> Any:
    """The dock widget holding ``widget`` (or None)."""
    w = widget
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parent()
    return w


class Lockdown:
    """While engaged: every other dock of the window hidden, its menus (and their items and
    shortcuts) disabled, the title set, ``keys`` bound on the viewer, and any layer but
    ``allowed()`` removed as soon as napari has added it (``on_refused`` is then called)."""

    def __init__(
        self, dock: Any, viewer: Any, allowed: Callable[[], Any], on_refused: Callable[[], None]
    ) -> None:
        self.dock, self.viewer = dock, viewer
        self.allowed, self.on_refused = allowed, on_refused
        self._saved: dict[str, Any] = {}

    def engage(self, title: str, keys: dict[str, Callable[[], None]]) -> None:
        from napari_cpadv.widgets._view import clear_toasts

        clear_toasts()  # earlier errors are not left over the case
        main = self.dock.window() or self.dock
        hidden = []
        for dock in main.findChildren(QDockWidget):
            if dock is not dock_of(self.dock) and not dock.isHidden():
                dock.hide()
                hidden.append(dock)
        disabled = [a for bar in main.findChildren(QMenuBar) for a in bar.actions()]
        disabled = [a for a in disabled if a.isEnabled()]
        for action in disabled:  # each menu and, through it (the list grows), its items
            action.setEnabled(False)
            menu = action.menu()
            if menu is not None:
                disabled += [a for a in menu.actions() if a.isEnabled()]
                for item in menu.actions():
                    item.setEnabled(False)
        self._saved = {"title": self.viewer.title, "hidden": hidden, "disabled": disabled}
        self.viewer.title = title
        self.viewer.layers.events.inserted.connect(self._guard)
        self._saved["keys"] = {
            key: self.viewer.bind_key(key, lambda _v, f=fn: f(), overwrite=True)
            for key, fn in keys.items()
        }

    def release(self) -> None:
        if not self._saved:
            return
        self.viewer.layers.events.inserted.disconnect(self._guard)
        for key, old in self._saved.get("keys", {}).items():
            self.viewer.bind_key(key, old, overwrite=True)
        self.viewer.title = self._saved.get("title", "napari")
        for dock in self._saved.get("hidden", []):
            dock.show()
        for action in self._saved.get("disabled", []):
            action.setEnabled(True)
        self._saved = {}

    def _guard(self, event: Any) -> None:
        layer = event.value
        if layer is not self.allowed():
            QTimer.singleShot(0, lambda: self._drop(layer))

    def _drop(self, layer: Any) -> None:
        if layer in self.viewer.layers:
            self.viewer.layers.remove(layer)
            self.on_refused()
