"""Annotations <-> napari layer data (Shapes and Labels). No napari import: plain layer tuples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.annotations.model import Annotation, exclusions_as_holes
from napari_cpadv.geometry import rowcol_to_xy, xy_to_rowcol

LayerData = tuple[Any, dict[str, Any], str]


def shapes_layer_data(
    annotations: Sequence[Annotation],
    *,
    name: str,
    mpp: tuple[float, float] | None,
    source: Path | None = None,
) -> LayerData:
    """A Shapes layer: one polygon per exterior and per hole, edges coloured by class.

    Data are level-0 pixels ``(row, col)``; ``scale`` is the slide's µm per level-0 pixel so
    the layer lies exactly on a slide opened in µm (or pixels when ``mpp`` is None).
    """
    data: list[np.ndarray] = []
    edges: list[str] = []
    props: dict[str, list[Any]] = {"class": [], "kind": [], "name": [], "hole": []}
    for a in annotations:
        for k, ring in enumerate(a.rings):
            data.append(xy_to_rowcol(ring))
            edges.append(a.color)
            props["class"].append(a.cls)
            props["kind"].append(a.kind)
            props["name"].append(a.name)
            props["hole"].append(k > 0 or a.is_exclusion)
    scale = (1.0, 1.0) if mpp is None else (mpp[1], mpp[0])
    kwargs = {
        "name": name,
        "shape_type": "polygon",
        "edge_color": edges or "yellow",
        "face_color": "transparent",
        "opacity": 1.0,
        "edge_width": _edge_width(annotations),
        "properties": props,
        "scale": scale,
        "units": ("um", "um") if mpp else ("pixel", "pixel"),
        "metadata": {"cpadv_mpp": mpp, "cpadv_source": str(source) if source else None},
    }
    return (data, kwargs, "shapes")


def _edge_width(annotations: Sequence[Annotation]) -> float:
    """Outline width in level-0 pixels (napari draws it in data units): 1/100 of the
    largest annotation, at least 2 pixels, so outlines stay visible when zoomed out."""
    if not annotations:
        return 2.0
    extent = max(max(a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]) for a in annotations)
    return max(2.0, extent / 100)


def annotations_from_shapes(
    data: Sequence[np.ndarray], attributes: dict[str, Any]
) -> list[Annotation]:
    """Shapes layer data back to annotations in level-0 pixels.

    Vertices are taken to world units with the layer's scale and divided by the slide's
    µm per pixel recorded in the layer's metadata (absent: the world is level-0 pixels).
    Shapes flagged ``hole`` become holes of the tumour polygon holding them.
    """
    scale = np.asarray(attributes.get("scale", (1.0, 1.0)), dtype=np.float64)[-2:]
    mpp = (attributes.get("metadata") or {}).get("cpadv_mpp")
    per_px = np.array([mpp[1], mpp[0]]) if mpp else np.ones(2)
    props = attributes.get("properties") or {}
    n = len(data)
    cls = list(props.get("class", ["Tumor"] * n))
    hole = list(props.get("hole", [False] * n))
    kind = list(props.get("kind", ["annotation"] * n))
    names = list(props.get("name", [""] * n))
    edges = attributes.get("edge_color")
    out = []
    for i, verts in enumerate(data):
        rc = np.asarray(verts, dtype=np.float64)[:, -2:] * scale / per_px
        colour = "#F4FA58"
        if edges is not None and len(np.shape(edges)) == 2 and i < len(edges):
            r, g, b = (round(255 * float(c)) for c in np.asarray(edges)[i][:3])
            colour = f"#{r:02X}{g:02X}{b:02X}"
        out.append(
            Annotation(
                rowcol_to_xy(rc),
                cls="_2" if hole[i] else str(cls[i]),
                color=colour,
                kind=kind[i] if kind[i] in ("annotation", "detection") else "annotation",
                name=str(names[i]),
            )
        )
    return exclusions_as_holes(out)
