"""The Attack dock as a first-time user meets it on the shipped sample: defaults that run,
a budget that says what it means, levels the slide has, regions drawn the napari way, the
run's layers readable at a glance, a dock that fits a laptop screen (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QScrollArea,
    QTableWidget,
)

from napari_cpadv._heatmap_layers import probability_colormap
from napari_cpadv.widgets._view import REGION_LAYER
from napari_cpadv.widgets.attack import PREVIEW_LAYER, AttackWidget
from napari_cpadv.workbench.attack import HEATMAP_PASSES, passes_per_tile

from ..conftest import SAMPLE
from ._gaps import FLOOR_RATIO, longest_gap, napari_floor

pytestmark = pytest.mark.gui

CONTROLS = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QTableWidget)


def _dock(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    layers = viewer.open(SAMPLE, plugin="napari-cpadv")
    w = AttackWidget(viewer)
    viewer.window.add_dock_widget(w, name="Attack")
    w._results.setText(str(tmp_path / "results"))
    return viewer, layers[0], w


@pytest.mark.slow
def test_the_defaults_run_on_the_sample_and_the_results_read_at_a_glance(
    make_napari_viewer, qtbot, tmp_path
):
    viewer, slide, w = _dock(make_napari_viewer, tmp_path)
    w._steps.setValue(5)  # the one change from the defaults: 5 FGSM steps, not 100
    floor = napari_floor(viewer, qtbot, slide)
    gap = longest_gap(w._run.click, lambda: w._run.isEnabled(), qtbot)
    assert w.outcome is not None, w._status.text()
    print(f"longest GUI-thread gap during a default attack run: {gap:.3f} s (napari {floor:.3f})")
    assert gap <= FLOOR_RATIO * floor  # the layers go in one per turn, no collector pause
    assert w._progress.value() == w._progress.maximum()
    status = w._status.text()
    assert str(w.outcome.folder) in status and "AUC-PR" in status and "tiles fooled" in status
    names = [la.name for la in viewer.layers]
    shown = {la.name for la in viewer.layers if la.visible}
    assert "dae fgsm: adversarial slide" in shown and "dae fgsm: dae heatmap after" in shown
    hidden = {"dae fgsm: dae heatmap before"} | {n for n in names if "perturbation" in n}
    assert hidden and not hidden & shown
    assert names[-1].startswith("ground truth")  # the outline on top of the heatmaps
    assert names.index("dae fgsm: adversarial slide") == names.index(slide.name) + 1
    # side by side, on and off: the panels go in one layer per turn; the grid's paint is
    # napari's own, measured beside by toggling its grid directly. napari's toggle is
    # measured warm (its panels' tiles cached, its shaders built), so the plugin's is
    # compared warm too: its second on and off (the first, cold, printed; it had exceeded
    # the warm bound by 0.5 s in one run of eight)
    grid = viewer.canvas.grid

    def toggle(state: bool) -> float:
        return longest_gap(lambda: w._grid.setChecked(state), lambda: not w.compare.busy, qtbot)

    first = toggle(True)
    napari_off = longest_gap(lambda: setattr(grid, "enabled", False), lambda: True, qtbot)
    napari_on = longest_gap(lambda: setattr(grid, "enabled", True), lambda: True, qtbot)
    first_off = toggle(False)
    on, off = toggle(True), toggle(False)
    print(
        f"side by side on {on:.3f} s (cold {first:.3f}), off {off:.3f} s (cold {first_off:.3f});"
        f" napari {napari_on:.3f}, {napari_off:.3f}"
    )
    assert on <= napari_on + FLOOR_RATIO * floor and not w.compare.grid_enabled
    assert off <= napari_off + FLOOR_RATIO * floor
    assert first_off <= napari_off + FLOOR_RATIO * floor
    n = len(viewer.layers)
    gap = longest_gap(w._saliency.click, lambda: len(viewer.layers) == n + 2, qtbot)
    print(f"longest GUI-thread gap during saliency: {gap:.3f} s")
    assert gap <= FLOOR_RATIO * floor
    # a re-run of the same detector and attack replaces its layers: no "[1]" piles
    before = len(viewer.layers)
    w._run.click()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=600_000)
    assert len(viewer.layers) == before and not any("[" in la.name for la in viewer.layers)


def test_heatmaps_are_transparent_where_there_is_no_tumour():
    from napari.utils.colormaps import ensure_colormap

    rgba = ensure_colormap(probability_colormap()).map(np.array([0.0, 0.25, 1.0]))
    assert rgba[0, 3] == 0 and 0 < rgba[1, 3] < 1 and rgba[2, 3] == 1


def test_the_budget_says_its_unit_and_what_it_means_live(make_napari_viewer, tmp_path):
    viewer, _slide, w = _dock(make_napari_viewer, tmp_path)
    # the default: seed 000's budget per pixel (issue 31, item 4), the same on any tile
    assert w._unit_label.text() == "RMS change, in [0, 1]" and w._budget.value() == 0.0282
    assert "total L2 12.5 over a 256 x 256 x 3 tile" in w._meaning.text()
    assert "31.0 dB" in w._meaning.text() and "visible" not in w._meaning.text()
    w._tile.setValue(128)
    assert "31.0 dB" in w._meaning.text() and "visible" not in w._meaning.text()
    w._unit.setCurrentText("total")  # totals stay an explicit choice
    w._budget.setValue(25)
    assert w._unit_label.text() == "total L2 over a 128 x 128 x 3 tile"
    assert "RMS 0.113" in w._meaning.text() and "19.0 dB" in w._meaning.text()
    assert "likely visible" in w._meaning.text()  # 4x the change per pixel of 512's
    w._unit.setCurrentText("per_pixel")
    assert w._unit_label.text() == "RMS change, in [0, 1]"
    assert "cannot be reached" in w._meaning.text()
    n = len(viewer.layers)
    w._run.click()  # refused before anything runs
    assert "cannot be reached" in w._status.text() and len(viewer.layers) == n
    assert not (tmp_path / "results").exists()
    w._norm.setCurrentText("linf")
    w._budget.setValue(8)
    assert w._unit_label.text() == "grey levels of 255"
    assert "0.03137 in [0, 1]" in w._meaning.text()
    w._unit.setCurrentText("total")
    assert w._unit_label.text() == "largest change, in [0, 1]"
    assert "cannot be reached" in w._meaning.text()  # 8 in [0, 1] units


def test_levels_are_the_slides_with_their_resolution_and_a_warning(make_napari_viewer, tmp_path):
    viewer, slide, w = _dock(make_napari_viewer, tmp_path)
    items = [w._level.itemText(k) for k in range(w._level.count())]
    assert len(items) == len(slide.data) == 3 and all("µm/px" in t for t in items)
    assert w._levels.level() == 2 and w.resolution_warning is None
    assert "learnt from synthetic (painted) slides at 0.97 µm per pixel" in w._level.toolTip()
    w._level.setCurrentIndex(0)
    assert "learnt from 0.97 µm per pixel; level 0 of this slide is 0.24" in w.resolution_warning
    assert "4.0 times larger" in w._level.toolTip()
    viewer.layers.remove(slide)
    assert w._level.count() == 1 and "open a slide" in w._level.currentText()


def test_draw_region_then_preview_the_tiles_with_no_extra_column(make_napari_viewer, tmp_path):
    viewer, slide, w = _dock(make_napari_viewer, tmp_path)
    w._draw.click()
    region = viewer.layers[REGION_LAYER]
    assert viewer.layers.selection.active is region and region.mode == "add_rectangle"
    assert w._region.currentText() == "drawn region"
    assert w._shapes.currentText() == REGION_LAYER
    # a 2 x 2-tile rectangle on the level-2 grid of 128-pixel tiles, drawn in µm (floats)
    mpp = float(slide.scale[-1])
    r0, c0, side = 1024, 1536, 4 * 128 * 2
    region.add_rectangles(np.array([[r0 * mpp, c0 * mpp], [(r0 + side) * mpp, (c0 + side) * mpp]]))
    w._tile.setValue(128)
    assert w.preview_tiles() == 4
    preview = viewer.layers[PREVIEW_LAYER]
    assert len(preview.data) == 4 and "4 tiles" in w._status.text()
    assert PREVIEW_LAYER not in w._shapes.currentText()


def test_every_control_has_a_tooltip_and_is_reachable_at_1366_x_768(
    make_napari_viewer, qtbot, tmp_path
):
    viewer, _slide, w = _dock(make_napari_viewer, tmp_path)
    viewer.window._qt_window.resize(1366, 768)
    qtbot.wait(50)
    inner = ("QAbstractSpinBox", "QTableView")  # their own line edits and corner buttons
    controls = [
        c
        for c in w.findChildren(CONTROLS)
        if c.isVisibleTo(w) and not any(c.parent().inherits(k) for k in inner)
    ]
    untold = [
        type(c).__name__ + ":" + getattr(c, "text", lambda: "")()
        for c in controls
        if not c.toolTip()
    ]
    assert not untold
    area = w.findChild(QScrollArea)
    assert area is not None and w.height() <= 768
    for c in controls:
        area.ensureWidgetVisible(c)
        qtbot.wait(1)
        assert not c.visibleRegion().isEmpty(), c.toolTip()
        assert c.width() >= min(c.minimumSizeHint().width(), 60)


def _plugin_dock(viewer, name: str):
    """The dock as napari makes it from the manifest: its viewer is napari's proxy."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-cpadv", name)
    assert type(widget.viewer).__name__ == "PublicOnlyProxy"
    return widget


