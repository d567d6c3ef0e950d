"""Grids of tiles over tissue (seed 000's dataset preparation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_cpadv.slide.slide import Slide
from napari_cpadv.slide.tissue import TissueMethod, tissue_mask


@dataclass(frozen=True)
class Tile:
    """A square tile of one level.

    ``row``/``col`` are the top-left corner in that level's pixels; ``x0``/``y0`` the same
    corner in level-0 pixels (annotation coordinates); ``fraction`` the share of its area
    that is tissue.
    """

    level: int
    row: int
    col: int
    size: int
    x0: int
    y0: int
    fraction: float


def choose_mask_level(slide: Slide, *, level: int, size: int) -> int:
    """The coarsest level on which one tile still spans at least 16 x 16 pixels."""
    target = slide.downsamples[level] * size / 16
    ok = [m for m, d in enumerate(slide.downsamples) if d <= target]
    return max(ok) if ok else 0


def tissue_tiles(
    slide: Slide,
    *,
    level: int,
    size: int,
    min_fraction: float = 0.5,
    method: TissueMethod = "hue",
    mask_level: int | None = None,
) -> list[Tile]:
    """Every whole ``size x size`` tile of ``level`` holding at least ``min_fraction`` tissue.

    The tissue mask is computed once on a coarse level (``mask_level``, by default the
    coarsest on which a tile spans 16 x 16 pixels) with :func:`tissue_mask`, and each
    tile's fraction is the mean of the mask over its footprint. Tiles run in row-major
    order; partial tiles at the right and bottom edges are left out.
    """
    slide.check_level(level)
    if size <= 0:
        raise ValueError(f"{slide.path}: tile size must be positive, got {size}")
    if not 0 <= min_fraction <= 1:
        raise ValueError(f"{slide.path}: min_fraction must lie in [0, 1], got {min_fraction}")
    m = choose_mask_level(slide, level=level, size=size) if mask_level is None else mask_level
    slide.check_in_memory(m, "the tissue mask", bytes_per_pixel=3 + 8 + 16)
    gm = slide.geometry[m]
    # read_region, not the dask level: the same pixels without a dask graph, and never sent
    # to a dask.distributed cluster that a user's Client made the default scheduler (an
    # OpenSlide handle cannot be pickled)
    pixels = slide.read_region(m, 0, 0, gm.rows, gm.cols)
    mask = tissue_mask(pixels, method=method).astype(np.float64)
    integral = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1))
    integral[1:, 1:] = mask.cumsum(0).cumsum(1)
    g = slide.geometry[level]
    rows = np.arange(0, g.rows - size + 1, size)
    cols = np.arange(0, g.cols - size + 1, size)
    # Tile footprints on the mask level, rounded outwards to whole mask pixels.
    scale_r, scale_c = mask.shape[0] / g.rows, mask.shape[1] / g.cols
    r0 = np.clip(np.floor(rows * scale_r).astype(int), 0, mask.shape[0] - 1)
    r1 = np.clip(np.ceil((rows + size) * scale_r).astype(int), r0 + 1, mask.shape[0])
    c0 = np.clip(np.floor(cols * scale_c).astype(int), 0, mask.shape[1] - 1)
    c1 = np.clip(np.ceil((cols + size) * scale_c).astype(int), c0 + 1, mask.shape[1])
    tiles = []
    for i, row in enumerate(rows):
        area = (r1[i] - r0[i]) * (c1 - c0)
        s = (
            integral[r1[i], c1] - integral[r0[i], c1] - integral[r1[i], c0] + integral[r0[i], c0]
        ) / area
        for j in np.flatnonzero(s >= min_fraction):
            tiles.append(
                Tile(
                    level=level,
                    row=int(row),
                    col=int(cols[j]),
                    size=size,
                    x0=round(cols[j] * g.downsample),
                    y0=round(row * g.downsample),
                    fraction=float(s[j]),
                )
            )
    return tiles
