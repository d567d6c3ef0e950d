"""The GUI thread kept live between the steps of long actions: steps one per turn of the
event loop (``_work.in_turns``), and full garbage collections kept short while a cpadv dock
is on screen, with a removed layer still reclaimed (``widgets/_collector.py``)."""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
import pytest

from napari_cpadv.widgets._collector import settle
from napari_cpadv.widgets._work import in_turns
from napari_cpadv.widgets.plots import PlotsWidget

from ..conftest import SAMPLE
from ._gaps import gui_gaps

pytestmark = pytest.mark.gui


def _full_collection() -> float:
    t = time.perf_counter()
    gc.collect()
    return time.perf_counter() - t


def _docked(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open(SAMPLE, plugin="napari-cpadv")
    dock = PlotsWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Plots")
    qtbot.waitUntil(lambda: gc.get_freeze_count() > 0, timeout=10_000)
    return viewer, dock


def test_steps_run_one_per_turn_of_the_event_loop(qtbot):
    """Four steps of 80 ms each stall the GUI thread 80 ms at a time, not 320 ms (what
    chained zero-delay single shots did: posted events run back to back)."""
    step_s, done = 0.08, []
    with gui_gaps() as gaps:
        qtbot.wait(120)
        in_turns([lambda: time.sleep(step_s)] * 4, then=lambda: done.append(True))
        qtbot.waitUntil(lambda: bool(done), timeout=10_000)
        qtbot.wait(120)
    assert gaps.longest < 2.5 * step_s


def test_a_shown_dock_keeps_full_collections_short(make_napari_viewer, qtbot):
    gc.unfreeze()
    unfrozen = _full_collection()  # the reference, beside: napari, Qt, torch, the slide
    _viewer, dock = _docked(make_napari_viewer, qtbot)
    frozen = _full_collection()
    print(f"a full collection: {unfrozen:.3f} s, {frozen:.4f} s with a cpadv dock shown")
    assert frozen < 0.2 * unfrozen
    dock.hide()  # closed or tabbed away: everything back to the collector
    assert gc.get_freeze_count() == 0


def test_a_removed_layer_is_still_reclaimed(make_napari_viewer, qtbot):
    viewer, _dock = _docked(make_napari_viewer, qtbot)
    layer = viewer.add_image(np.zeros((64, 64)), name="opened before a run")
    settle()  # frozen with the rest, as at a run's end
    gone = weakref.ref(layer)
    del layer
    viewer.layers.remove("opened before a run")
    qtbot.waitUntil(lambda: gone() is None, timeout=10_000)
    assert gc.get_freeze_count() > 0  # and the heap frozen again after