def test_closing_the_slide_stops_attack_and_detect_through_naparis_plugin_docks(
    make_napari_viewer, qtbot, tmp_path
):
    """Issue 31, item 1: napari hands a plugin's dock a proxy of the viewer, whose layers
    are proxies, so the slide that an event says was removed is never `is` the one the run
    holds; the runs went on over no slide (the Attack bar at 33 % five minutes later, Detect
    adding a heatmap over nothing)."""
    viewer = make_napari_viewer(show=True)
    slide, _truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    attack = _plugin_dock(viewer, "Attack")
    attack._results.setText(str(tmp_path / "results"))
    attack._steps.setValue(100_000)
    attack._tile.setValue(128)
    attack._run.click()
    qtbot.waitUntil(lambda: attack.run_folder is not None, timeout=60_000)
    viewer.layers.remove(slide)
    qtbot.waitUntil(attack._run.isEnabled, timeout=60_000)
    assert "slide was closed" in attack._status.text() and attack.outcome is None
    assert not any(la.name.startswith("dae fgsm") for la in viewer.layers)

    slide, _truth = viewer.open(SAMPLE, plugin="napari-cpadv")
    detect = _plugin_dock(viewer, "Detect")
    detect._scope.setCurrentText("tissue")  # level 0's tissue: dozens of blocks
    detect._level.setCurrentIndex(0)
    n = len(viewer.layers)
    detect._run.click()
    qtbot.waitUntil(lambda: detect._progress.value() > 0, timeout=60_000)
    viewer.layers.remove(slide)
    qtbot.waitUntil(detect._run.isEnabled, timeout=60_000)
    assert "slide was closed" in detect._status.text()
    qtbot.wait(500)
    assert len(viewer.layers) == n - 1 and not any("heatmap" in la.name for la in viewer.layers)


