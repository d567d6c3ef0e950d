"""Annotations: polygons in level-0 pixels, ``(x, y)``, with holes and a class; no Qt."""

from __future__ import annotations

import os
from pathlib import Path

from napari_cpadv.annotations.model import Annotation
from napari_cpadv.errors import FormatError

__all__ = ["Annotation", "read_annotations", "write_annotations"]


def read_annotations(path: str | os.PathLike[str]) -> list[Annotation]:
    """Read ASAP XML (``.xml``) or QuPath GeoJSON (``.geojson``, ``.json``) by extension."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".xml":
        from napari_cpadv.annotations.asap import read_asap

        return read_asap(p)
    if suffix in (".geojson", ".json"):
        from napari_cpadv.annotations.geojson import read_geojson

        return read_geojson(p)
    raise FormatError(p, "annotations must be ASAP .xml or QuPath .geojson")


def write_annotations(annotations: list[Annotation], path: str | os.PathLike[str]) -> Path:
    """Write ASAP XML or QuPath GeoJSON by extension, atomically."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".xml":
        from napari_cpadv.annotations.asap import write_asap

        return write_asap(annotations, p)
    if suffix in (".geojson", ".json"):
        from napari_cpadv.annotations.geojson import write_geojson

        return write_geojson(annotations, p)
    raise FormatError(p, "annotations are written as ASAP .xml or QuPath .geojson")
