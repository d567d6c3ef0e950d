"""Where an attack runs: what the user drew, clipped to the slide, and the tiles that
cover it (the same plan a run uses and the Attack dock previews)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Level-0 pixels: float32 µm of a 100,000-pixel slide are exact to about 0.004 pixels; no
# hand-drawn corner lands this close to a grid line by chance.
GRID_TOLERANCE = 0.01


def clip_regions(
    boxes: list[tuple[float, float, float, float]], slide: Any
) -> list[tuple[int, int, int, int]]:
    """Level-0 boxes ``(r0, c0, r1, c1)`` (floats, as drawn or as the view shows) clipped
    to the slide, as the ``(x, y, w, h)`` regions an attack takes.

    A box reaching off the slide (the view around a whole slide) keeps its part on the
    slide; a box wholly off it is refused, as is an empty one. Rounding goes outward, so
    every drawn pixel is attacked, but a coordinate within ``GRID_TOLERANCE`` of an
    integer counts as that integer: a rectangle drawn on the tile grid in world units (µm,
    which napari's Shapes layer stores as float32) does not gain a tile row and column
    from a float error.
    """
    rows, cols = slide.geometry[0].rows, slide.geometry[0].cols
    out = []
    for r0, c0, r1, c1 in boxes:
        if r1 <= r0 or c1 <= c0:
            raise ValueError("the region is empty")
        r0, c0 = (max(0, int(np.floor(v + GRID_TOLERANCE))) for v in (r0, c0))
        r1 = min(rows, int(np.ceil(r1 - GRID_TOLERANCE)))
        c1 = min(cols, int(np.ceil(c1 - GRID_TOLERANCE)))
        if r1 > r0 and c1 > c0:
            out.append((c0, r0, c1 - c0, r1 - r0))
    if not out:
        raise ValueError(f"{slide.path}: the region lies outside the slide ({cols} x {rows})")
    return out


def planned_tiles(
    slide_path: str | Path,
    level: int,
    tile: int,
    box: tuple[float, float, float, float] | list[tuple[float, float, float, float]],
    detector: Any,
    *,
    tissue_only: bool = False,
) -> list[list[int]]:
    """The tiles a run at ``level`` with ``tile``-pixel tiles would attack on ``box``,
    each a level-0 ``[x, y, w, h]`` (the Attack dock's preview); ``ValueError`` says why
    there is none."""
    from napari_cpadv.attacks.region import plan
    from napari_cpadv.attacks.tiles import tile_side, tiles_level0
    from napari_cpadv.slide import open_slide

    slide = open_slide(slide_path)
    if not 0 <= level < len(slide.geometry):
        raise ValueError(f"{slide.path}: level {level} not in 0..{len(slide.geometry) - 1}")
    side = tile_side(detector, tile)
    regions = clip_regions(box if isinstance(box, list) else [box], slide)
    positions = plan(slide, level, side, regions, tissue_only=tissue_only)
    return tiles_level0(positions, side, float(slide.downsamples[level]))
