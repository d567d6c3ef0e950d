"""What the docks of one viewer share, instead of reaching into each other: the last run's
outcome, the session records of the layers the runs added, and a psygnal signal emitted
when a run finishes (the Plots dock shows its PR curves, the Export dock exports it). A
dock connected after a run is handed the run at once, so a dock opened later is not blank."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psygnal import Signal

from napari_cpadv.workbench.session import LayerRecord, write_session


class Workbench:
    """One viewer's shared state (see the module docstring)."""

    run_finished = Signal(object)  # emitted with this Workbench after every finished run

    def __init__(self) -> None:
        self.outcome: Any = None
        self.records: list[LayerRecord] = []

    def connect(self, listener: Callable[[Workbench], None]) -> None:
        """Call ``listener(self)`` now if a run has finished, and after every finished run;
        psygnal holds a dock's method weakly, so a closed dock is not kept alive (nor
        called)."""
        self.run_finished.connect(listener)
        if self.outcome is not None:
            listener(self)

    def finished(self, outcome: Any, slide: LayerRecord | None, records: list[LayerRecord]) -> None:
        """A run finished: its outcome, the slide it ran on (recorded once) and its layers'
        records; the listeners are told."""
        self.outcome = outcome
        if slide is not None and not any(rec.kind == "slide" for rec in self.records):
            self.records.append(slide)
        self.records += records
        self.run_finished.emit(self)

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
