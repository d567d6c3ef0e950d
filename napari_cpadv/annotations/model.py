"""Annotations as the pathology tools store them: level-0 pixels, ``(x, y)``, origin top-left."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

Kind = Literal["annotation", "detection"]
Geometry = Literal["polygon", "points", "line"]
Role = Literal["tumour", "exclusion", "other"]

TUMOUR_GROUPS = ("_0", "_1", "Tumor", "Tumour", "metastases")
"""Groups and classes that mark tumour (Camelyon16 ``_0``/``_1``, Camelyon17 ``metastases``,
QuPath ``Tumor``); matched without regard to case."""
EXCLUSION_GROUPS = ("_2", "normal", "Exclusion", "Exclude")
"""Groups that mark non-tumour regions inside tumour (Camelyon16 ``_2``, Camelyon17
``normal``), painted after the tumour groups; matched without regard to case."""

_ROLES: dict[str, Role] = {
    **{g.lower(): "tumour" for g in TUMOUR_GROUPS},
    **{g.lower(): "exclusion" for g in EXCLUSION_GROUPS},
}

DEFAULT_COLOURS = {
    "Tumor": "#F4FA58",
    "_0": "#F4FA58",
    "_1": "#F4FA58",
    "metastases": "#F4FA58",
    "_2": "#64FE2E",
    "normal": "#64FE2E",
}
FALLBACK_COLOUR = "#F4FA58"


def role(cls: str) -> Role:
    """What a group or class name means for ground truth: tumour, exclusion or other."""
    return _ROLES.get(cls.strip().lower(), "other")


def _ring(points: object, geometry: str = "polygon") -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"vertices must be (n, 2) x-y positions, got shape {arr.shape}")
    if geometry == "polygon" and len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]  # stored open: the first vertex is not repeated
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Annotation:
    """One polygon with holes, in level-0 pixels, ``(x, y)`` vertices, not closed.

    Attributes
    ----------
    exterior
        ``(n, 2)`` float64 vertices of the outline.
    holes
        Interior rings, each ``(m, 2)``.
    cls
        Class name (ASAP ``PartOfGroup``, QuPath classification).
    color
        ``#RRGGBB``.
    kind
        ``"annotation"`` for ground truth, ``"detection"`` for model output.
    name
        The annotation's own name (ASAP ``Name``).
    measurements
        Numbers attached to it (QuPath measurements).
    id
        Identifier; the parts of one multi-polygon share it.
    """

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...] = ()
    cls: str = "Tumor"
    color: str | None = FALLBACK_COLOUR
    kind: Kind = "annotation"
    name: str = ""
    measurements: Mapping[str, float] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    geometry: Geometry = "polygon"
    properties: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.geometry not in ("polygon", "points", "line"):
            raise ValueError(f"geometry must be polygon, points or line, got {self.geometry!r}")
        object.__setattr__(self, "exterior", _ring(self.exterior, self.geometry))
        object.__setattr__(self, "holes", tuple(_ring(h) for h in self.holes))
        if self.holes and self.geometry != "polygon":
            raise ValueError(f"only polygons have holes, not {self.geometry}")
        object.__setattr__(self, "measurements", MappingProxyType(dict(self.measurements)))
        object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))
        if self.kind not in ("annotation", "detection"):
            raise ValueError(f"kind must be 'annotation' or 'detection', got {self.kind!r}")

    @property
    def is_area(self) -> bool:
        """Whether it covers an area (a polygon); points and lines do not."""
        return self.geometry == "polygon"

    @property
    def shown_color(self) -> str:
        """The colour to draw it in: its own, else its class's default."""
        return self.color or DEFAULT_COLOURS.get(self.cls, FALLBACK_COLOUR)

    @property
    def rings(self) -> tuple[np.ndarray, ...]:
        return (self.exterior, *self.holes)

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` in level-0 pixels."""
        x0, y0 = self.exterior.min(axis=0)
        x1, y1 = self.exterior.max(axis=0)
        return (float(x0), float(y0), float(x1), float(y1))

    @property
    def is_tumour(self) -> bool:
        return role(self.cls) == "tumour"

    @property
    def is_exclusion(self) -> bool:
        return role(self.cls) == "exclusion"

    def with_(self, **changes: object) -> Annotation:
        return replace(self, **changes)  # type: ignore[arg-type]

    def same_geometry(self, other: Annotation, atol: float = 1e-6) -> bool:
        return len(self.holes) == len(other.holes) and all(
            a.shape == b.shape and np.allclose(a, b, atol=atol)
            for a, b in zip(self.rings, other.rings, strict=True)
        )


def exclusions_as_holes(annotations: Sequence[Annotation]) -> list[Annotation]:
    """Exclusion areas (Camelyon16 ``_2``, Camelyon17 ``normal``) cut out of every other
    area exactly where they lie: an area operation (shapely), so an exclusion that crosses
    a polygon's edge removes only what it covers, and one polygon may become several parts
    (sharing the id, written as one MultiPolygon). Exclusions that cut nothing, points and
    lines are kept as they are.
    """
    import shapely

    areas = [a for a in annotations if a.is_area]
    exclusions = [a for a in areas if a.is_exclusion]
    if not exclusions:
        return list(annotations)
    cut_shapes = [shapely.Polygon(e.exterior, e.holes) for e in exclusions]
    tree = shapely.STRtree(cut_shapes)
    used: set[int] = set()
    out: list[Annotation] = []
    for a in annotations:
        if not a.is_area or a.is_exclusion:
            continue
        poly = shapely.make_valid(shapely.Polygon(a.exterior, a.holes))
        hits = [int(k) for k in tree.query(poly, predicate="intersects")]
        hits = [k for k in hits if shapely.intersection(poly, cut_shapes[k]).area > 0]
        if not hits:
            out.append(a)
            continue
        used.update(hits)
        rest = poly.difference(shapely.union_all([cut_shapes[k] for k in hits]))
        for part in _polygons(rest):
            out.append(
                a.with_(
                    exterior=np.asarray(part.exterior.coords)[:-1],
                    holes=tuple(np.asarray(h.coords)[:-1] for h in part.interiors),
                )
            )
    out.extend(e for k, e in enumerate(exclusions) if k not in used)
    out.extend(a for a in annotations if not a.is_area)
    return out


def _polygons(geom: Any) -> list[Any]:
    import shapely

    if isinstance(geom, shapely.Polygon):
        return [] if geom.is_empty else [geom]
    return [p for g in getattr(geom, "geoms", []) for p in _polygons(g)]


def holes_as_exclusions(annotations: Iterable[Annotation]) -> list[tuple[Annotation, int]]:
    """Holes written out as separate ``_2`` polygons (ASAP XML has no holes), each with the
    index (in the returned list) of the polygon it is a hole of; other entries have -1."""
    out: list[tuple[Annotation, int]] = []
    for a in annotations:
        owner = len(out)
        out.append((a.with_(holes=()), -1))
        for h in a.holes:
            out.append(
                (
                    Annotation(
                        h, cls="_2", color=DEFAULT_COLOURS["_2"], kind=a.kind, name=""
                    ),
                    owner,
                )
            )
    return out
