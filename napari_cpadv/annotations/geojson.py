"""QuPath GeoJSON: a ``FeatureCollection`` of ``Polygon``/``MultiPolygon`` features.

Each feature has a UUID ``id`` and ``properties`` with ``objectType`` (``annotation`` or
``detection``), ``classification`` ``{name, color}`` (the colour always written: QuPath
fails to parse a classification without it) and ``measurements``. A bare list of
features and the legacy ``object_type`` are accepted too. Coordinates are level-0
pixels, ``(x, y)``; rings are closed in the file and open in the model.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.annotations._io import normalise_colour, rgb, write_atomic
from napari_cpadv.annotations.model import DEFAULT_COLOURS, Annotation
from napari_cpadv.errors import FormatError

UNCLASSIFIED = "Unclassified"
_KINDS = {
    "annotation": "annotation",
    "detection": "detection",
    "cell": "detection",
    "tile": "detection",
}


def _rings(coords: Any, p: Path, where: str) -> list[np.ndarray]:
    if not isinstance(coords, list) or not coords:
        raise FormatError(p, f"{where} has no coordinates")
    rings = []
    for k, ring in enumerate(coords):
        try:
            arr = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError):
            raise FormatError(p, f"{where} ring {k} is not a list of [x, y] numbers") from None
        if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 3:
            raise FormatError(p, f"{where} ring {k} is not a list of at least 3 [x, y] positions")
        if not np.isfinite(arr).all():
            raise FormatError(p, f"{where} ring {k} has a coordinate that is not finite")
        rings.append(arr[:, :2])
    return rings


def _feature(f: Any, i: int, p: Path) -> list[Annotation]:
    where = f"feature {i}"
    if not isinstance(f, dict) or f.get("type") != "Feature":
        raise FormatError(p, f"{where} is not a GeoJSON Feature")
    geom = f.get("geometry")
    if not isinstance(geom, dict):
        raise FormatError(p, f"{where} has no geometry")
    props = f.get("properties") or {}
    if not isinstance(props, dict):
        raise FormatError(p, f"{where} has properties that are not an object")
    kind = _KINDS.get(str(props.get("objectType", props.get("object_type", "annotation"))))
    if kind is None:
        raise FormatError(p, f"{where} has unknown objectType {props.get('objectType')!r}")
    cls_obj = props.get("classification") or {}
    name = cls_obj.get("name", UNCLASSIFIED) if isinstance(cls_obj, dict) else UNCLASSIFIED
    colour = cls_obj.get("color", cls_obj.get("colorRGB")) if isinstance(cls_obj, dict) else None
    colour = (
        normalise_colour(colour, p) if colour is not None else DEFAULT_COLOURS.get(name, "#FF0000")
    )
    meas = props.get("measurements") or {}
    if isinstance(meas, list):  # older QuPath: [{"name": ..., "value": ...}]
        meas = {m["name"]: m["value"] for m in meas if isinstance(m, dict) and "name" in m}
    if not isinstance(meas, dict):
        raise FormatError(p, f"{where} has measurements that are neither an object nor a list")
    try:
        meas = {str(k): float(v) for k, v in meas.items() if v is not None}
    except (TypeError, ValueError):
        raise FormatError(p, f"{where} has a measurement that is not a number") from None
    fid = str(f.get("id") or props.get("id") or uuid.uuid4())
    gtype = geom.get("type")
    if gtype == "Polygon":
        polys = [_rings(geom.get("coordinates"), p, where)]
    elif gtype == "MultiPolygon":
        parts = geom.get("coordinates")
        if not isinstance(parts, list) or not parts:
            raise FormatError(p, f"{where} has no coordinates")
        polys = [_rings(part, p, f"{where} part {k}") for k, part in enumerate(parts)]
    else:
        raise FormatError(p, f"{where} has geometry {gtype!r}; only Polygon and MultiPolygon")
    return [
        Annotation(
            rings[0],
            tuple(rings[1:]),
            cls=str(name),
            color=colour,
            kind=kind,  # type: ignore[arg-type]
            name=str(props.get("name", "")),
            measurements=meas,
            id=fid,
        )
        for rings in polys
    ]


def read_geojson(path: str | os.PathLike[str]) -> list[Annotation]:
    """Read QuPath GeoJSON (a FeatureCollection, a bare list of features, or one Feature).

    Raises
    ------
    FormatError
        Invalid JSON (a truncated file, say), or a feature that is not a polygon with
        coordinates; the message names the file and the feature.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(
            p, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(p, f"cannot read the file ({exc})") from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    elif isinstance(doc, list):
        features = doc
    else:
        raise FormatError(
            p, "expected a GeoJSON FeatureCollection, a Feature or a list of features"
        )
    if not isinstance(features, list):
        raise FormatError(p, "'features' is not a list")
    out: list[Annotation] = []
    for i, f in enumerate(features):
        out.extend(_feature(f, i, p))
    return out


def _closed(ring: np.ndarray) -> list[list[float]]:
    pts = [[float(x), float(y)] for x, y in ring]
    return [*pts, pts[0]]


def to_geojson(annotations: Sequence[Annotation]) -> dict[str, Any]:
    """A QuPath FeatureCollection; parts sharing an ``id`` become one MultiPolygon."""
    by_id: dict[str, list[Annotation]] = {}
    for a in annotations:
        by_id.setdefault(a.id, []).append(a)
    features = []
    for fid, parts in by_id.items():
        first = parts[0]
        polys = [[_closed(r) for r in a.rings] for a in parts]
        geometry = (
            {"type": "Polygon", "coordinates": polys[0]}
            if len(polys) == 1
            else {"type": "MultiPolygon", "coordinates": polys}
        )
        props: dict[str, Any] = {
            "objectType": first.kind,
            "classification": {"name": first.cls, "color": rgb(first.color)},
        }
        if first.name:
            props["name"] = first.name
        if first.measurements:
            props["measurements"] = dict(first.measurements)
        features.append({"type": "Feature", "id": fid, "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def write_geojson(annotations: Sequence[Annotation], path: str | os.PathLike[str]) -> Path:
    """Write QuPath GeoJSON atomically."""
    return write_atomic(path, json.dumps(to_geojson(annotations), indent=1).encode())
