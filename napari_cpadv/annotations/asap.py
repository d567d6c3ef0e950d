"""ASAP XML (Camelyon16/17): ``ASAP_Annotations/Annotations/Annotation/Coordinates/Coordinate``.

Coordinates are level-0 pixels, sorted by ``Order``; polygons are not closed by repeating
the first point. ASAP has no holes: Camelyon16's ``_2`` group marks non-tumour regions
inside tumour, painted after the tumour groups. Parsing uses defusedxml, which refuses
DTDs, entity expansion and external entities.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_cpadv.annotations._io import normalise_colour, write_atomic
from napari_cpadv.annotations.model import DEFAULT_COLOURS, Annotation, holes_as_exclusions
from napari_cpadv.errors import FormatError

AREA_TYPES = ("Polygon", "Spline", "Rectangle")
POINT_TYPES = ("Dot", "PointSet", "Measurement")


def _parse(path: Path) -> ET.Element:
    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        tree = DET.parse(path, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise FormatError(path, "XML with a DTD is refused (possible entity attack)") from None
    except defusedxml.EntitiesForbidden:
        raise FormatError(path, "XML declaring entities is refused (entity expansion)") from None
    except defusedxml.ExternalReferenceForbidden:
        raise FormatError(path, "XML referring to external entities is refused") from None
    except ET.ParseError as exc:
        raise FormatError(path, f"not well-formed XML ({exc})") from None
    except OSError as exc:
        raise FormatError(path, f"cannot read the file ({exc.strerror})") from None
    return tree.getroot()


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


def read_asap(path: str | os.PathLike[str]) -> list[Annotation]:
    """Read the area annotations of an ASAP XML file (points and dots are skipped).

    Raises
    ------
    FormatError
        Malformed or hostile XML, a wrong root element, or bad coordinates; the message
        names the file.
    """
    p = Path(path)
    root = _parse(p)
    if root.tag != "ASAP_Annotations":
        raise FormatError(p, f"root element is <{root.tag}>, expected <ASAP_Annotations>")
    groups = {g.get("Name", ""): g.get("Color") for g in root.iterfind("AnnotationGroups/Group")}
    out = []
    for i, el in enumerate(root.iterfind("Annotations/Annotation")):
        kind = el.get("Type", "Polygon")
        name = el.get("Name", f"Annotation {i}")
        if kind in POINT_TYPES:
            continue
        if kind not in AREA_TYPES:
            raise FormatError(p, f"annotation {name!r} has unknown Type {kind!r}")
        where = f"annotation {name!r}"
        coords = []
        for j, c in enumerate(el.iterfind("Coordinates/Coordinate")):
            order = c.get("Order")
            key = _float(order, p, f"{where} coordinate {j} Order") if order is not None else j
            coords.append(
                (
                    key,
                    _float(c.get("X"), p, f"{where} coordinate {j} X"),
                    _float(c.get("Y"), p, f"{where} coordinate {j} Y"),
                )
            )
        if len(coords) < 3:
            raise FormatError(p, f"{where} has {len(coords)} coordinates; a polygon needs 3")
        coords.sort(key=lambda t: t[0])
        group = el.get("PartOfGroup", "None")
        colour = el.get("Color") or groups.get(group) or DEFAULT_COLOURS.get(group, "#F4FA58")
        out.append(
            Annotation(
                np.array([(x, y) for _, x, y in coords]),
                cls=group,
                color=normalise_colour(colour, p),
                name=name,
            )
        )
    return out


def to_asap_xml(annotations: Sequence[Annotation]) -> bytes:
    """ASAP XML for the annotations; holes become ``_2`` polygons after their tumour."""
    flat = holes_as_exclusions(annotations)
    # Camelyon's ordered overwrite: exclusions after every tumour polygon.
    flat = [a for a in flat if not a.is_exclusion] + [a for a in flat if a.is_exclusion]
    root = ET.Element("ASAP_Annotations")
    anns = ET.SubElement(root, "Annotations")
    groups: dict[str, str] = {}
    for i, a in enumerate(flat):
        el = ET.SubElement(
            anns,
            "Annotation",
            Name=a.name or f"Annotation {i}",
            Type="Polygon",
            PartOfGroup=a.cls,
            Color=a.color,
        )
        coords = ET.SubElement(el, "Coordinates")
        for k, (x, y) in enumerate(a.exterior):
            ET.SubElement(coords, "Coordinate", Order=str(k), X=repr(float(x)), Y=repr(float(y)))
        groups.setdefault(a.cls, a.color)
    grp = ET.SubElement(root, "AnnotationGroups")
    for name, colour in groups.items():
        g = ET.SubElement(grp, "Group", Name=name, PartOfGroup="None", Color=colour)
        ET.SubElement(g, "Attributes")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_asap(annotations: Sequence[Annotation], path: str | os.PathLike[str]) -> Path:
    """Write ASAP XML atomically (temporary name, then moved into place)."""
    return write_atomic(path, to_asap_xml(annotations))
