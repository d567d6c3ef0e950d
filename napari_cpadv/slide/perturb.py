"""Writing an attacked region into a delta slide (``slide.delta``) at every level.

``apply`` writes an attacked region of one level: the region's pixels of that level are
the adversarial pixels exactly; a finer level gets the perturbation δ (adversarial minus
original at the attacked level) upsampled (nearest) onto its own original pixels; a
coarser level gets δ downsampled (its mean over each coarse pixel, rounded) onto its own
original pixels. At every level a pixel outside the attacked footprint is the original's,
bit for bit: the scanner's pyramid is not a box average of level 0, so nothing is
re-averaged.

Every pixel ``apply`` writes is computed from the original and the attacked level's
pixels, never from what the delta held before, so applying a region twice is applying it
once, and the order of regions does not matter: a run resumed after a crash, or tiles
arriving from a cluster in any order, give the same slide. (A coarse pixel shared by two
attacked tiles gets the mean of δ over both, rounded once.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_cpadv.slide.delta import DeltaStore
from napari_cpadv.slide.slide import Slide


def apply(slide: Slide, level: int, row: int, col: int, pixels: np.ndarray) -> dict[int, int]:
    """Write an adversarial ``pixels`` region ``(h, w, 3)`` uint8 of ``level`` at ``(row, col)``.

    Returns the number of tiles now stored for each level. The slide's dask levels are
    rebuilt by ``open_delta``; ``read_region`` sees the change at once.
    """
    store = slide.store
    if not isinstance(store, DeltaStore):
        raise ValueError(f"{slide.path}: not a delta slide (use create_delta first)")
    h, w = pixels.shape[:2]
    original = store.base.read_tile  # the original's tiles, for δ
    delta = pixels.astype(np.int16) - region_of(original, slide, level, row, col, h, w).astype(
        np.int16
    )
    ds = slide.downsamples
    # finer levels and the attacked one first: a coarser tile is rebuilt from the attacked
    # level as it now is
    for k, g in enumerate(slide.geometry):
        f = ds[level] / ds[k]
        r0, c0 = int(np.floor(row * f)), int(np.floor(col * f))
        r1, c1 = int(np.ceil((row + h) * f)), int(np.ceil((col + w) * f))
        for tr in range(max(r0, 0) // g.tile_rows, (min(r1, g.rows) - 1) // g.tile_rows + 1):
            for tc in range(max(c0, 0) // g.tile_cols, (min(c1, g.cols) - 1) // g.tile_cols + 1):
                if k <= level:
                    tile = _perturb(store, k, tr, tc, f, row, col, delta)
                else:
                    tile = _coarse(slide, k, tr, tc, 1 / f, level, (row, col, h, w))
                store.write_tile(k, tr, tc, tile)
    store.save_index()
    return {k: len(v) for k, v in store.touched.items()}


def region_of(
    read_tile: Any, slide: Slide, level: int, row: int, col: int, h: int, w: int
) -> np.ndarray:
    """The ``h x w`` pixels of ``level`` at ``(row, col)`` as ``read_tile`` gives its tiles."""
    g = slide.geometry[level]
    out = np.empty((h, w, 3), np.uint8)
    for tr in range(row // g.tile_rows, (row + h - 1) // g.tile_rows + 1):
        for tc in range(col // g.tile_cols, (col + w - 1) // g.tile_cols + 1):
            t = read_tile(level, tr, tc)
            a0, a1 = max(row, tr * g.tile_rows), min(row + h, (tr + 1) * g.tile_rows)
            b0, b1 = max(col, tc * g.tile_cols), min(col + w, (tc + 1) * g.tile_cols)
            out[a0 - row : a1 - row, b0 - col : b1 - col] = t[
                a0 - tr * g.tile_rows : a1 - tr * g.tile_rows,
                b0 - tc * g.tile_cols : b1 - tc * g.tile_cols,
            ]
    return out


def _perturb(
    store: DeltaStore, k: int, tr: int, tc: int, f: float, row: int, col: int, delta: np.ndarray
) -> np.ndarray:
    """Tile ``(tr, tc)`` of level ``k`` (as fine or finer): the original plus δ,
    nearest-upsampled by ``f``, where the region reaches; what the delta holds elsewhere."""
    g = store.geometry[k]
    ys = np.arange(tr * g.tile_rows, (tr + 1) * g.tile_rows)
    xs = np.arange(tc * g.tile_cols, (tc + 1) * g.tile_cols)
    sy = np.floor((ys + 0.5) / f).astype(int) - row  # the level pixel each finer pixel lies in
    sx = np.floor((xs + 0.5) / f).astype(int) - col
    iy, ix = (sy >= 0) & (sy < delta.shape[0]), (sx >= 0) & (sx < delta.shape[1])
    tile = np.array(store.read_tile(k, tr, tc))  # a copy: the original's may be cached
    if iy.any() and ix.any():
        base = store.base.read_tile(k, tr, tc).astype(np.int16)
        d = delta[np.ix_(sy[iy], sx[ix])]
        tile[np.ix_(iy, ix)] = np.clip(base[np.ix_(iy, ix)] + d, 0, 255)
    return tile


def _members(n: int, span: float, size: int) -> np.ndarray:
    """For each of ``n`` coarse pixels, how many of the ``size`` pixels of the attacked
    level lie in it (pixel ``y`` lies in coarse pixel ``floor((y + 0.5) / span)``)."""
    edges = np.clip(np.ceil(np.arange(n + 1) * span - 0.5), 0, size).astype(np.int64)
    return np.diff(edges)


def _coarse(
    slide: Slide,
    k: int,
    tr: int,
    tc: int,
    span: float,
    level: int,
    region: tuple[int, int, int, int],
) -> np.ndarray:
    """Tile ``(tr, tc)`` of the coarser level ``k``: at each coarse pixel the region reaches,
    the original plus the mean of δ over the ``span x span`` attacked-level pixels that lie
    in it (δ as the delta now holds it, from this region and any other), rounded and
    clipped; what the delta holds elsewhere. The scanner's own coarse pixels, not a
    re-average of the finer level (which differs)."""
    store: DeltaStore = slide.store  # type: ignore[assignment]
    g, attacked = store.geometry[k], store.geometry[level]
    row, col, h, w = region
    tile = np.array(store.read_tile(k, tr, tc))  # a copy: the original's may be cached
    # the coarse pixels of this tile the region reaches, as a half-open range
    y0 = max(int(np.floor((row + 0.5) / span)), tr * g.tile_rows)
    y1 = min(int(np.floor((row + h - 0.5) / span)) + 1, (tr + 1) * g.tile_rows, g.rows)
    x0 = max(int(np.floor((col + 0.5) / span)), tc * g.tile_cols)
    x1 = min(int(np.floor((col + w - 0.5) / span)) + 1, (tc + 1) * g.tile_cols, g.cols)
    if y0 >= y1 or x0 >= x1:
        return tile
    # every attacked-level pixel in those coarse pixels (edges as in _members)
    ey = np.clip(np.ceil(np.array([y0, y1]) * span - 0.5), 0, attacked.rows).astype(int)
    ex = np.clip(np.ceil(np.array([x0, x1]) * span - 0.5), 0, attacked.cols).astype(int)
    hh, ww = int(ey[1] - ey[0]), int(ex[1] - ex[0])
    now = region_of(store.read_tile, slide, level, int(ey[0]), int(ex[0]), hh, ww)
    was = region_of(store.base.read_tile, slide, level, int(ey[0]), int(ex[0]), hh, ww)
    delta = now.astype(np.int64) - was
    cy = np.floor((ey[0] + np.arange(hh) + 0.5) / span).astype(np.int64) - y0
    cx = np.floor((ex[0] + np.arange(ww) + 0.5) / span).astype(np.int64) - x0
    sums = np.zeros((y1 - y0, x1 - x0, 3), np.float64)
    np.add.at(sums, (cy[:, None], cx[None, :]), delta)
    ny = _members(y1, span, attacked.rows)[y0:]
    nx = _members(x1, span, attacked.cols)[x0:]
    area = np.maximum(ny[:, None] * nx[None, :], 1)[..., None]
    base = store.base.read_tile(k, tr, tc).astype(np.int16)
    a0, b0 = y0 - tr * g.tile_rows, x0 - tc * g.tile_cols
    part = base[a0 : a0 + y1 - y0, b0 : b0 + x1 - x0] + np.round(sums / area).astype(np.int16)
    tile[a0 : a0 + y1 - y0, b0 : b0 + x1 - x0] = np.clip(part, 0, 255)
    return tile
