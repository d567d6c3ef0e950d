"""What the docks read from the viewer: the slide layer, the visible box, a drawn rectangle,
notifications."""

from __future__ import annotations

from typing import Any

import numpy as np

REGION_LAYER = "detect region"
WARN_STYLE = "color: #e0a030"  # a control whose value is likely a mistake


def slide_layer(viewer: Any) -> Any:
    """The slide to work on: the selected layer if it is an original slide, else the first."""
    active = viewer.layers.selection.active
    slides = [
        la
        for la in viewer.layers
        if "cpadv_slide_path" in la.metadata and not la.metadata.get("cpadv_adversarial")
    ]
    if active is not None and active in slides:
        return active
    return slides[0] if slides else None


def show_scale(layer: Any) -> Any:
    """A heatmap layer with its colour bar (the probability scale, 0 to 1) in the canvas's
    corner on a backdrop; shown while the layer is."""
    layer.colorbar.visible = True
    layer.colorbar.box = True
    return layer


def same_layer(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are one layer. napari hands a plugin's dock a proxy of the
    viewer (``PublicOnlyProxy``), whose layers are proxies too, so ``is`` never matches a
    layer an event carries; the layer's ``unique_id`` is the same through the proxy."""
    if a is None or b is None:
        return False
    return bool(getattr(a, "unique_id", object()) == getattr(b, "unique_id", object()))


def still_open(viewer: Any, layer: Any) -> bool:
    """Whether ``layer`` is still in ``viewer`` (compared as ``same_layer`` does)."""
    return any(same_layer(la, layer) for la in viewer.layers)


def camera(viewer: Any) -> Any:
    return getattr(viewer, "scene", viewer).camera  # napari 0.9 moved it


def box(viewer: Any, layer: Any, scope: str) -> tuple[float, float, float, float] | None:
    """The view or the last drawn rectangle (a Shapes layer named ``REGION_LAYER``) in
    level-0 pixels ``(r0, c0, r1, c1)``; None when there is no rectangle."""
    per_px = np.asarray(layer.scale[-2:], dtype=float)  # world units per level-0 pixel
    if scope == "view":
        cam = camera(viewer)
        half = np.asarray(viewer.canvas.size, dtype=float)[-2:] / (2 * cam.zoom)
        centre = np.asarray(cam.center, dtype=float)[-2:]
        (r0, c0), (r1, c1) = (centre - half) / per_px, (centre + half) / per_px
        return r0, c0, r1, c1
    found = boxes(viewer, layer, selected=False)
    return found[-1] if found else None


def boxes(
    viewer: Any, layer: Any, *, selected: bool = True, name: str = REGION_LAYER
) -> list[tuple[float, float, float, float]]:
    """Level-0 boxes ``(r0, c0, r1, c1)`` of the shapes in the Shapes layer ``name``: the
    selected ones (all when none is selected, or with ``selected=False``)."""
    if name not in viewer.layers or not len(viewer.layers[name].data):
        return []
    shapes = viewer.layers[name]
    per_px = np.asarray(layer.scale[-2:], dtype=float)
    chosen = sorted(shapes.selected_data) if selected else []
    out = []
    for i in chosen or range(len(shapes.data)):
        world = (
            np.asarray(shapes.data[i], dtype=float)[:, -2:] * shapes.scale[-2:]
            + shapes.translate[-2:]
        )
        px = world / per_px
        out.append((*px.min(axis=0), *px.max(axis=0)))
    return out


def ground_truth(viewer: Any) -> Any:
    """Annotations of the first layer named ``ground truth…``, or None."""
    from napari_cpadv._annotation_layers import annotations_from_shapes

    truth = [la for la in viewer.layers if la.name.startswith("ground truth")]
    if not truth:
        return None
    data, attrs, _ = truth[0].as_layer_data_tuple()
    return annotations_from_shapes(data, attrs)


TOAST_MS = 10_000  # how long a dock's error stays on the canvas


def _toasts() -> list[Any]:
    """napari's notification toasts now on a canvas. (napari keeps them in a private list:
    its own public API neither lists nor closes them.)"""
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # another napari layout: nothing to list
        return []
    alive = []
    for toast in list(getattr(NapariQtNotification, "_instances", [])):
        try:
            toast.isVisible()
        except RuntimeError:  # a closed window's toast, deleted under napari's list
            continue
        alive.append(toast)
    return alive


def clear_toasts() -> None:
    """Close every toast on the canvas (reader mode: nothing over the case)."""
    for toast in _toasts():
        toast.close()


def notify(status: Any, message: str) -> None:
    """``message`` in the dock's status line and as a toast on the canvas that closes
    after ``TOAST_MS`` (napari's own stay while its window is not the active one, and a
    newer toast holds the older ones: minutes, over the image)."""
    from napari.utils.notifications import show_error
    from qtpy.QtCore import QTimer

    status.setText(message)
    before = {id(t) for t in _toasts()}
    show_error(message)
    for toast in _toasts():
        if id(toast) not in before:
            timer = QTimer(toast)  # owned by the toast: gone with it
            timer.setSingleShot(True)
            timer.timeout.connect(toast.close)
            timer.start(TOAST_MS)


class RunControls:
    """What every running dock has: a detector picker (shipped names, a weights file) and
    Run, Cancel, a progress bar and a status line."""

    def __init__(self) -> None:
        from qtpy.QtWidgets import QComboBox, QLabel, QLineEdit, QProgressBar, QPushButton

        from napari_cpadv.models.detector import NAMES

        self.detector = QComboBox()
        self.detector.addItems(NAMES)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("shipped weights (painted slides)")
        from napari_cpadv.widgets._weights_field import offer_weights

        field = self.weights  # not self: the docks keep the widgets, not this object
        self.detector.currentTextChanged.connect(lambda name: offer_weights(field, name))
        offer_weights(field, self.detector.currentText())
        self.run = QPushButton("Run")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)


