"""Heatmaps on disk: a zarr v3 group holding a pyramid of tumour probabilities.

Layout of ``NAME.zarr``: arrays ``0``, ``1``, ... (float32, NaN where nothing was
computed; ``0`` is the cell grid, each next one halves both sides by a NaN-aware mean) and
group attributes::

    {"napari_cpadv": "heatmap", "detector": "dae", "weights_sha256": ..., "slide": ...,
     "level": 2, "cell": 4, "downsample": 4.0, "cell_level0": 16.0, "mpp": [x, y] | null,
     "origin": [row, col], "values": "sigmoid of the detector's tumour logit"}

A cell of the grid covers ``cell_level0`` level-0 pixels on each side; the viewer places it
per DESIGN.md (scale ``mpp * cell_level0``, translate ``(cell_level0 - 1) / 2`` pixels).
The group is written under a temporary name and moved into place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import FormatError
from napari_cpadv.files import replacing
from napari_cpadv.inference.heatmap import Heatmap, halve

KIND = "heatmap"
CHUNK = 256


def pyramid(values: np.ndarray, *, smallest: int = 256) -> list[np.ndarray]:
    """``values`` and its 2x NaN-aware mean reductions until the longer side <= smallest."""
    levels = [values]
    while max(levels[-1].shape) > smallest:
        levels.append(halve(levels[-1]))
    return levels


def heatmap_attrs(heatmap: Heatmap, *, mpp: tuple[float, float] | None) -> dict[str, Any]:
    return {
        "napari_cpadv": KIND,
        **heatmap.attrs,
        "level": heatmap.level,
        "cell": heatmap.cell,
        "downsample": heatmap.downsample,
        "cell_level0": heatmap.cell * heatmap.downsample,
        "mpp": list(mpp) if mpp else None,
        "origin": list(heatmap.origin),
        "values": "sigmoid of the detector's tumour logit",
    }


def write_heatmap(
    path: str | os.PathLike[str], heatmap: Heatmap, *, mpp: tuple[float, float] | None
) -> Path:
    """Write ``heatmap``'s probabilities as a pyramid; returns the path."""
    import zarr

    out = Path(path)
    with replacing(out) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        group.attrs.update(heatmap_attrs(heatmap, mpp=mpp))
        for i, level in enumerate(pyramid(heatmap.probabilities())):
            arr = group.create_array(
                str(i), shape=level.shape, dtype="float32", chunks=(CHUNK, CHUNK), fill_value=np.nan
            )
            arr[...] = level
    return out


def read_heatmap(path: str | os.PathLike[str]) -> tuple[list[Any], dict[str, Any]]:
    """The pyramid (zarr arrays, finest first) and attributes of a heatmap written here."""
    import zarr

    p = Path(path)
    try:
        group = zarr.open_group(str(p), mode="r")
        attrs = dict(group.attrs)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(p, f"not a zarr group ({exc})") from exc
    if attrs.get("napari_cpadv") != KIND:
        raise FormatError(p, "not a napari-cpadv heatmap (no napari_cpadv: heatmap attribute)")
    levels: list[Any] = []
    while str(len(levels)) in group:
        levels.append(group[str(len(levels))])
    if not levels:
        raise FormatError(p, "a heatmap group without arrays")
    return levels, attrs


def is_heatmap(path: str | os.PathLike[str]) -> bool:
    """Cheap test for the npe2 reader: a folder with a zarr.json naming our heatmap kind."""
    import json

    meta = Path(path) / "zarr.json"
    try:
        return json.loads(meta.read_text()).get("attributes", {}).get("napari_cpadv") == KIND
    except (OSError, ValueError, AttributeError):
        return False
