"""Annotations as the pathology tools store them: level-0 pixels, ``(x, y)``, origin top-left."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Literal

import numpy as np

from napari_cpadv.geometry import points_in_ring

Kind = Literal["annotation", "detection"]

TUMOUR_GROUPS = ("Tumor", "_0", "_1", "metastases")
"""ASAP groups that mark tumour (Camelyon16: Tumor, _0, _1; Camelyon17: metastases)."""
EXCLUSION_GROUPS = ("_2", "normal")
"""ASAP groups that mark non-tumour regions inside tumour, painted after the tumour groups."""

DEFAULT_COLOURS = {
    "Tumor": "#F4FA58",
    "_0": "#F4FA58",
    "_1": "#F4FA58",
    "metastases": "#F4FA58",
    "_2": "#64FE2E",
    "normal": "#64FE2E",
}


def _ring(points: object) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"a ring must be (n, 2) x-y vertices, got shape {arr.shape}")
    if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
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
    color: str = "#F4FA58"
    kind: Kind = "annotation"
    name: str = ""
    measurements: Mapping[str, float] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        object.__setattr__(self, "exterior", _ring(self.exterior))
        object.__setattr__(self, "holes", tuple(_ring(h) for h in self.holes))
        object.__setattr__(self, "measurements", MappingProxyType(dict(self.measurements)))
        if self.kind not in ("annotation", "detection"):
            raise ValueError(f"kind must be 'annotation' or 'detection', got {self.kind!r}")

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
        return self.cls in TUMOUR_GROUPS or self.cls.lower() == "tumor"

    @property
    def is_exclusion(self) -> bool:
        return self.cls in EXCLUSION_GROUPS

    def with_(self, **changes: object) -> Annotation:
        return replace(self, **changes)  # type: ignore[arg-type]

    def same_geometry(self, other: Annotation, atol: float = 1e-6) -> bool:
        return len(self.holes) == len(other.holes) and all(
            a.shape == b.shape and np.allclose(a, b, atol=atol)
            for a, b in zip(self.rings, other.rings, strict=True)
        )


def exclusions_as_holes(annotations: Sequence[Annotation]) -> list[Annotation]:
    """Camelyon16's ``_2`` polygons turned into holes of the polygons that hold them.

    An exclusion whose first vertex lies in no tumour polygon is kept as it is.
    """
    tumours = [a for a in annotations if not a.is_exclusion]
    extra: dict[int, list[np.ndarray]] = {}
    left = []
    for ex in (a for a in annotations if a.is_exclusion):
        x, y = ex.exterior[0]
        owner = next(
            (
                i
                for i, t in enumerate(tumours)
                if points_in_ring(np.array([x]), np.array([y]), t.exterior)[0]
            ),
            None,
        )
        if owner is None:
            left.append(ex)
        else:
            extra.setdefault(owner, []).append(ex.exterior)
    out = [t.with_(holes=(*t.holes, *extra[i])) if i in extra else t for i, t in enumerate(tumours)]
    return out + left


def holes_as_exclusions(annotations: Iterable[Annotation]) -> list[Annotation]:
    """Holes written out as separate ``_2`` polygons (ASAP XML has no holes)."""
    out = []
    for a in annotations:
        out.append(a.with_(holes=()))
        for k, h in enumerate(a.holes):
            out.append(
                Annotation(
                    h,
                    cls="_2",
                    color=DEFAULT_COLOURS["_2"],
                    kind=a.kind,
                    name=f"{a.name or a.cls} hole {k + 1}",
                )
            )
    return out
