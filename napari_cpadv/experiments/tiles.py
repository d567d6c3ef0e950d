"""Tiles of one slide level as attacks take them: the tiles of the level's global grid that
cover a level-0 region (drawn anywhere, on the grid or off it), read into memory with
their cell labels, and the tile side a detector accepts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from napari_cpadv.geometry import Box
from napari_cpadv.models.detector import Detector


@dataclass(frozen=True)
class Tiles:
    """Tiles of one slide level: ``x`` ``(N, 3, S, S)`` in [0, 1] on the CPU, the level
    ``positions`` (row, col) of their corners, and cell ``labels`` ``(N, S/c, S/c)`` from
    the annotations (``None`` without)."""

    x: torch.Tensor
    positions: list[tuple[int, int]]
    labels: np.ndarray | None
    level: int
    cell: int

    def __len__(self) -> int:
        return len(self.x)


def tile_positions(
    shape: tuple[int, int], downsample: float, region: tuple[int, int, int, int], side: int
) -> list[tuple[int, int]]:
    """Corners of the ``side`` tiles of a level (``shape`` rows, cols) that together cover
    every pixel of the level-0 ``region`` ``(x, y, w, h)``: the tiles of the level's global
    grid that the region touches, a last row or column moved back inside the level where
    the level ends within it. Empty when the region misses the level or the level is
    smaller than one tile."""
    x0, y0, w, h = region
    if w <= 0 or h <= 0 or shape[0] < side or shape[1] < side:
        return []
    r_lo, c_lo = max(0, math.floor(y0 / downsample)), max(0, math.floor(x0 / downsample))
    r_hi = min(shape[0], math.ceil((y0 + h) / downsample))
    c_hi = min(shape[1], math.ceil((x0 + w) / downsample))
    if r_hi <= r_lo or c_hi <= c_lo:
        return []
    rows = dict.fromkeys(min(r, shape[0] - side) for r in range(r_lo // side * side, r_hi, side))
    cols = dict.fromkeys(min(c, shape[1] - side) for c in range(c_lo // side * side, c_hi, side))
    return [(r, c) for r in rows for c in cols]


def tiles_level0(
    positions: Sequence[tuple[int, int]], side: int, downsample: float
) -> list[list[int]]:
    """Each tile at ``positions`` (level ``row, col``) as a level-0 ``[x, y, w, h]``."""
    return [
        list(Box(c * downsample, r * downsample, (c + side) * downsample, (r + side) * downsample)
             .outward().xywh)
        for r, c in positions
    ]  # fmt: skip


def no_tile_reason(
    region: tuple[int, int, int, int], shape: tuple[int, int], level: int, side: int
) -> str:
    """Why no tile covers ``region``: it misses the level, or the level is smaller than a tile."""
    if shape[0] < side or shape[1] < side:
        return f"level {level} ({shape[1]} x {shape[0]}) is smaller than one {side}-pixel tile"
    return f"the region (x, y, w, h) {tuple(region)} does not overlap level {level}"


def tile_side(detector: Detector, tile: int) -> int:
    """``tile`` rounded down to the detector's multiple.

    Raises
    ------
    ValueError
        When ``tile`` is smaller than one multiple (a 0 or negative tile of old became
        thousands of 4-pixel attacks without a word).
    """
    if tile < detector.multiple:
        raise ValueError(
            f"a tile of {tile} pixels is smaller than {detector.name}'s smallest input "
            f"({detector.multiple} pixels)"
        )
    return tile // detector.multiple * detector.multiple


def read_tiles(
    slide: Any,
    level: int,
    positions: Sequence[tuple[int, int]],
    side: int,
    *,
    annotations: Any = None,
    cell: int = 4,
) -> Tiles:
    """Read the ``side`` tiles at ``positions`` and, with annotations, their cell labels."""
    from napari_cpadv.annotations.raster import cell_grid
    from napari_cpadv.geometry import Grid

    g0, g = slide.geometry[0], slide.geometry[level]
    grid = Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols))
    images = np.stack([slide.read_region(level, r, c, side, side) for r, c in positions])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    labels = None
    if annotations is not None:
        labels = np.stack(
            [
                cell_grid(annotations, grid.window(r, c, side, side), cell=cell)[1]
                for r, c in positions
            ]
        )
    return Tiles(x, list(positions), labels, level, cell)


def region_tiles(
    slide: Any,
    level: int,
    region: tuple[int, int, int, int],
    side: int,
    *,
    annotations: Any = None,
    cell: int = 4,
) -> Tiles:
    """All whole ``side`` tiles of the level-0 ``region`` ``(x, y, w, h)``, in memory."""
    g = slide.geometry[level]
    positions = tile_positions((g.rows, g.cols), slide.downsamples[level], region, side)
    if not positions:
        raise ValueError(no_tile_reason(region, (g.rows, g.cols), level, side))
    return read_tiles(slide, level, positions, side, annotations=annotations, cell=cell)
