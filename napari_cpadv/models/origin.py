"""What a detector's weights learnt from: painted (synthetic) slides or real tissue, and at
how many micrometres per pixel. Recorded in the weights' config (``training.tissue``,
``training.um_per_pixel``) from the tile folders' ``dataset.json`` or the slides streamed;
``inference.detect`` warns when a slide is far from it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RECIPE_DATA = "build/weights-data/"
"""``make weights``' folder: tiles of slides painted by ``cpadv sample`` (0.243 µm per
level-0 pixel). Weights trained before their records said what they learnt from (the
shipped ones of 2026-12-01) are known from it."""


def combine(origins: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """One origin of several sources: ``tissue`` ``synthetic``, ``real``, ``mixed`` or
    ``None`` (unknown); ``um_per_pixel`` when every source agrees within 1 %, else ``None``."""
    known = [o for o in origins if o]
    kinds = {o.get("tissue") for o in known}
    unknown = not known or len(known) < len(origins) or None in kinds
    tissue = None if unknown else kinds.pop() if len(kinds) == 1 else "mixed"
    ums = [float(o["um_per_pixel"]) for o in known if o.get("um_per_pixel")]
    agree = len(ums) == len(origins) > 0 and max(ums) <= 1.01 * min(ums)
    return {"tissue": tissue, "um_per_pixel": ums[0] if agree else None}


def tiles_origin(folders: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """The origin of ``cpadv tiles`` folders (their ``dataset.json``; folders written
    before it existed are unknown)."""
    from napari_cpadv.annotations.dataset import ORIGIN

    found = []
    for folder in folders:
        try:
            found.append(json.loads((Path(folder) / ORIGIN).read_text()))
        except (OSError, ValueError):
            found.append(None)
    return combine(found)


def slides_origin(paths: Sequence[str | os.PathLike[str]], level: int) -> dict[str, Any]:
    """The origin of tiles streamed from the slides at ``paths``, ``level``."""
    from napari_cpadv.annotations.dataset import origin_of
    from napari_cpadv.slide import open_slide

    return combine([origin_of(open_slide(p), level) for p in paths])


def training_origin(config: dict[str, Any]) -> dict[str, Any]:
    """What weights with ``config`` learnt from: their record, else ``make weights``'
    recipe when their data came from its folder, else unknown (``None`` values)."""
    from napari_cpadv.slide.synthetic import DEFAULT_MPP

    training = config.get("training", {})
    if "tissue" in training:
        return {"tissue": training["tissue"], "um_per_pixel": training.get("um_per_pixel")}
    data, level = training.get("data") or [], training.get("level")
    if data and all(str(d).startswith(RECIPE_DATA) for d in data) and isinstance(level, int):
        return {"tissue": "synthetic", "um_per_pixel": round(DEFAULT_MPP * 2**level, 4)}
    return {"tissue": None, "um_per_pixel": None}


def words(origin: dict[str, Any]) -> str:
    """``"synthetic (painted) slides at 0.97 µm per pixel"``, for docks and reports."""
    tissue = {
        "synthetic": "synthetic (painted) slides",
        "real": "real tissue",
        "mixed": "painted slides and real tissue",
    }.get(origin.get("tissue") or "", "slides of unrecorded kind")
    um = origin.get("um_per_pixel")
    return tissue + (f" at {um:.2f} µm per pixel" if um else "")
