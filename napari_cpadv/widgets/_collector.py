"""Python's cyclic garbage collector kept from stalling the viewer.

With napari, Qt, torch and the plugin loaded, the interpreter tracks about half a million
objects, and a full collection, which Python starts on its own on whichever thread happens
to allocate and which holds the GIL throughout, stalls napari's GUI thread for 0.2-0.4 s
on a 2-core machine. It was the longest stall left in an attack run once the run's layers
went in one per turn: the worker computing AUC-PR set it off. ``gc.freeze`` (CPython's own
remedy for a large long-lived heap) moves the objects alive now out of every later
collection, so a collection walks only what was made since. No library does this for a
napari session, hence this module.

The heap is frozen only while a cpadv dock is on screen (``watch``: its first show
settles, a collection and a freeze), and settled again when a run finishes
(``_work.start``), which is cheap once most of it is frozen. A removed layer that was
frozen with the rest cannot be reclaimed by napari's own collection during its removal
(its canvas calls ``gc.collect()``), nor by one right after, since napari deletes the
layer's Qt controls a turn later; so a burst of such removals is followed, 50 ms after its
last, by one full collection of the unfrozen heap (about what napari's own collection at
each removal cost before) and a new freeze. A layer made since the last freeze (side by
side's panels, say) needs none. A watched dock that is hidden (closed, tabbed away, or its
window closing) releases everything at once, so a closed viewer is collected as ever. What
a run leaves as cyclic garbage after its settle waits for the next release; garbage
without cycles goes at once, as always.

``warm_units`` keeps another stall off a user's wait: napari's unit registry, built
before the first layer needs it.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from qtpy.QtCore import QEvent, QObject, QTimer

_SHOWN: set[int] = set()  # the watched docks on screen now
_VIEWERS: weakref.WeakSet[Any] = weakref.WeakSet()  # the viewers of watched docks
_FROZEN: weakref.WeakSet[Any] = weakref.WeakSet()  # their layers at the last freeze


def settle() -> None:
    """Collect what is garbage now, then freeze what lives out of later collections;
    nothing while no watched dock is on screen."""
    if _SHOWN:
        gc.collect()
        gc.freeze()
        _FROZEN.clear()
        for viewer in _VIEWERS:
            _FROZEN.update(viewer.layers)


def release() -> None:
    """Hand every frozen object back to the collector."""
    gc.unfreeze()


def watch(dock: QObject, viewer: Any) -> None:
    """Keep full collections short while ``dock`` is on screen (every cpadv dock calls
    it): settled when it is shown and after a frozen layer of ``viewer`` is removed,
    released when it is hidden."""
    dock.installEventFilter(_Watcher(dock))
    if viewer not in _VIEWERS:
        _VIEWERS.add(viewer)
        viewer.layers.events.removed.connect(_after_removal)


_LATER: list[QTimer] = []


def _after_removal(event: Any = None) -> None:
    """Reclaim a removed layer that was frozen once Qt has let go of it (napari deletes its
    controls a turn later): one full collection 50 ms after the last removal of a burst.
    A layer made since the last freeze needs none: a short collection will reclaim it."""
    if getattr(event, "value", None) not in _FROZEN:
        return
    if not _LATER:
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(_resettle)
        _LATER.append(timer)
    _LATER[0].start(50)


def _resettle() -> None:
    release()
    settle()


class _Watcher(QObject):
    """A dock's show and hide events, for ``watch`` (its child: gone with it)."""

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:
        if event is not None and event.type() == QEvent.Type.Show:
            first = not _SHOWN
            _SHOWN.add(id(obj))
            if first:
                settle()
        elif event is not None and event.type() == QEvent.Type.Hide:
            _SHOWN.discard(id(obj))
            release()
        return False


def warm_units() -> None:
    """Build pint's unit registry, which napari builds lazily on a process's first layer
    (0.35 s here, 0.7 s on a busy machine): called on the GUI thread while the user is
    still filling in a dock, so that the first layer added later does not pay for it
    (pint's lazy registry swaps its class as it builds: not safe to build off the GUI
    thread while napari may touch it)."""
    import pint

    pint.get_application_registry().pixel  # noqa: B018 (the access builds it)
