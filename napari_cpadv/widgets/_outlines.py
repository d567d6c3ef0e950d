"""Annotation outlines a constant width on screen, and a ground truth out of the way."""

from __future__ import annotations

import weakref
from typing import Any

_tended: Any = weakref.WeakSet()  # viewers whose outlines are kept thin


def keep_outlines_thin(viewer: Any = None) -> None:
    """In ``viewer`` (default: the current one), keep every annotation layer's outline
    ``OUTLINE_PX`` screen pixels wide at every zoom, and open a ground truth locked and
    not selected: the slide stays the active layer, so a stray click cannot move a
    vertex of the reference.

    napari draws Shapes edges in data units and has no screen-space width, so the width is
    reset when the zoom takes it outside 1-2.5 screen pixels (a few times per zoom gesture,
    not at every event: re-triangulating thousands of outlines costs time).
    """
    import napari

    viewer = viewer if viewer is not None else napari.current_viewer()
    if viewer is None or viewer in _tended:
        return
    _tended.add(viewer)
    cam = getattr(viewer, "scene", viewer).camera  # napari 0.9 moved it

    def fit(*_: Any) -> None:
        zoom = float(cam.zoom)
        for layer in list(viewer.layers):
            px = layer.metadata.get("cpadv_outline_px")
            widths = getattr(layer, "edge_width", None)
            if not px or widths is None or not len(layer.data):
                continue
            world = float(layer.scale[-1])  # world units per data unit
            now = float(min(widths)) * world * zoom
            if not 1.0 <= now <= 2.5:
                layer.edge_width = px / (world * zoom)
                layer.current_edge_width = px / (world * zoom)

    def inserted(event: Any) -> None:
        layer = event.value
        if not layer.metadata.get("cpadv_outline_px"):
            return
        fit()
        if layer.name.startswith("ground truth"):
            layer.locked = True
            layer.mode = "pan_zoom"
            from qtpy.QtCore import QTimer

            slides = [la for la in viewer.layers if "cpadv_slide_path" in la.metadata]
            if slides:  # after napari has selected the new layer
                QTimer.singleShot(0, lambda: _select(viewer, slides[0]))

    cam.events.zoom.connect(fit)
    viewer.layers.events.inserted.connect(inserted)


def _select(viewer: Any, layer: Any) -> None:
    if layer in viewer.layers:
        viewer.layers.selection.active = layer


def tile_outlines(viewer: Any, slide: Any, tiles: list[list[int]], name: str) -> Any:
    """The level-0 ``[x, y, w, h]`` ``tiles`` as a locked Shapes layer ``name`` over the
    ``slide`` layer (replacing one of that name), outlined 2 screen pixels wide at every
    zoom as the ground truth is; the slide stays the active layer."""
    um = slide.scale[-2:]
    rects = [[[y * um[0], x * um[1]], [(y + h) * um[0], (x + w) * um[1]]] for x, y, w, h in tiles]
    if name in viewer.layers:
        viewer.layers.remove(name)
    outlines = viewer.add_shapes(
        rects,
        shape_type="rectangle",
        name=name,
        edge_color="cyan",
        face_color="transparent",
        units=slide.units,
        metadata={"cpadv_preview": True, "cpadv_outline_px": 2.0},
    )
    keep_outlines_thin(viewer)
    outlines.locked = True
    viewer.layers.selection.active = slide
    return outlines