@pytest.mark.slow
def test_preview_says_how_long_run_takes_and_the_defaults_take_a_minute(
    make_napari_viewer, qtbot, tmp_path
):
    """Issue 31, item 3: before Run, Preview gives the tile count and an estimate timed on
    this machine; the defaults plan at most a minute's work on the sample, and the estimate
    is within a factor of two of the run it describes (here at 10 steps, to stay short)."""
    import time

    viewer, _slide, w = _dock(make_napari_viewer, tmp_path)
    viewer.reset_view()
    assert (w._region.currentText(), w._tile.value(), w._steps.value()) == ("view", 256, 100)
    tiles = w.preview_tiles()
    qtbot.waitUntil(lambda: w.estimate_s is not None, timeout=60_000)
    status = w._status.text()
    assert f"{tiles} tiles of level 2 will be attacked: about" in status and " on " in status
    # The defaults plan a minute's work on a quiet 2-core machine (one 256-pixel pass
    # there: ~0.1 s): bounded in passes, not seconds, so a busy machine cannot fail it.
    work = tiles * (passes_per_tile(w.model) + 2 * HEATMAP_PASSES)
    assert tiles > 0 and work <= 600, (work, status)
    w._steps.setValue(10)
    w.estimate_s = None
    w.preview_tiles()  # the step's seconds are kept: the estimate follows at once
    assert w.estimate_s is not None
    started = time.perf_counter()
    w._run.click()
    qtbot.waitUntil(lambda: w._run.isEnabled(), timeout=300_000)
    took = time.perf_counter() - started
    assert w.outcome is not None, w._status.text()
    print(f"estimate {w.estimate_s:.1f} s, run {took:.1f} s, {tiles} tiles")
    assert w.estimate_s / 2 <= took <= 2 * w.estimate_s


