"""What the docks of one viewer share, instead of reaching into each other: the last run's
outcome, the session records of the layers the runs added, and the listeners told when a
run finishes (the Plots dock shows its PR curves, the Export dock exports it)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_cpadv.workbench.session import LayerRecord, write_session


class Workbench:
    """One viewer's shared state (see the module docstring)."""

    def __init__(self) -> None:
        self.outcome: Any = None
        self.records: list[LayerRecord] = []
        self._listeners: list[Callable[[Workbench], None]] = []

    def connect(self, listener: Callable[[Workbench], None]) -> None:
        """Call ``listener(self)`` after every finished run; a dock's method is held weakly,
        so a closed dock is not kept alive (nor called)."""
        if not hasattr(listener, "__self__"):
            self._listeners.append(listener)
            return
        method = weakref.WeakMethod(listener)

        def call(state: Workbench) -> None:
            bound = method()
            if bound is not None:
                bound(state)

        self._listeners.append(call)

    def finished(self, outcome: Any, slide: LayerRecord | None, records: list[LayerRecord]) -> None:
        """A run finished: its outcome, the slide it ran on (recorded once) and its layers'
        records; the listeners are told."""
        self.outcome = outcome
        if slide is not None and not any(rec.kind == "slide" for rec in self.records):
            self.records.append(slide)
        self.records += records
        for listener in list(self._listeners):
            listener(self)

    def save_session(self, path: str | Path, truth: LayerRecord | None = None) -> Path:
        """The session file of what the runs added (``*.cpadv.json``), with the ground
        truth they were measured against (``truth``) after the slide."""
        slides = [rec for rec in self.records if rec.kind == "slide"]
        if not slides:
            raise ValueError("nothing to save yet: run an attack first")
        records = list(self.records)
        if truth is not None:
            records.insert(1, truth)
        return write_session(path, slides[0].path, records)


_SHARED: weakref.WeakKeyDictionary[Any, Workbench] = weakref.WeakKeyDictionary()


def shared(viewer: Any) -> Workbench:
    """The state the docks of ``viewer`` share (made on first use, gone with the viewer)."""
    state = _SHARED.get(viewer)
    if state is None:
        state = _SHARED[viewer] = Workbench()
    return state
