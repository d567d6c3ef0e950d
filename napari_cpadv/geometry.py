"""Plane geometry shared by the slide painter and the annotations (level-0 pixels, x-y)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def ring_area(ring: np.ndarray) -> float:
    """Signed shoelace area of an open ring ``(n, 2)``."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def points_in_ring(px: np.ndarray, py: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test of points ``(px, py)`` against an open ring, vectorised."""
    inside = np.zeros(np.shape(px), bool)
    x, y = ring[:, 0], ring[:, 1]
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    for k in range(len(ring)):
        if y[k] == y2[k]:
            continue
        crosses = (y[k] > py) != (y2[k] > py)
        inside ^= crosses & (px < (x2[k] - x[k]) * (py - y[k]) / (y2[k] - y[k]) + x[k])
    return inside


def xy_to_rowcol(xy: np.ndarray) -> np.ndarray:
    """Annotation vertices ``(x, y)`` to napari's ``(row, col)``; the one place axes swap."""
    return np.asarray(xy, dtype=np.float64)[:, ::-1].copy()


def rowcol_to_xy(rowcol: np.ndarray) -> np.ndarray:
    """napari's ``(row, col)`` to annotation vertices ``(x, y)``."""
    return np.asarray(rowcol, dtype=np.float64)[:, -2:][:, ::-1].copy()


@dataclass(frozen=True)
class Grid:
    """A window of a pyramid level: ``rows x cols`` pixels from ``(row0, col0)``.

    ``ds`` is ``(ds_y, ds_x)``, level-0 pixels per level pixel along each axis.
    """

    rows: int
    cols: int
    ds: tuple[float, float] = (1.0, 1.0)
    row0: int = 0
    col0: int = 0

    @classmethod
    def of_level(cls, level0_shape: tuple[int, int], level_shape: tuple[int, int]) -> Grid:
        """The whole level, with the downsample its size implies."""
        return cls(
            level_shape[0],
            level_shape[1],
            (level0_shape[0] / level_shape[0], level0_shape[1] / level_shape[1]),
        )

    def window(self, row0: int, col0: int, rows: int, cols: int) -> Grid:
        return Grid(rows, cols, self.ds, row0, col0)


def fill_polygon(out: np.ndarray, rings: Sequence[np.ndarray], grid: Grid, value: int) -> None:
    """Scanline even-odd fill of one polygon (its rings together) into ``out``.

    A pixel is filled when its centre is inside: level pixel ``(r, c)`` of ``grid`` has its
    centre at level-0 ``((col0 + c + 0.5) * ds_x, (row0 + r + 0.5) * ds_y)``. Vertices beyond
    the grid are clipped.
    """
    ys_all = np.concatenate([r[:, 1] for r in rings]) / grid.ds[0] - grid.row0
    r_lo = max(int(np.ceil(ys_all.min() - 0.5)), 0)
    r_hi = min(int(np.floor(ys_all.max() - 0.5)), grid.rows - 1)
    if r_hi < r_lo:
        return
    x0, y0, x1, y1 = [], [], [], []
    for ring in rings:
        x = ring[:, 0] / grid.ds[1] - grid.col0
        y = ring[:, 1] / grid.ds[0] - grid.row0
        x0.append(x)
        y0.append(y)
        x1.append(np.roll(x, -1))
        y1.append(np.roll(y, -1))
    ex0, ey0, ex1, ey1 = (np.concatenate(v) for v in (x0, y0, x1, y1))
    keep = ey0 != ey1
    ex0, ey0, ex1, ey1 = ex0[keep], ey0[keep], ex1[keep], ey1[keep]
    yc = np.arange(r_lo, r_hi + 1, dtype=np.float64)[:, None] + 0.5
    lo, hi = np.minimum(ey0, ey1), np.maximum(ey0, ey1)
    spans = (lo <= yc) & (yc < hi)  # half-open: a vertex is counted once
    xc = ex0 + (yc - ey0) * (ex1 - ex0) / (ey1 - ey0)
    xc = np.where(spans, xc, np.inf)
    xc.sort(axis=1)
    n = spans.sum(axis=1)
    pairs = xc[:, : 2 * (xc.shape[1] // 2)]
    k = np.arange(pairs.shape[1] // 2)[None, :]
    valid = k < (n // 2)[:, None]
    if not valid.any():
        return
    # pixel c is inside when start <= c + 0.5 < stop; fill spans via a difference array
    finite = np.where(np.isfinite(pairs), pairs, 0.0)
    starts = np.clip(np.ceil(finite[:, 0::2] - 0.5), 0, grid.cols).astype(np.int64)
    stops = np.clip(np.ceil(finite[:, 1::2] - 0.5), 0, grid.cols).astype(np.int64)
    c_lo = int(starts[valid].min())
    c_hi = int(stops[valid].max())
    if c_hi <= c_lo:
        return
    rows_idx = np.broadcast_to(np.arange(len(n))[:, None], starts.shape)[valid]
    diff = np.zeros((len(n), c_hi - c_lo + 1), np.int32)
    np.add.at(diff, (rows_idx, starts[valid] - c_lo), 1)
    np.add.at(diff, (rows_idx, stops[valid] - c_lo), -1)
    inside = np.cumsum(diff, axis=1)[:, :-1] > 0
    out[r_lo : r_hi + 1, c_lo:c_hi][inside] = value
