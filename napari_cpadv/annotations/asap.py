"""ASAP XML (Camelyon16/17): ``ASAP_Annotations/Annotations/Annotation/Coordinates/Coordinate``.

Coordinates are level-0 pixels, sorted by ``Order``; polygons are not closed by repeating
the first point. ``Polygon``, ``Spline`` and ``Rectangle`` are areas (ASAP fills them all
when it makes masks), ``Dot`` and ``PointSet`` are points, ``Measurement`` is a line. ASAP
has no holes: Camelyon16's ``_2`` group marks non-tumour regions inside tumour, painted
after the tumour groups. ``PartOfGroup="None"`` is ASAP's "no group" (an unclassified
object). Parsing uses defusedxml, which refuses DTDs, entity expansion and external
entities.

What ASAP cannot carry is written as attributes ASAP ignores, so that our own files come
back as they went: ``HoleOf`` (the index of the annotation a ``_2`` polygon is a hole of)
and ``PartOf`` (the first part of a multi-part object).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from napari_cpadv.annotations._io import normalise_colour, warn_skipped
from napari_cpadv.annotations.model import Annotation, Geometry, holes_as_exclusions
from napari_cpadv.errors import FormatError
from napari_cpadv.files import write_atomic

AREA_TYPES = ("Polygon", "Spline", "Rectangle")
POINT_TYPES = ("Dot", "PointSet")
LINE_TYPES = ("Measurement",)
NO_GROUP = "None"
_MIN_VERTICES = {"polygon": 3, "points": 1, "line": 2}


def _elements(path: Path) -> Iterator[ET.Element]:
    """The file's ``Annotation`` and ``Group`` elements, parsed as a stream: each is handed
    over complete and then cleared, so memory stays bounded by one annotation however many
    coordinates the file holds (a Camelyon16 level-0 outline can have 10^6)."""
    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        events = DET.iterparse(
            path, events=("start", "end"), forbid_dtd=True, forbid_entities=True,
            forbid_external=True,
        )  # fmt: skip
        root = None
        for event, el in events:
            if root is None:
                root = el
                if el.tag != "ASAP_Annotations":
                    raise FormatError(
                        path, f"root element is <{el.tag}>, expected <ASAP_Annotations>"
                    )
            if event == "end" and el.tag in ("Annotation", "Group"):
                yield el
                el.clear()
                root.clear()  # drop the finished siblings' references
        if root is None:
            raise FormatError(path, "empty XML")
    except defusedxml.DTDForbidden:
        raise FormatError(path, "XML with a DTD is refused (possible entity attack)") from None
    except defusedxml.EntitiesForbidden:
        raise FormatError(path, "XML declaring entities is refused (entity expansion)") from None
    except defusedxml.ExternalReferenceForbidden:
        raise FormatError(path, "XML referring to external entities is refused") from None
    except ET.ParseError as exc:
        raise FormatError(path, f"not well-formed XML ({exc})") from None
    except RecursionError:
        raise FormatError(path, "XML nested too deep") from None
    except OSError as exc:
        raise FormatError(path, f"cannot read the file ({exc.strerror})") from None


def _float(text: str | None, path: Path, where: str) -> float:
    if text is None:
        raise FormatError(path, f"{where} has no value")
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise FormatError(path, f"{where} is not a number: {text!r}") from None
    if not np.isfinite(value):
        raise FormatError(path, f"{where} is not finite: {text!r}")
    return value


def _geometry(kind: str) -> Geometry | None:
    if kind in AREA_TYPES:
        return "polygon"
    if kind in POINT_TYPES:
        return "points"
    if kind in LINE_TYPES:
        return "line"
    return None


def _coordinates(el: ET.Element, p: Path, where: str) -> np.ndarray:
    """The element's vertices ``(N, 2)`` in ``Order``. A Camelyon16 outline has up to 10^6:
    numpy converts the whole column at once (3 s -> 0.5 s for 10^6 vertices); a value it
    refuses (a decimal comma, a missing or infinite one) goes through ``_slow_coordinates``,
    which says which vertex and why."""
    found = el.findall("Coordinates/Coordinate")
    orders = [c.get("Order") for c in found]
    try:
        x = np.array([c.get("X") for c in found], np.float64)
        y = np.array([c.get("Y") for c in found], np.float64)
        key = (
            np.arange(len(found), dtype=np.float64)
            if all(o is None for o in orders)
            else np.array(orders, np.float64)
        )
    except (TypeError, ValueError):
        return _slow_coordinates(el, p, where)
    if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(key).all()):
        return _slow_coordinates(el, p, where)
    order = np.argsort(key, kind="stable")  # as Python's sort: ties keep the file's order
    return np.stack([x[order], y[order]], axis=1).reshape(-1, 2)


def _slow_coordinates(el: ET.Element, p: Path, where: str) -> np.ndarray:
    coords = []
    for j, c in enumerate(el.iterfind("Coordinates/Coordinate")):
        order = c.get("Order")
        key = _float(order, p, f"{where} coordinate {j} Order") if order is not None else j
        x = _float(c.get("X"), p, f"{where} coordinate {j} X")
        coords.append((key, x, _float(c.get("Y"), p, f"{where} coordinate {j} Y")))
    coords.sort(key=lambda t: t[0])
    return np.array([(x, y) for _, x, y in coords], np.float64).reshape(-1, 2)


def _annotation(
    el: ET.Element, i: int, p: Path, skipped: Counter[str]
) -> tuple[Annotation, str | None, str] | tuple[int, np.ndarray] | None:
    """Annotation ``i`` of the file as ``(annotation, its colour, where)``, a hole as
    ``(owner, ring)``, or ``None`` (skipped, and counted in ``skipped``)."""
    kind = el.get("Type", "Polygon")
    name = el.get("Name")
    where = f"annotation {i}" + (f" ({name!r})" if name else "")
    geometry = _geometry(kind)
    if geometry == "points" and el.get("Line") == "1":
        geometry = "line"  # a line longer than ASAP's Measurement, written by us
    if geometry is None:
        skipped[f"Type {kind!r}"] += 1
        return None
    xy = _coordinates(el, p, where)
    if len(xy) < _MIN_VERTICES[geometry]:
        skipped[f"{kind} with {len(xy)} coordinates"] += 1
        return None
    hole_of = _index(el.get("HoleOf"), i)
    if hole_of is not None and geometry == "polygon":
        return (hole_of, xy)
    group = el.get("PartOfGroup", NO_GROUP)
    ann = Annotation(
        xy,
        cls="" if group == NO_GROUP else group,
        color=None,
        name=name or "",
        geometry=geometry,
        properties={"asap_type": kind} if kind not in ("Polygon", "Dot") else {},
    )
    return (ann, el.get("Color"), where)


def _coloured(
    found: list[tuple[Annotation, str | None, str] | None],
    groups: dict[str, str | None],
    p: Path,
) -> list[Annotation | None]:
    """Colours last: the groups come after the annotations in the file."""
    out: list[Annotation | None] = []
    for item in found:
        if item is None:
            out.append(None)
            continue
        ann, colour, where = item
        colour = colour or groups.get(ann.cls or NO_GROUP)
        if colour is not None:
            ann = ann.with_(color=normalise_colour(colour, p, where))
        out.append(ann)
    return out


def _join(
    out: list[Annotation | None],
    holes: list[tuple[int, np.ndarray]],
    parts: dict[int, int],
    skipped: Counter[str],
) -> None:
    """Our own holes and multi-part areas, by index: no guessing where they belong."""
    for owner, ring in holes:
        a = out[owner] if owner < len(out) else None
        if a is None or not a.is_area:
            skipped["HoleOf an annotation that is not a polygon"] += 1
            continue
        out[owner] = a.with_(holes=(*a.holes, ring))
    for i, first in parts.items():
        a, b = out[i], out[first] if first < len(out) else None
        if a is not None and b is not None:
            out[i] = a.with_(id=b.id)


def read_asap(path: str | os.PathLike[str]) -> list[Annotation]:
    """Read the areas, points and lines of an ASAP XML file.

    An annotation of a type ASAP does not define, or with too few coordinates for its type,
    is skipped, and one warning counts what was skipped; the rest of the file is read.

    Raises
    ------
    FormatError
        Malformed or hostile XML, a wrong root element, or coordinates that are not
        finite numbers; the message names the file and the annotation.
    """
    p = Path(path)
    groups: dict[str, str | None] = {}
    found: list[tuple[Annotation, str | None, str] | None] = []
    holes: list[tuple[int, np.ndarray]] = []
    parts: dict[int, int] = {}
    skipped: Counter[str] = Counter()
    i = -1
    for el in _elements(p):
        if el.tag == "Group":
            groups.setdefault(el.get("Name", ""), el.get("Color"))
            continue
        i += 1
        item = _annotation(el, i, p, skipped)
        if isinstance(item, tuple) and isinstance(item[0], int):  # a hole of ``item[0]``
            holes.append(item)
            item = None
        elif item is not None and (part_of := _index(el.get("PartOf"), i)) is not None:
            parts[i] = part_of
        found.append(item)
    out = _coloured(found, groups, p)
    _join(out, holes, parts, skipped)
    warn_skipped(p, skipped, "annotation(s) that are not areas, points or lines ASAP defines")
    return [a for a in out if a is not None]


def _index(text: str | None, here: int) -> int | None:
    """An index attribute of ours that points before ``here``, else ``None``."""
    if text is None or not text.isdigit():
        return None
    k = int(text)
    return k if k < here else None


def _type(a: Annotation) -> str:
    kept = a.properties.get("asap_type")
    if isinstance(kept, str) and _geometry(kept) == a.geometry:
        return kept
    if a.geometry == "points":
        return "Dot" if len(a.exterior) == 1 else "PointSet"
    if a.geometry == "line":
        # ASAP has one kind of line, the two-point Measurement; a longer line is kept as a
        # PointSet of its vertices (its order kept), flagged so that it comes back a line
        return "Measurement" if len(a.exterior) == 2 else "PointSet"
    return "Polygon"


def to_asap_xml(annotations: Sequence[Annotation]) -> bytes:
    """ASAP XML for the annotations; holes become ``_2`` polygons after their polygon."""
    flat = holes_as_exclusions(annotations)
    root = ET.Element("ASAP_Annotations")
    anns = ET.SubElement(root, "Annotations")
    groups: dict[str, str | None] = {}
    first_part: dict[str, int] = {}
    for i, (a, owner) in enumerate(flat):
        attrs = {"Type": _type(a), "PartOfGroup": a.cls or NO_GROUP}
        if a.name:
            attrs["Name"] = a.name
        if a.color:
            attrs["Color"] = a.color
        if owner >= 0:
            attrs["HoleOf"] = str(owner)
        elif a.id in first_part:
            attrs["PartOf"] = str(first_part[a.id])
        else:
            first_part[a.id] = i
        if a.geometry == "line" and attrs["Type"] == "PointSet":
            attrs["Line"] = "1"
        el = ET.SubElement(anns, "Annotation", attrs)
        coords = ET.SubElement(el, "Coordinates")
        for k, (x, y) in enumerate(a.exterior):
            ET.SubElement(coords, "Coordinate", Order=str(k), X=repr(float(x)), Y=repr(float(y)))
        if a.cls:
            groups.setdefault(a.cls, a.color)
    grp = ET.SubElement(root, "AnnotationGroups")
    for name, colour in groups.items():
        g = ET.SubElement(grp, "Group", Name=name, PartOfGroup=NO_GROUP)
        if colour:
            g.set("Color", colour)
        ET.SubElement(g, "Attributes")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_asap(annotations: Sequence[Annotation], path: str | os.PathLike[str]) -> Path:
    """Write ASAP XML atomically (temporary name, then moved into place)."""
    return write_atomic(path, to_asap_xml(annotations))