def shapes_layers(viewer: Any) -> list[Any]:
    """The viewer's Shapes layers a region can come from (not the tile preview)."""
    from napari.layers import Shapes

    return [
        la
        for la in viewer.layers
        if isinstance(la, Shapes)
        and not la.metadata.get("cpadv_preview")
        and not la.name.startswith("ground truth")
    ]


def draw_region(viewer: Any) -> Any:
    """Select the region layer (made when missing) in rectangle-drawing mode: the napari way
    to draw where to work."""
    if REGION_LAYER in viewer.layers:
        layer = viewer.layers[REGION_LAYER]
    else:
        slide = slide_layer(viewer)
        layer = viewer.add_shapes(
            name=REGION_LAYER,
            edge_color="yellow",
            face_color="transparent",
            ndim=2,
            units=tuple(slide.units) if slide is not None else ("pixel", "pixel"),
        )
    viewer.layers.selection.active = layer
    layer.mode = "add_rectangle"
    return layer


class LevelPicker:
    """A combo box of the levels the slide has, each with its size and µm per pixel."""

    def __init__(self, default: int) -> None:
        from qtpy.QtWidgets import QComboBox

        self.default = default
        self._slide: tuple[str, Any] | None = None  # the open slide behind the warning
        self.combo = QComboBox()
        self.set_levels([])

    def set_slide(self, layer: Any) -> None:
        """Offer ``layer``'s levels (a multiscale slide layer; none when it is ``None``)."""
        if layer is None:
            self.set_levels([])
            return
        data = layer.data if getattr(layer, "multiscale", False) else [layer.data]
        mpp = layer.metadata.get("mpp")
        downsamples = layer.metadata.get("downsamples") or [
            data[0].shape[0] / d.shape[0] for d in data
        ]
        levels = []
        for k, (d, ds) in enumerate(zip(data, downsamples, strict=False)):
            scale = f"{float(mpp[0]) * ds:.2f} µm/px" if mpp else f"downsample {ds:.3g}"
            levels.append(f"{k}: {scale}, {d.shape[1]} x {d.shape[0]}")
        self.set_levels(levels)

    def set_levels(self, labels: list[str]) -> None:
        current = self.level() if self.combo.count() else self.default
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(labels or [f"{self.default}: open a slide"])
        self.combo.setCurrentIndex(min(current, self.combo.count() - 1) if labels else 0)
        self.combo.blockSignals(False)

    def level(self) -> int:
        text = self.combo.currentText()
        return int(text.split(":")[0]) if text else self.default

    def warn(self, layer: Any, detector: str, weights: str | None, tip: str) -> str | None:
        """Flag the level (tooltip, colour) when ``layer``'s slide is far from what
        ``detector``'s weights learnt from (real tissue for painted training slides, cells
        at another size: ``inference.detect.resolution_warning``), else say in the tooltip
        what they learnt from; returns the warning, or ``None``. The slide is opened once,
        not per event."""
        from napari_cpadv.errors import CpadvError
        from napari_cpadv.inference.detect import resolution_warning
        from napari_cpadv.slide import open_slide

        text = None
        if layer is not None:
            path = layer.metadata["cpadv_slide_path"]
            try:
                if self._slide is None or self._slide[0] != path:
                    self._slide = (path, open_slide(path))
                text = resolution_warning(detector, weights, self._slide[1], self.level())
            except (CpadvError, OSError):
                text = None
        self.combo.setToolTip(text or f"{tip}\n{_learnt_from(detector, weights)}")
        self.combo.setStyleSheet(WARN_STYLE if text else "")
        return text


