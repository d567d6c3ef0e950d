"""What the docks read from the viewer: the slide layer, the visible box, a drawn rectangle,
notifications."""

from __future__ import annotations

from typing import Any

import numpy as np

REGION_LAYER = "detect region"


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
    viewer: Any, layer: Any, *, selected: bool = True
) -> list[tuple[float, float, float, float]]:
    """Level-0 boxes ``(r0, c0, r1, c1)`` of the shapes in the ``REGION_LAYER`` Shapes
    layer: the selected ones (all when none is selected, or with ``selected=False``)."""
    if REGION_LAYER not in viewer.layers or not len(viewer.layers[REGION_LAYER].data):
        return []
    shapes = viewer.layers[REGION_LAYER]
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


def notify(status: Any, message: str) -> None:
    from napari.utils.notifications import show_error

    status.setText(message)
    show_error(message)


def find_dock(viewer: Any, cls: type) -> Any:
    """The first docked widget of type ``cls`` in the viewer's window, or None."""
    docks = getattr(getattr(viewer, "window", None), "dock_widgets", {}) or {}
    return next((w for w in docks.values() if isinstance(w, cls)), None)


class RunControls:
    """What every running dock has: a detector picker (shipped names, a weights file) and
    Run, Cancel, a progress bar and a status line."""

    def __init__(self) -> None:
        from qtpy.QtWidgets import QComboBox, QLabel, QLineEdit, QProgressBar, QPushButton

        from napari_cpadv.models.detector import NAMES

        self.detector = QComboBox()
        self.detector.addItems(NAMES)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("shipped weights")
        self.run = QPushButton("Run")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
