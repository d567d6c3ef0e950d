"""Issue 15's rule, checked where the work is done: loading weights (Attack and Detect
runs), saliency, the study analysis and a mask export run in thread workers, never on
napari's GUI thread. Each is wrapped to record the thread it ran on."""

from __future__ import annotations

import functools
import threading

import pytest

from napari_cpadv.models import weights
from napari_cpadv.widgets.detect import DetectWidget
from napari_cpadv.widgets.export import ExportWidget

from .test_attack import _rectangle, _widget, dae_weights  # noqa: F401 (a fixture)

pytestmark = pytest.mark.gui


@pytest.fixture
def threads(monkeypatch):
    """``record(module, name)`` wraps ``module.name``; ``seen[name]`` lists, per call,
    whether it ran on the GUI (main) thread."""
    seen: dict[str, list[bool]] = {}

    def record(module, name):
        original = getattr(module, name)

        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            seen.setdefault(name, []).append(threading.current_thread() is threading.main_thread())
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)

    return record, seen


def test_weights_saliency_and_exports_load_in_workers(
    make_napari_viewer,
    qtbot,
    dae_weights,  # noqa: F811 (the fixture imported above)
    tmp_path,
    threads,
):
    import napari_cpadv.attacks.saliency as saliency
    import napari_cpadv.workbench.export as export_module

    record, seen = threads
    record(weights, "load")
    record(saliency, "saliency")
    record(export_module, "write_annotation_mask")
    viewer, slide, w = _widget(make_napari_viewer, dae_weights, tmp_path)
    _rectangle(viewer, slide, (1300, 1556), (1800, 2056))
    w._on_run()
    qtbot.waitUntil(w._run.isEnabled, timeout=120_000)
    assert w.outcome is not None, w._status.text()
    w._saliency.click()
    qtbot.waitUntil(lambda: sum("saliency" in la.name for la in viewer.layers) == 2, timeout=60_000)
    export = ExportWidget(viewer)
    export.export(export._job_truth_mask, tmp_path / "truth.tif")
    qtbot.waitUntil(lambda: "wrote" in export._status.text(), timeout=60_000)
    detect = DetectWidget(viewer)
    detect._weights.setText(dae_weights)
    detect._on_run()
    qtbot.waitUntil(detect._run.isEnabled, timeout=120_000)
    assert seen["load"] and seen["saliency"] and seen["write_annotation_mask"]
    assert not any(on_gui for calls in seen.values() for on_gui in calls), seen


def test_the_study_analysis_runs_in_a_worker(make_napari_viewer, qtbot, tmp_path, threads):
    import napari_cpadv.study.analyze as analyze_module
    from napari_cpadv.widgets.study_analyze import StudyAnalysisWidget
    from tests.study.conftest import key_of, make_study

    record, seen = threads
    record(analyze_module, "analyze")
    study = make_study(tmp_path)
    analysis = StudyAnalysisWidget(make_napari_viewer())
    analysis.folder.setText(str(study))
    analysis.key.setText(str(key_of(study)))
    analysis.run_button.click()
    qtbot.waitUntil(analysis.run_button.isEnabled, timeout=60_000)
    assert seen["analyze"] == [False], analysis.status.text()


def test_the_study_analysis_leaves_the_gui_live(make_napari_viewer, qtbot, tmp_path):
    """Verifying and unblinding in a worker, the report shown after: the GUI thread stalls
    no longer than napari's own add of a slide-like layer (the reference, beside)."""
    from napari_cpadv.widgets.study_analyze import StudyAnalysisWidget
    from tests.study.conftest import key_of, make_study
    from tests.study.test_analyze import _read

    from ..conftest import SAMPLE
    from ._gaps import FLOOR_RATIO, longest_gap, napari_floor

    study = make_study(tmp_path, n=8, readers=["A", "B"])
    for reader in ("A", "B"):  # every case answered: the analysis runs in full
        _read(study, reader, lambda k: {"tumour": "yes" if k["truth"] else "no"}, lambda k: 900)
    viewer = make_napari_viewer(show=True)
    (slide, _truth) = viewer.open(SAMPLE, plugin="napari-cpadv")
    analysis = StudyAnalysisWidget(viewer)
    viewer.window.add_dock_widget(analysis, name="Study analysis")
    analysis.folder.setText(str(study))
    analysis.key.setText(str(key_of(study)))
    floor = napari_floor(viewer, qtbot, slide)
    gap = longest_gap(analysis.run_button.click, analysis.run_button.isEnabled, qtbot)
    assert "Written to" in analysis.status.text(), analysis.status.text()
    print(f"longest GUI-thread gap during the study analysis: {gap:.3f} s (napari {floor:.3f})")
    assert gap <= FLOOR_RATIO * floor
