"""QuPath GeoJSON: a ``FeatureCollection`` of features with polygons, points and lines.

Each feature has an ``id`` and ``properties`` with ``objectType`` (``annotation``,
``detection``, ``cell``, ...), an optional ``classification`` ``{name, color}`` (the colour
always written: QuPath fails to parse a classification without it), ``name`` and
``measurements``. Other properties (QuPath's ``isLocked``, older versions' top-level
``color``, anything a tool added) are kept and written back unchanged. A bare list of
features and the legacy ``object_type`` are accepted too. Coordinates are level-0 pixels,
``(x, y)``; rings are closed in the file and open in the model.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.annotations._io import normalise_colour, rgb, warn_skipped
from napari_cpadv.annotations.model import Annotation, Geometry
from napari_cpadv.errors import FormatError
from napari_cpadv.files import write_atomic

_KINDS = {
    "annotation": "annotation",
    "detection": "detection",
    "cell": "detection",
    "tile": "detection",
    "tma_core": "annotation",
    "tma-core": "annotation",
}
_MAPPED = ("classification", "name", "measurements")
_SINGLE: dict[str, Geometry] = {"Polygon": "polygon", "Point": "points", "LineString": "line"}
_MULTI: dict[str, Geometry] = {
    "MultiPolygon": "polygon",
    "MultiPoint": "points",
    "MultiLineString": "line",
}


class _Skip(Exception):
    """A feature that is valid GeoJSON but nothing this reader shows; counted, not fatal."""


def _positions(coords: Any, p: Path, where: str, least: int) -> np.ndarray:
    """``(n, 2)`` finite positions from a list of ``[x, y(, z)]``, at least ``least`` of them."""
    if not isinstance(coords, list) or len(coords) < least:
        raise FormatError(p, f"{where} has fewer than {least} positions")
    if not all(isinstance(c, list) and 2 <= len(c) <= 4 for c in coords):
        raise FormatError(p, f"{where} is not a list of [x, y] positions")
    if not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for c in coords for v in c[:2]
    ):
        raise FormatError(p, f"{where} has a coordinate that is not a number")
    arr = np.array([c[:2] for c in coords], dtype=np.float64)
    if not np.isfinite(arr).all():
        raise FormatError(p, f"{where} has a coordinate that is not finite")
    return arr


def _parts(gtype: str, coords: Any, p: Path, where: str) -> list[list[np.ndarray]]:
    """Each part of the geometry as its list of rings (polygons) or one vertex array."""
    if gtype == "Polygon":
        return [_rings(coords, p, where)]
    if gtype == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise FormatError(p, f"{where} has no coordinates")
        return [_rings(c, p, f"{where} part {k}") for k, c in enumerate(coords)]
    if gtype == "Point":
        return [[_positions([coords], p, where, 1)]]
    if gtype == "MultiPoint":
        return [[_positions(coords, p, where, 1)]]
    if gtype == "LineString":
        return [[_positions(coords, p, where, 2)]]
    if not isinstance(coords, list) or not coords:  # MultiLineString
        raise FormatError(p, f"{where} has no coordinates")
    return [[_positions(c, p, f"{where} part {k}", 2)] for k, c in enumerate(coords)]


def _rings(coords: Any, p: Path, where: str) -> list[np.ndarray]:
    if not isinstance(coords, list) or not coords:
        raise FormatError(p, f"{where} has no coordinates")
    return [_positions(ring, p, f"{where} ring {k}", 3) for k, ring in enumerate(coords)]


def _measurements(meas: Any, p: Path, where: str) -> dict[str, float]:
    if isinstance(meas, list):  # older QuPath: [{"name": ..., "value": ...}]
        items = []
        for k, m in enumerate(meas):
            if not isinstance(m, dict) or "name" not in m or "value" not in m:
                raise FormatError(p, f"{where} measurement {k} has no name or no value")
            items.append((m["name"], m["value"]))
    elif isinstance(meas, dict):
        items = list(meas.items())
    else:
        raise FormatError(p, f"{where} has measurements that are neither an object nor a list")
    out = {}
    for name, value in items:
        if value is None or value == "NaN":  # QuPath's missing measurement
            out[str(name)] = math.nan
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(name)] = float(value)
        else:
            raise FormatError(p, f"{where} measurement {name!r} is not a number: {value!r}")
    return out


def _feature(f: Any, i: int, p: Path) -> list[Annotation]:
    where = f"feature {i}"
    if not isinstance(f, dict) or f.get("type") != "Feature":
        raise FormatError(p, f"{where} is not a GeoJSON Feature")
    geom = f.get("geometry")
    if geom is None:
        raise _Skip("no geometry")
    if not isinstance(geom, dict):
        raise FormatError(p, f"{where} has a geometry that is not an object")
    props = f.get("properties") or {}
    if not isinstance(props, dict):
        raise FormatError(p, f"{where} has properties that are not an object")
    gtype = geom.get("type")
    geometry = _SINGLE.get(gtype) or _MULTI.get(gtype)  # type: ignore[arg-type]
    if geometry is None:
        raise _Skip(f"geometry {gtype!r}")
    object_type = props.get("objectType", props.get("object_type", "annotation"))
    kind = _KINDS.get(str(object_type).lower())
    if kind is None:
        raise _Skip(f"objectType {object_type!r}")
    cls_obj = props.get("classification")
    name, colour = "", None
    if cls_obj is not None:
        if not isinstance(cls_obj, dict) or not isinstance(cls_obj.get("name", ""), str):
            raise FormatError(p, f"{where} has a classification that is not {{name, color}}")
        name = cls_obj.get("name", "")
        raw = cls_obj.get("color", cls_obj.get("colorRGB"))
        colour = None if raw is None else normalise_colour(raw, p, where)
    if "color" in props:  # older QuPath's object colour: checked, kept as it is, and the
        own = normalise_colour(props["color"], p, where)  # colour of an unclassified object
        colour = colour if cls_obj is not None else own
    meas = _measurements(props.get("measurements") or {}, p, where)
    label = props.get("name")
    if label is not None and not isinstance(label, str):
        raise FormatError(p, f"{where} has a name that is not text: {label!r}")
    fid = f.get("id")
    fid = str(fid) if isinstance(fid, (str, int)) and not isinstance(fid, bool) else None
    fid = fid or str(uuid.uuid4())
    extra = {k: v for k, v in props.items() if k not in _MAPPED}
    return [
        Annotation(
            rings[0],
            tuple(rings[1:]),
            cls=name,
            color=colour,
            kind=kind,  # type: ignore[arg-type]
            name=label or "",
            measurements=meas,
            id=fid,
            geometry=geometry,
            properties=extra,
        )
        for rings in _parts(str(gtype), geom.get("coordinates"), p, where)
    ]


def read_geojson(path: str | os.PathLike[str]) -> list[Annotation]:
    """Read QuPath GeoJSON (a FeatureCollection, a bare list of features, or one Feature).

    Polygons, points and lines are read, single or multi-part. A feature this reader does
    not show (another geometry type, no geometry, an unknown ``objectType``) is skipped,
    and one warning counts what was skipped.

    Raises
    ------
    FormatError
        Invalid JSON (a truncated file, say), nesting too deep, or a feature with bad
        coordinates, colours, names or measurements; the message names the file and the
        feature.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(
            p, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise FormatError(p, "JSON nested too deep to be GeoJSON") from None
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
    skipped: Counter[str] = Counter()
    for i, f in enumerate(features):
        try:
            out.extend(_feature(f, i, p))
        except _Skip as why:
            skipped[str(why)] += 1
    warn_skipped(p, skipped, "feature(s) that are not polygons, points or lines")
    return out


def _closed(ring: np.ndarray) -> list[list[float]]:
    pts = [[float(x), float(y)] for x, y in ring]
    return [*pts, pts[0]]


def _open(arr: np.ndarray) -> list[list[float]]:
    return [[float(x), float(y)] for x, y in arr]


def _geometry(parts: Sequence[Annotation]) -> dict[str, Any]:
    kind = parts[0].geometry
    if kind == "polygon":
        polys = [[_closed(r) for r in a.rings] for a in parts]
        if len(polys) == 1:
            return {"type": "Polygon", "coordinates": polys[0]}
        return {"type": "MultiPolygon", "coordinates": polys}
    if kind == "line":
        lines = [_open(a.exterior) for a in parts]
        if len(lines) == 1:
            return {"type": "LineString", "coordinates": lines[0]}
        return {"type": "MultiLineString", "coordinates": lines}
    points = [pt for a in parts for pt in _open(a.exterior)]
    if len(points) == 1:
        return {"type": "Point", "coordinates": points[0]}
    return {"type": "MultiPoint", "coordinates": points}


def to_geojson(annotations: Sequence[Annotation]) -> dict[str, Any]:
    """A QuPath FeatureCollection; parts sharing an ``id`` (and geometry) become one
    multi-part feature."""
    by_id: dict[tuple[str, str], list[Annotation]] = {}
    for a in annotations:
        by_id.setdefault((a.id, a.geometry), []).append(a)
    features = []
    for (fid, _), parts in by_id.items():
        first = parts[0]
        props: dict[str, Any] = dict(first.properties)
        if "objectType" not in props and "object_type" not in props:
            props["objectType"] = first.kind
        if first.cls:
            props["classification"] = {"name": first.cls, "color": rgb(first.shown_color)}
        elif first.color and "color" not in props:  # an unclassified object's own colour
            props["color"] = rgb(first.color)
        if first.name:
            props["name"] = first.name
        if first.measurements:
            props["measurements"] = {
                k: (None if math.isnan(v) else v) for k, v in first.measurements.items()
            }
        features.append(
            {"type": "Feature", "id": fid, "geometry": _geometry(parts), "properties": props}
        )
    return {"type": "FeatureCollection", "features": features}


def write_geojson(annotations: Sequence[Annotation], path: str | os.PathLike[str]) -> Path:
    """Write QuPath GeoJSON atomically."""
    return write_atomic(path, json.dumps(to_geojson(annotations), indent=1).encode())