def test_an_estimate_timed_after_the_dock_closed_says_nothing(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    """The step is timed off the GUI thread; when the dock closes first, its answer must
    not reach the dock's deleted labels (a RuntimeError in Qt's event loop)."""
    import time

    from qtpy.QtCore import QCoreApplication, QEvent

    import napari_cpadv.workbench.attack as planning

    def slow_timing(*_args, **_kwargs) -> float:  # a slow machine: the dock closes first
        time.sleep(2)
        return 0.1

    monkeypatch.setattr(planning, "pass_seconds", slow_timing)
    viewer, _slide, w = _dock(make_napari_viewer, tmp_path)
    viewer.reset_view()
    w.preview_tiles()
    worker = w.estimator.worker
    assert worker is not None and w.estimate_s is None
    finished: list[bool] = []
    worker.finished.connect(lambda: finished.append(True))
    viewer.window.remove_dock_widget(w)  # the dock closed, as napari's close button does
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    with pytest.raises(RuntimeError):  # gone (PyQt's and PySide's words for it differ)
        w._status.text()
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
    qtbot.wait(100)  # the worker's answer is delivered through the event loop


OPEN_ATTACK_DOCK = """
import json, sys, time
import napari, pint
from qtpy.QtWidgets import QApplication
viewer = napari.Viewer(show=True)
registry = [type(pint.get_application_registry().get()).__name__]
viewer.window.add_plugin_dock_widget("napari-cpadv", "Study reader")
end = time.perf_counter() + 1
while time.perf_counter() < end:
    QApplication.processEvents()
    time.sleep(0.01)
registry.append(type(pint.get_application_registry().get()).__name__)  # before any layer
viewer.open(sys.argv[1], plugin="napari-cpadv")
_, w = viewer.window.add_plugin_dock_widget("napari-cpadv", "Attack")
at_open = {"attacks": w.form.attacks_found,
           "meaning": w._meaning.text(), "device": w._device.text()}
while not w.form.attacks_found:
    QApplication.processEvents()
    time.sleep(0.01)
items = [w._attack.itemText(k) for k in range(w._attack.count())]
print(json.dumps({"at_open": at_open, "items": items, "meaning": w._meaning.text(),
                  "device": w._device.text(), "attack": w._attack.currentText(),
                  "unit_registry": registry}))
"""


def test_the_attack_dock_opens_before_torch_is_imported():
    """Issue 31, item 7 (and the reader dock's unit registry, below): opening the Attack dock
    froze the window for 12.3 s on a busy machine (2.2 s quiet): finding the attacks, the
    detectors' outputs, the device and the budget's meaning imported torch on the GUI
    thread. In a fresh process (as a user opens napari), the dock opens before torch is in;
    the attack list, the device and the budget's meaning follow when the import, off the GUI
    thread, is done."""
    import json
    import subprocess
    import sys

    from napari_cpadv.attacks.registry import names

    done = subprocess.run(
        [sys.executable, "-c", OPEN_ATTACK_DOCK, str(SAMPLE)],
        capture_output=True,
        text=True,
        timeout=600,  # a safety net, not a measurement
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # (torch may be in sys.modules already: the import starts at once, off the GUI thread)
    assert out["at_open"]["attacks"] is False  # the dock did not wait for it
    assert "working out" in out["at_open"]["meaning"] and "loading" in out["at_open"]["device"]
    assert out["items"] == list(names()) and out["attack"] == "fgsm"
    assert "PSNR" in out["meaning"] and out["device"] == "device: cpu"
    # the study reader's Start paid napari's unit registry (pint, built on a process's first
    # layer): its dock builds it as it opens, while the reader types (one fresh process for
    # both docks: each costs seconds of imports)
    assert out["unit_registry"] == ["LazyRegistry", "UnitRegistry"]
