"""Every dock on a 1366 x 768 screen: each control reachable, none squashed, each with a
tooltip (issue 16, items 6 and 7)."""

from __future__ import annotations

import pytest
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QListWidget,
    QScrollArea,
    QTableWidget,
)

from napari_cpadv.widgets.attack import AttackWidget
from napari_cpadv.widgets.detect import DetectWidget
from napari_cpadv.widgets.export import ExportWidget
from napari_cpadv.widgets.plots import PlotsWidget
from napari_cpadv.widgets.study_analyze import StudyAnalysisWidget
from napari_cpadv.widgets.study_build import StudyBuilderWidget
from napari_cpadv.widgets.study_read import StudyReaderWidget

from ..conftest import SAMPLE

pytestmark = pytest.mark.gui

CONTROLS = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QTableWidget, QListWidget)
INNER = ("QAbstractSpinBox", "QTableView", "QComboBox")  # their own parts


def controls(widget):
    return [
        c
        for c in widget.findChildren(CONTROLS)
        if c.isVisibleTo(widget) and not any(c.parent().inherits(k) for k in INNER)
    ]


@pytest.mark.parametrize(
    "dock",
    [
        DetectWidget,
        AttackWidget,
        PlotsWidget,
        ExportWidget,
        StudyBuilderWidget,
        StudyReaderWidget,
        StudyAnalysisWidget,
    ],
)
def test_every_dock_fits_1366_x_768_with_a_tooltip_on_every_control(
    dock, make_napari_viewer, qtbot
):
    viewer = make_napari_viewer(show=True)
    viewer.open(SAMPLE, plugin="napari-cpadv")
    w = dock(viewer)
    viewer.window.add_dock_widget(w, name=dock.__name__)
    viewer.window._qt_window.resize(1366, 768)  # the window napari is shown in
    qtbot.wait(50)
    found = controls(w)
    assert found
    untold = [
        f"{type(c).__name__} {getattr(c, 'text', lambda: '')()!r}" for c in found if not c.toolTip()
    ]
    assert not untold, untold
    area = w.findChild(QScrollArea)
    assert area is not None and w.height() <= 768
    for c in found:
        area.ensureWidgetVisible(c)
        qtbot.wait(1)
        assert not c.visibleRegion().isEmpty(), c.toolTip()
        assert c.width() >= min(c.minimumSizeHint().width(), 60), c.toolTip()
