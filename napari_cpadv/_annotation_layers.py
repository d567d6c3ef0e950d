"""Annotations <-> napari layer data (Shapes, Points). No napari import: plain layer tuples.

Areas are polygons and lines are paths of one Shapes layer; points are a Points layer. Both
carry each object's class, kind, name and id as layer features, so that saving the layers
gives back the objects that were read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.annotations.model import FALLBACK_COLOUR, Annotation
from napari_cpadv.geometry import rowcol_to_xy, xy_to_rowcol

LayerData = tuple[Any, dict[str, Any], str]

# Outline width on screen: napari draws Shapes edges in data units, so the viewer keeps
# each annotation layer's width at this many screen pixels as the user zooms
# (``_reader.keep_outlines_thin``); at cell zoom a data-unit outline covered the nuclei.
OUTLINE_PX = 1.5


def annotation_layers(
    annotations: Sequence[Annotation],
    *,
    name: str,
    mpp: tuple[float, float] | None,
    source: Path | None = None,
) -> list[LayerData]:
    """A Shapes layer for areas and lines (when there are any, or nothing else) and a
    Points layer ``"<name> points"`` for points (when there are any)."""
    points = [a for a in annotations if a.geometry == "points"]
    shapes = [a for a in annotations if a.geometry != "points"]
    out = []
    if shapes or not points:
        out.append(shapes_layer_data(shapes, name=name, mpp=mpp, source=source))
    if points:
        out.append(points_layer_data(points, name=f"{name} points", mpp=mpp, source=source))
    return out


def _scale(mpp: tuple[float, float] | None) -> dict[str, Any]:
    return {
        "scale": (1.0, 1.0) if mpp is None else (mpp[1], mpp[0]),
        "units": ("um", "um") if mpp else ("pixel", "pixel"),
    }


def shapes_layer_data(
    annotations: Sequence[Annotation],
    *,
    name: str,
    mpp: tuple[float, float] | None,
    source: Path | None = None,
) -> LayerData:
    """A Shapes layer: one polygon per area, its holes drawn as holes, one path per line,
    edges coloured by class.

    napari (0.9) draws a polygon whose vertices are several closed rings, the later ones
    winding the other way, as a polygon with holes (``ring_vertices``); the ring closures
    are read back into exterior and holes by ``split_rings``.

    Data are level-0 pixels ``(row, col)``; ``scale`` is the slide's µm per level-0 pixel so
    the layer lies exactly on a slide opened in µm (or pixels when ``mpp`` is None).
    """
    data: list[np.ndarray] = []
    edges: list[str] = []
    types: list[str] = []
    props: dict[str, list[Any]] = {
        "class": [], "kind": [], "name": [], "hole": [], "id": [], "part": [],
    }  # fmt: skip
    rings_of: dict[str, int] = {}
    for a in annotations:
        if a.geometry == "points":
            raise ValueError("points belong in a Points layer (points_layer_data)")
        # (id, part) names each shape once: a shape drawn later copies the selected
        # shape's features, and its repeated (id, part) tells it apart as a new object
        props["part"].append(rings_of.setdefault(a.id, 0))
        rings_of[a.id] += 1
        data.append(ring_vertices(a) if a.holes else xy_to_rowcol(a.exterior))
        edges.append(a.shown_color)
        types.append("path" if a.geometry == "line" else "polygon")
        props["class"].append(a.cls)
        props["kind"].append(a.kind)
        props["name"].append(a.name)
        props["hole"].append(False)
        props["id"].append(a.id)
    kwargs = {
        "name": name,
        "shape_type": types or "polygon",
        "edge_color": edges or "yellow",
        "face_color": "transparent",
        "opacity": 1.0,
        "edge_width": _edge_width(annotations),
        "properties": props,
        # the class as each shape's label, off until "display text" is ticked
        "text": {"string": "{class}", "visible": False, "color": "white", "size": 10},
        **_scale(mpp),
        "metadata": {
            "cpadv_mpp": mpp,
            "cpadv_source": str(source) if source else None,
            "cpadv_outline_px": OUTLINE_PX,
        },
    }
    return (data, kwargs, "shapes")


def points_layer_data(
    annotations: Sequence[Annotation],
    *,
    name: str,
    mpp: tuple[float, float] | None,
    source: Path | None = None,
) -> LayerData:
    """A Points layer: every point of every points object, filled with its class colour."""
    data = [xy_to_rowcol(a.exterior) for a in annotations]
    per_point = [len(a.exterior) for a in annotations]

    def each(values: list[Any]) -> list[Any]:
        return [v for v, n in zip(values, per_point, strict=True) for _ in range(n)]

    props = {
        "class": each([a.cls for a in annotations]),
        "kind": each([a.kind for a in annotations]),
        "name": each([a.name for a in annotations]),
        "id": each([a.id for a in annotations]),
    }
    kwargs = {
        "name": name,
        "face_color": each([a.shown_color for a in annotations]) or "yellow",
        "border_width": 0,
        "size": max(8.0, _edge_width(annotations) * 4),
        "properties": props,
        **_scale(mpp),
        "metadata": {"cpadv_mpp": mpp, "cpadv_source": str(source) if source else None},
    }
    rows = np.concatenate(data) if data else np.zeros((0, 2))
    return (rows, kwargs, "points")


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def ring_vertices(a: Annotation) -> np.ndarray:
    """An area with holes as one napari polygon ``(row, col)``: each ring closed (its first
    vertex repeated), the holes winding against the exterior, so napari fills around them
    and draws no edge between the rings."""
    sign = np.sign(_area(a.exterior)) or 1.0
    rings = [a.exterior] + [h if np.sign(_area(h)) != sign else h[::-1] for h in a.holes]
    return np.concatenate([xy_to_rowcol(np.vstack([r, r[:1]])) for r in rings])


def split_rings(vertices: np.ndarray) -> list[np.ndarray]:
    """The rings of a polygon written by ``ring_vertices`` (each closed by repeating its
    first vertex); a polygon drawn in napari is one ring."""
    rings, start = [], 0
    while start < len(vertices):
        first = vertices[start]
        again = np.flatnonzero((vertices[start + 1 :] == first).all(axis=1))
        end = start + 1 + int(again[0]) if len(again) else len(vertices)
        rings.append(vertices[start:end])
        start = end + 1 if len(again) else end
    return [r for r in rings if len(r) >= 3] or [vertices]


def _edge_width(annotations: Sequence[Annotation]) -> float:
    """Outline width in level-0 pixels (napari draws it in data units): 1/100 of the
    largest annotation, at least 2 pixels, so outlines stay visible when zoomed out."""
    if not annotations:
        return 2.0
    extent = max(max(a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]) for a in annotations)
    return max(2.0, extent / 100)


def _to_level0(attributes: dict[str, Any]) -> np.ndarray:
    """Level-0 pixels per data unit: the layer's ``scale`` over the slide's µm per pixel
    recorded in its metadata (1 where they are the same: vertices come back exactly)."""
    scale = np.asarray(attributes.get("scale", (1.0, 1.0)), dtype=np.float64)[-2:]
    mpp = (attributes.get("metadata") or {}).get("cpadv_mpp")
    per_px = np.array([mpp[1], mpp[0]]) if mpp else np.ones(2)
    return scale / per_px


def _colours(values: Any, n: int) -> list[str | None]:
    arr = np.asarray(values) if values is not None else None
    if arr is None or arr.ndim != 2 or len(arr) < n:
        return [None] * n
    return [
        "#{:02X}{:02X}{:02X}".format(*(round(255 * float(c)) for c in arr[i][:3]))
        for i in range(n)
    ]


def _column(props: dict[str, Any], key: str, default: Any, n: int) -> list[Any]:
    values = props.get(key)
    return list(values) if values is not None and len(values) == n else [default] * n


def annotations_from_shapes(
    data: Sequence[np.ndarray], attributes: dict[str, Any]
) -> list[Annotation]:
    """Shapes layer data back to annotations in level-0 pixels.

    Vertices are taken to world units with the layer's scale and divided by the slide's
    µm per pixel recorded in the layer's metadata (absent: the world is level-0 pixels).
    A shape flagged ``hole`` is a hole of the polygon with its id (as read); drawn paths
    are lines.
    """
    factor = _to_level0(attributes)
    props = attributes.get("properties") or {}
    n = len(data)
    cls = _column(props, "class", "Tumor", n)
    hole = _column(props, "hole", False, n)
    kind = _column(props, "kind", "annotation", n)
    names = _column(props, "name", "", n)
    ids = _column(props, "id", None, n)
    parts = _column(props, "part", None, n)
    types = attributes.get("shape_type")
    types = [types] * n if isinstance(types, str) or types is None else list(types)
    colours = _colours(attributes.get("edge_color"), n)
    out: list[Annotation] = []
    by_id: dict[str, int] = {}
    seen: set[tuple[str, Any]] = set()
    for i, verts in enumerate(data):
        rows = np.asarray(verts, dtype=np.float64)[:, -2:]
        rings = split_rings(rows) if str(types[i] or "polygon") == "polygon" else [rows]
        xy = rowcol_to_xy(rings[0] * factor)
        inner = tuple(rowcol_to_xy(r * factor) for r in rings[1:])
        if ids[i] and (str(ids[i]), parts[i]) in seen:  # drawn in napari: a new object
            ids[i], hole[i] = None, False
        seen.add((str(ids[i]), parts[i]))
        owner = by_id.get(str(ids[i])) if ids[i] else None
        if hole[i] and owner is not None:
            a = out[owner]
            out[owner] = a.with_(holes=(*a.holes, xy))
            continue
        geometry = "line" if str(types[i] or "polygon") in ("path", "line") else "polygon"
        a = Annotation(
            xy,
            inner,
            cls=str(cls[i]),
            color=colours[i] or FALLBACK_COLOUR,
            kind=kind[i] if kind[i] in ("annotation", "detection") else "annotation",
            name=str(names[i]),
            geometry=geometry,  # type: ignore[arg-type]
            id=str(ids[i]) if ids[i] else str(uuid.uuid4()),
        )
        if ids[i]:
            by_id[str(ids[i])] = len(out)
        out.append(a)
    return out


def annotations_from_points(data: Any, attributes: dict[str, Any]) -> list[Annotation]:
    """Points layer data back to points objects: points sharing an id (as read) form one
    object, every other point is an object of its own."""
    factor = _to_level0(attributes)
    rows = np.asarray(data, dtype=np.float64).reshape(-1, np.shape(data)[-1] if len(data) else 2)
    xy = rowcol_to_xy(rows[:, -2:] * factor) if len(rows) else np.zeros((0, 2))
    props = attributes.get("properties") or {}
    n = len(xy)
    cls = _column(props, "class", "", n)
    kind = _column(props, "kind", "annotation", n)
    names = _column(props, "name", "", n)
    ids = _column(props, "id", None, n)
    colours = _colours(attributes.get("face_color"), n)
    groups: dict[str, list[int]] = {}
    for i in range(n):
        groups.setdefault(str(ids[i]) if ids[i] else f"#{i}", []).append(i)
    out = []
    for key, members in groups.items():
        i = members[0]
        out.append(
            Annotation(
                xy[members],
                cls=str(cls[i]),
                color=colours[i],
                kind=kind[i] if kind[i] in ("annotation", "detection") else "annotation",
                name=str(names[i]),
                geometry="points",
                id=str(uuid.uuid4()) if key.startswith("#") else key,
            )
        )
    return out
