"""Docks that fit the 310 pixels napari gives a dock, and that share the right-hand column
as tabs (issue 31, item 2).

At 310 pixels a form row of a long label beside a combo box, or a row of four buttons, is
wider than the dock, and napari stacks each new dock under the others, leaving each one 89
to 289 pixels high. When a dock is first shown inside napari's window, ``fit`` lets its
form rows put the label above the field where they do not fit beside it, lets its combo
boxes shrink to 100 pixels (their text is elided; the full text is in the list), and
tabs it with the plugin's other docks on the same side, raised, so that each has the
whole height."""

from __future__ import annotations

from typing import Any

DOCK_PROPERTY = "napari_cpadv_dock"  # set on every dock's widget, to find its siblings
NARROW = 310  # the width napari gives a dock, in pixels
COMBO_MIN = 100  # the narrowest a combo box may become, in pixels (its text is elided)


def fit(widget: Any) -> None:
    """Make ``widget`` (a dock's content) fit ``NARROW`` pixels, and tab it with the
    plugin's other docks once it is shown inside napari's window."""
    from qtpy.QtCore import QEvent, QObject

    widget.setProperty(DOCK_PROPERTY, True)

    class _OnShow(QObject):
        def eventFilter(self, obj: Any, event: Any) -> bool:
            if event.type() == QEvent.Type.Show:
                obj.removeEventFilter(self)
                narrow(obj)
                tab_with_siblings(obj)
            return False

    widget._cpadv_on_show = _OnShow(widget)  # kept alive with the widget
    widget.installEventFilter(widget._cpadv_on_show)


def narrow(widget: Any) -> None:
    """Form rows wrap their field under the label when narrow; combo boxes may shrink."""
    from qtpy.QtWidgets import QComboBox, QFormLayout

    for form in widget.findChildren(QFormLayout):
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    for combo in widget.findChildren(QComboBox):
        # a minimum width overrides the size hint (the longest item) in every layout
        combo.setMinimumWidth(min(COMBO_MIN, combo.minimumSizeHint().width()))


def tab_with_siblings(widget: Any) -> None:
    """Tab ``widget``'s dock with the last of the plugin's other docks shown on the same
    side of the same window, and raise it (napari would stack it under them)."""
    from qtpy.QtWidgets import QMainWindow, QWidget

    from napari_cpadv.widgets._lockdown import dock_of

    dock = dock_of(widget)
    window = dock.parentWidget() if dock is not None else None
    if dock is None or dock.isFloating() or not isinstance(window, QMainWindow):
        return
    area = window.dockWidgetArea(dock)
    siblings = [
        other
        for other in window.findChildren(type(dock))
        if other is not dock
        and other.isVisible()
        and not other.isFloating()
        and window.dockWidgetArea(other) == area
        and any(w.property(DOCK_PROPERTY) for w in other.findChildren(QWidget))
    ]
    if siblings and dock not in window.tabifiedDockWidgets(siblings[-1]):
        window.tabifyDockWidget(siblings[-1], dock)
    dock.raise_()
