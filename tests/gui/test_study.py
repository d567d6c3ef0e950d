"""The study docks on a real viewer: a whole small study read with the keyboard, blinding
of what the reader sees, resume, corrections, view tracking, building and analysing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QPushButton

from napari_cpadv.study.log import read_log
from napari_cpadv.study.read import Study
from napari_cpadv.widgets.export import ExportWidget
from napari_cpadv.widgets.study_analyze import StudyAnalysisWidget
from napari_cpadv.widgets.study_build import StudyBuilderWidget
from napari_cpadv.widgets.study_read import StudyReaderWidget
from tests.study.conftest import code, key_of, make_pairs, make_study, secret

pytestmark = pytest.mark.gui


def _key(study_dir):
    return json.loads(key_of(study_dir).read_text())["tokens"]


def events_before_end(study):
    return read_log(study.log_path("path01"), study.hash, secret(study, "path01")).events


def _press(owner, key):
    """Call what ``owner``'s own keymap binds to ``key`` (what napari does on a key press
    with the canvas focused)."""
    fn = next(f for k, f in owner.keymap.items() if str(k).upper() == key)
    fn(owner)


def _reader(make_napari_viewer, study_dir, reader="path01", *, other_dock=True):
    viewer = make_napari_viewer()
    if other_dock:
        viewer.window.add_dock_widget(ExportWidget(viewer), name="Export")
    w = StudyReaderWidget(viewer)
    viewer.window.add_dock_widget(w, name="Study reader")
    assert w.start(str(study_dir), reader, code(study_dir, reader))
    return viewer, w


def test_a_whole_study_read_with_the_keyboard_and_blind(make_napari_viewer, qtbot, tmp_path):
    study_dir = make_study(tmp_path, n=3, questions=["tumour", "confidence"])
    study, key = Study(study_dir), _key(study_dir)
    viewer, w = _reader(make_napari_viewer, study_dir)
    qt = viewer.window._qt_viewer
    title = viewer.window._qt_window.windowTitle()
    assert qt.dockLayerList.isHidden() and qt.dockLayerControls.isHidden()
    export_dock = viewer.window._wrapped_dock_widgets["Export"]
    assert (
        export_dock.isHidden()
        and not viewer.window._wrapped_dock_widgets["Study reader"].isHidden()
    )

    seen, pressed = [], {}
    inserted = []
    viewer.layers.events.inserted.connect(lambda e: inserted.append(e.value.name))
    case_layer = viewer.layers[0]
    for n in range(len(study.order)):
        assert len(viewer.layers) == 1
        layer = viewer.layers[0]
        token = layer.name
        assert token == study.order[n] and w.progress.text() == f"Case {n + 1} of 12"
        # each case in the one case layer (a layer add per case stalled napari 0.2-0.4 s),
        # showing the case's own pixels
        assert layer is case_layer
        assert np.array_equal(layer.data, tifffile.imread(study.image(token)))
        # what the reader can see carries nothing of the condition
        seen.append(
            (dict(layer.metadata), layer.source.path, viewer.window._qt_window.windowTitle())
        )
        assert str(tmp_path) not in seen[-1][2] and token not in seen[-1][2]
        if n == 0:  # Enter before answering: refused, the case stays
            qtbot.keyClick(w, Qt.Key.Key_Return)
            assert "first" in w.status.text() and viewer.layers[0].name == token
        answer = "Y" if key[token]["truth"] else "N"
        conf = str(1 + n % 5)
        if n == 1:  # with the canvas focused: the case layer's own key bindings
            _press(layer, answer)
            _press(layer, conf)
        else:
            qtbot.keyClicks(w, answer.lower() + conf)
        pressed[token] = ("yes" if answer == "Y" else "no", int(conf))
        qtbot.keyClick(w, Qt.Key.Key_Return)
        if n == 4:  # a layer from elsewhere is removed at once
            viewer.add_image(np.zeros((4, 4)), name="heatmap")
            qtbot.waitUntil(lambda: [la.name for la in viewer.layers] == [study.order[5]])

    assert inserted == ["heatmap"]  # the foreign layer alone: no case added a layer
    assert len({(str(m), p, t) for m, p, t in seen}) == 1  # identical for every case
    assert seen[0] == ({}, None, title)
    assert "All 12 cases answered" in w.status.text()
    # the receipt on top of the dock, selectable, and copied by its button
    receipt = w.receipt_text.text()
    assert receipt.startswith(f"path01:{len(events_before_end(study)) - 1}:")
    assert not w.receipt_panel.isHidden() and w.receipt_text.isReadOnly()
    w.receipt_text.selectAll()
    assert w.receipt_text.selectedText() == receipt
    copy = next(b for b in w.receipt_panel.findChildren(QPushButton) if b.text() == "Copy")
    copy.click()
    assert QApplication.clipboard().text() == receipt
    assert len(viewer.layers) == 0 and w.session is None
    assert viewer.window._qt_window.windowTitle() == "napari"
    assert not export_dock.isHidden() and not qt.dockLayerList.isHidden()
    events = read_log(study.log_path("path01"), study.hash, secret(study, "path01")).events
    got = {e["token"]: (e["answers"]["tumour"], e["answers"]["confidence"])
           for e in events if e["event"] == "answer"}  # fmt: skip
    assert got == pressed
    assert [e["event"] for e in events][-1] == "session_end" and events[-1]["complete"]
    assert "Y" not in viewer.keymap and all(
        str(k).upper() != "Y" for k in viewer.keymap
    )  # key bindings given back


def test_resume_pause_and_refusals(make_napari_viewer, qtbot, tmp_path):
    study_dir = make_study(tmp_path, n=3)
    viewer, w = _reader(make_napari_viewer, study_dir, other_dock=False)
    for _ in range(3):
        qtbot.keyClicks(w, "n")
        qtbot.keyClick(w, Qt.Key.Key_Return)
    qtbot.keyClick(w, Qt.Key.Key_P)
    assert not viewer.layers[0].visible and w.session.paused
    qtbot.keyClicks(w, "y")
    assert "tumour" not in w.pending  # no answering while paused
    qtbot.keyClick(w, Qt.Key.Key_P)
    assert viewer.layers[0].visible
    assert not w.back_button.isVisible()  # this study allows no corrections
    w.stop()
    assert "3 of 12 answered and saved" in w.status.text()
    w2 = StudyReaderWidget(viewer)
    viewer.add_image(np.zeros((4, 4)))
    mine = code(study_dir, "path01")
    assert not w2.start(str(study_dir), "path01", mine) and "empty viewer" in w2.status.text()
    viewer.layers.clear()
    assert not w2.start(str(study_dir), "path01", code(study_dir, "r1"))
    assert "not path01's code" in w2.status.text()
    assert w2.start(str(study_dir), "path01", mine)
    assert w2.progress.text() == "Case 4 of 12"
    assert viewer.layers[0].name == Study(study_dir).order[3]
    w2.stop()
    w3 = StudyReaderWidget(viewer)
    assert not w3.start(str(study_dir), "../x", mine) and "reader id" in w3.status.text()
    # Start with nothing typed: the fields, not "." (it said ".: holds no study")
    w4 = StudyReaderWidget(viewer)
    w4.start_button.click()
    assert w4.status.text().startswith("Study folder and reader not given")
    w4.folder.setText(str(study_dir))
    w4.start_button.click()
    assert w4.status.text().startswith("Reader not given") and w4.session is None


def test_corrections_and_view_tracking(make_napari_viewer, qtbot, tmp_path):
    study_dir = make_study(tmp_path, n=3, allow_corrections=True, view_tracking=0.5)
    study = Study(study_dir)
    viewer, w = _reader(make_napari_viewer, study_dir, other_dock=False)
    assert w._timer.isActive() and w._timer.interval() == 500
    viewer.camera.zoom *= 2
    w.sample_view()
    w.sample_view()  # unchanged: no second sample
    qtbot.keyClicks(w, "n")
    qtbot.keyClick(w, Qt.Key.Key_Return)
    qtbot.keyClicks(w, "b")  # back to the first case
    assert viewer.layers[0].name == study.order[0] and w.progress.text() == "Case 1 of 12"
    qtbot.keyClicks(w, "y")
    qtbot.keyClick(w, Qt.Key.Key_Return)
    assert viewer.layers[0].name == study.order[1]  # on to the first unanswered case
    w.stop()
    events = read_log(study.log_path("path01"), study.hash, secret(study, "path01")).events
    views = [e for e in events if e["event"] == "view"]
    assert len(views) == 1 and views[0]["token"] == study.order[0] and views[0]["zoom"] > 0
    revised = [e for e in events if e["event"] == "answer_revised"]
    assert len(revised) == 1 and revised[0]["answers"] == {"tumour": "yes"}


def _build(qtbot, builder):
    worker = builder.build()
    if worker is not None:
        qtbot.waitUntil(builder.build_button.isEnabled, timeout=60_000)
    return builder.manifest


def test_build_then_analyse_from_the_docks(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    builder = StudyBuilderWidget(viewer)
    assert _build(qtbot, builder) is None and "Add the pairs" in builder.status.text()
    builder.sources.addItem(str(make_pairs(tmp_path / "pairs", 3)))
    builder.out.setText(str(tmp_path / "study"))
    assert _build(qtbot, builder) is None and "enrol the readers" in builder.status.text()
    builder.readers.setText("path01")
    builder.questions["altered"].setChecked(True)
    builder.seed.setValue(11)
    manifest = _build(qtbot, builder)
    assert manifest is not None and "12 presentations" in builder.status.text()
    assert f"path01: {code(tmp_path / 'study', 'path01')}" in builder.status.text()
    assert builder.progress.value() == builder.progress.maximum() > 0
    m = json.loads(manifest.read_text())
    assert list(m["questions"]) == ["tumour", "altered"] and m["seed"] == 11
    assert _build(qtbot, builder) is None and "written once" in builder.status.text()
    builder.apply_preset({"questions": ["tumour"], "replicates": 2, "min_gap": 2})
    assert not builder.questions["altered"].isChecked()

    reader = StudyReaderWidget(viewer)
    assert reader.start(str(tmp_path / "study"), "path01", code(tmp_path / "study", "path01"))
    while reader.session is not None:
        reader.choose("tumour", "yes")
        reader.choose("altered", "no")
        reader.submit()
    analysis = StudyAnalysisWidget(viewer)
    analysis.folder.setText(str(tmp_path / "study"))
    analysis.key.setText(str(tmp_path / "study" / "manifest.json"))
    assert analysis.analyse() is None and "not this study's key" in analysis.status.text()
    analysis.key.setText(str(key_of(tmp_path / "study")))
    summary = analysis.analyse()
    assert summary is not None
    assert summary["readers"]["path01"]["by_condition"]["original"]["tp"] == 2
    assert "McNemar" in analysis.report.toHtml()
    assert (tmp_path / "analysis" / "summary.json").is_file()  # beside the key, not in the study
    # the button analyses off the GUI thread, and says a wrong key the same way
    analysis.report.clear()
    analysis.run_button.click()
    assert not analysis.run_button.isEnabled()
    qtbot.waitUntil(analysis.run_button.isEnabled, timeout=60_000)
    assert "McNemar" in analysis.report.toHtml() and "Written to" in analysis.status.text()
    analysis.key.setText(str(tmp_path / "study" / "manifest.json"))
    analysis.run_button.click()
    qtbot.waitUntil(analysis.run_button.isEnabled, timeout=60_000)
    assert "not this study's key" in analysis.status.text()


def test_the_reader_types_a_count_at_once_reads_anchored_scales_and_is_locked_in(
    make_napari_viewer, qtbot, tmp_path
):
    """Issue 16, item 10: the count takes typing at once, the confidence scale says which
    end is sure, no private-attribute warning, menus and the console locked away."""
    import warnings

    from qtpy.QtWidgets import QDockWidget, QLabel, QMenuBar

    study_dir = make_study(tmp_path, n=2, questions=["tumour", "confidence", "count"])
    study = Study(study_dir)
    viewer = make_napari_viewer(show=True)
    viewer.window.add_dock_widget(ExportWidget(viewer), name="Export")
    w = StudyReaderWidget(viewer)
    viewer.window.add_dock_widget(w, name="Study reader")
    main = w.window()
    open_before = [d for d in main.findChildren(QDockWidget) if not d.isHidden()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert w.start(str(study_dir), "path01", code(study_dir, "path01"))
    assert not [c for c in caught if "rivate attribute" in str(c.message)]
    shown = [d for d in main.findChildren(QDockWidget) if not d.isHidden()]
    assert [d.widget() for d in shown] == [w] or all(d.isAncestorOf(w) for d in shown)
    menus = [a for bar in main.findChildren(QMenuBar) for a in bar.actions()]
    assert menus and not any(a.isEnabled() for a in menus)
    labels = [la.text() for la in w.findChildren(QLabel)]
    assert "not sure ←" in labels and "→ sure" in labels
    # the count: typed straight in, the letter keys still answer
    w._count.setFocus()
    qtbot.keyClicks(w._count, "12")
    assert w._count.value() == 12
    qtbot.keyClicks(w._count, "y")  # a letter answers its question; digits stay counts
    qtbot.keyClicks(w, "3")  # the confidence key, on the dock
    assert w._count.value() == 12 and w.pending == {"tumour": "yes", "confidence": 3}
    qtbot.keyClick(w, Qt.Key.Key_Return)
    answers = [e for e in events_before_end(study) if e["event"] == "answer"]
    assert answers[-1]["answers"] == {"tumour": "yes", "confidence": 3, "count": 12}
    assert w._count.value() == -1 and w._count.text() == ""  # the next case starts empty
    w.stop()
    assert all(not d.isHidden() for d in open_before)
    assert all(a.isEnabled() for a in menus)


def test_toasts_expire_and_reader_mode_starts_with_none(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    """Issue 31, item 6: a dock's error toast stayed on the canvas for minutes (napari's
    timers run only while its window is active, and a newer toast holds the older), in
    reader mode over the case image."""
    import napari_cpadv.widgets._view as view

    study_dir = make_study(tmp_path, n=3)
    viewer = make_napari_viewer(show=True)
    w = StudyReaderWidget(viewer)
    viewer.window.add_dock_widget(w, name="Study reader")
    monkeypatch.setattr(view, "TOAST_MS", 300)
    view.notify(w.status, "first: expires")
    qtbot.waitUntil(lambda: not [t for t in view._toasts() if t.isVisible()], timeout=5_000)
    monkeypatch.setattr(view, "TOAST_MS", 600_000)
    view.notify(w.status, "second: still up when reading starts")
    assert [t for t in view._toasts() if t.isVisible()]
    assert w.start(str(study_dir), "path01", code(study_dir, "path01"))
    assert not [t for t in view._toasts() if t.isVisible()]  # nothing over the case
    w.stop()

