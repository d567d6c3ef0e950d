"""npe2 writers: Shapes and Points to QuPath GeoJSON or ASAP XML, Labels to a pyramidal
TIFF mask."""

from __future__ import annotations

from typing import Any

import numpy as np


def write_shapes_geojson(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    from napari_cpadv._annotation_layers import annotations_from_shapes
    from napari_cpadv.annotations.geojson import write_geojson

    return [str(write_geojson(annotations_from_shapes(data, attributes), path))]


def write_shapes_xml(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    from napari_cpadv._annotation_layers import annotations_from_shapes
    from napari_cpadv.annotations.asap import write_asap

    return [str(write_asap(annotations_from_shapes(data, attributes), path))]


def write_points_geojson(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    from napari_cpadv._annotation_layers import annotations_from_points
    from napari_cpadv.annotations.geojson import write_geojson

    return [str(write_geojson(annotations_from_points(data, attributes), path))]


def write_points_xml(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    from napari_cpadv._annotation_layers import annotations_from_points
    from napari_cpadv.annotations.asap import write_asap

    return [str(write_asap(annotations_from_points(data, attributes), path))]


def write_labels_tiff(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Level 0 of a (multiscale) Labels layer as a tiled pyramidal TIFF with µm resolution."""
    from napari_cpadv.annotations.masks import write_mask_tiff

    level0 = np.asarray(data[0] if attributes.get("multiscale") else data)
    scale = np.asarray(attributes.get("scale", (1.0, 1.0)), dtype=float)[-2:]
    units = [str(u) for u in attributes.get("units") or ()]
    in_um = any(u in ("um", "micrometer", "µm") for u in units)
    mpp = (float(scale[1]), float(scale[0])) if in_um else None
    return [str(write_mask_tiff(level0, path, mpp=mpp))]
