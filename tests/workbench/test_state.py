"""The state the docks of one viewer share: one per viewer, listeners told of a finished
run (a closed dock's method is not kept alive), the session of what the runs added."""

from __future__ import annotations

import gc
import json
import weakref
from types import SimpleNamespace

import pytest

from napari_cpadv.workbench.session import LayerRecord
from napari_cpadv.workbench.state import Workbench, shared


class _Viewer:
    """Anything weak-referenceable stands for a viewer."""


class _Dock:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_run(self, state: Workbench) -> None:
        self.seen.append(state.outcome)


def test_one_state_per_viewer_and_a_finished_run_reaches_every_listener():
    a, b = _Viewer(), _Viewer()
    assert shared(a) is shared(a) and shared(a) is not shared(b)
    dock, heard = _Dock(), []
    shared(a).connect(dock.on_run)
    shared(a).connect(lambda state: heard.append(state.outcome))
    slide = LayerRecord("slide", "original", "/s.tif")
    shared(a).finished("run 1", slide, [LayerRecord("heatmap", "h", "/h.zarr")])
    shared(a).finished("run 2", slide, [])
    assert dock.seen == ["run 1", "run 2"] and heard == ["run 1", "run 2"]
    assert [r.kind for r in shared(a).records] == ["slide", "heatmap"]  # the slide once
    assert shared(b).outcome is None


def test_a_dock_opened_after_a_run_is_handed_it_at_once():
    state, early, late = Workbench(), _Dock(), _Dock()
    state.connect(early.on_run)
    assert early.seen == []  # nothing has run: nothing handed
    state.finished("run 1", None, [])
    state.connect(late.on_run)  # the Plots dock opened after the run
    assert late.seen == ["run 1"] and early.seen == ["run 1"]
    state.finished("run 2", None, [])
    assert late.seen == ["run 1", "run 2"] and early.seen == ["run 1", "run 2"]


def test_a_closed_dock_is_neither_kept_alive_nor_called():
    state, dock = Workbench(), _Dock()
    state.connect(dock.on_run)
    gone = weakref.ref(dock)
    del dock
    gc.collect()
    assert gone() is None  # the signal did not keep the closed dock alive
    state.finished(SimpleNamespace(), None, [])  # no error, nothing called


def test_the_session_lists_the_slide_then_the_ground_truth_then_the_run(tmp_path):
    state = Workbench()
    with pytest.raises(ValueError, match="run an attack first"):
        state.save_session(tmp_path / "s.cpadv.json")
    slide = tmp_path / "s.tif"
    slide.write_bytes(b"x")
    state.finished("run", LayerRecord("slide", "original", str(slide)), [])
    truth = LayerRecord("annotations", "ground truth", str(tmp_path / "t.xml"))
    path = state.save_session(tmp_path / "s.cpadv.json", truth)
    kinds = [layer["kind"] for layer in json.loads(path.read_text())["layers"]]
    assert kinds == ["slide", "annotations"]