def _learnt_from(detector: str, weights: str | None) -> str:
    """``"dae's weights learnt from synthetic (painted) slides at 0.97 µm per pixel"``."""
    from napari_cpadv.errors import CpadvError
    from napari_cpadv.models.origin import training_origin, words
    from napari_cpadv.models.weights import read_config, shipped

    try:
        origin = training_origin(read_config(weights or shipped(detector)))
    except (CpadvError, OSError, ValueError):  # a weights file that is not (yet) there
        return f"{detector}'s weights do not say what they learnt from"
    return f"{detector}'s weights learnt from {words(origin)}"


def scrolling(content: Any) -> Any:
    """``content`` in a vertical scroll area, so that a dock stays usable on a small screen."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    return area


def scrolled_layout(widget: Any) -> Any:
    """The vertical layout of ``widget``'s content, which sits in a scroll area filling
    ``widget`` (every dock is built this way, to stay usable on a 1366 x 768 screen)."""
    from qtpy.QtWidgets import QVBoxLayout, QWidget

    from napari_cpadv.widgets._dock import fit

    content = QWidget()
    fit(content)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scrolling(content))
    return QVBoxLayout(content)


def pinned_layout(widget: Any) -> Any:
    """A layout below ``widget``'s scroll area (``scrolled_layout``) that stays in view
    however the content scrolls: for Run, its progress and its message."""
    from qtpy.QtWidgets import QVBoxLayout, QWidget

    bar = QWidget()
    layout = QVBoxLayout(bar)
    layout.setContentsMargins(9, 3, 9, 6)
    widget.layout().addWidget(bar)
    return layout


def grid_group(title: str, rows: list[list[Any]]) -> Any:
    """A titled group of ``rows`` of widgets on a grid (rows short enough for a dock); a
    ``None`` after a widget widens it into that column."""
    from qtpy.QtWidgets import QGridLayout, QGroupBox

    group = QGroupBox(title)
    grid = QGridLayout(group)
    for r, row in enumerate(rows):
        for c, widget in enumerate(row):
            if widget is not None:
                span = next((k for k, w in enumerate(row[c + 1 :]) if w is not None), None)
                grid.addWidget(widget, r, c, 1, span + 1 if span is not None else len(row) - c)
    return group


def tooltips(pairs: dict[Any, str]) -> None:
    """Give each widget its tooltip (what it means, its unit, its default)."""
    for widget, text in pairs.items():
        widget.setToolTip(text)


def spin(low: int, high: int, value: int) -> Any:
    """A ``QSpinBox`` from ``low`` to ``high`` showing ``value``."""
    from qtpy.QtWidgets import QSpinBox

    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    return box


def folder_row(edit: Any, parent: Any, title: str, file: str | None = None) -> Any:
    """A line edit with a Browse… button (a folder, or a file matching ``file``)."""
    from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QWidget

    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit)
    browse = QPushButton("Browse…")
    browse.setToolTip(f"Choose: {title.lower()}")
    edit.setToolTip(title)

    def pick() -> None:
        if file is None:
            got = QFileDialog.getExistingDirectory(parent, title)
        else:
            got, _ = QFileDialog.getOpenFileName(parent, title, "", file)
        if got:
            edit.setText(got)

    browse.clicked.connect(pick)
    lay.addWidget(browse)
    return row


def scope_region(viewer: Any, layer: Any, scope: str, shapes: str) -> Any:
    """The level-0 box (or boxes: selected shapes) a dock's ``scope`` means on ``layer``,
    or a message saying what is missing: tissue (the whole slide), view, the last rectangle
    of the Shapes layer ``shapes``, or its selected rectangles."""
    if scope == "tissue":
        rows, cols = layer.data[0].shape[:2]
        return (0.0, 0.0, float(rows), float(cols))
    if scope == "view":
        return box(viewer, layer, "view")
    if shapes not in viewer.layers:
        return "press Draw region and draw a rectangle on the slide"
    found = boxes(viewer, layer, selected=scope == "selected shapes", name=shapes)
    if not found:
        return f"draw a rectangle in the Shapes layer {shapes!r} (Draw region)"
    return found if scope == "selected shapes" else found[-1]
