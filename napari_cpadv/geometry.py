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
class Box:
    """A level-0 rectangle in pixels, half-open: columns ``x0 <= x < x1``, rows
    ``y0 <= y < y1``. The viewer gives rectangles as ``(r0, c0, r1, c1)`` (napari's row,
    column order) and the command line and reports as ``(x, y, w, h)`` (QuPath's and
    OpenSlide's); both are converted here and nowhere else."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_rows_cols(cls, r0: float, c0: float, r1: float, c1: float) -> Box:
        return cls(float(c0), float(r0), float(c1), float(r1))

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Box:
        return cls(float(x), float(y), float(x) + float(w), float(y) + float(h))

    @property
    def rows_cols(self) -> tuple[float, float, float, float]:
        """``(r0, c0, r1, c1)``."""
        return self.y0, self.x0, self.y1, self.x1

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of a box on whole pixels (see ``outward``)."""
        x0, y0 = int(self.x0), int(self.y0)
        return x0, y0, int(self.x1) - x0, int(self.y1) - y0

    @property
    def empty(self) -> bool:
        return not (self.x1 > self.x0 and self.y1 > self.y0)

    def outward(self, tolerance: float = 0.0) -> Box:
        """On whole pixels, rounded outward (every pixel the box touches is in), a
        coordinate within ``tolerance`` of an integer taken as that integer."""
        return Box(
            float(np.floor(self.x0 + tolerance)),
            float(np.floor(self.y0 + tolerance)),
            float(np.ceil(self.x1 - tolerance)),
            float(np.ceil(self.y1 - tolerance)),
        )

    def clipped(self, rows: int, cols: int) -> Box:
        """The part on a ``rows x cols`` slide (``empty`` when none is)."""
        return Box(max(0.0, self.x0), max(0.0, self.y0), min(cols, self.x1), min(rows, self.y1))

    def overlaps(self, rows: int, cols: int) -> bool:
        return not self.clipped(rows, cols).empty


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


FILL_CHUNK = 2**21
"""Edge-row crossings computed at once by :func:`fill_polygon` (bounds its memory)."""


def fill_polygon(out: np.ndarray, rings: Sequence[np.ndarray], grid: Grid, value: int) -> None:
    """Scanline even-odd fill of one polygon (its rings together) into ``out``.

    A pixel is filled when its centre is inside: level pixel ``(r, c)`` of ``grid`` has its
    centre at level-0 ``((col0 + c + 0.5) * ds_x, (row0 + r + 0.5) * ds_y)``. Vertices beyond
    the grid are clipped.

    Memory is bounded by the part of ``out`` the polygon covers, whatever its number of
    vertices: each edge toggles the parity of the pixels right of where it crosses a row's
    centre line (one byte per covered pixel), and the crossings are made
    :data:`FILL_CHUNK` at a time. (scikit-image's ``polygon`` and matplotlib's ``Path`` hold
    every vertex against every row or pixel, which is what this avoids.)
    """
    xs, ys = [], []
    for ring in rings:
        xs.append(ring[:, 0] / grid.ds[1] - grid.col0)
        ys.append(ring[:, 1] / grid.ds[0] - grid.row0)
    ex0 = np.concatenate(xs)
    ey0 = np.concatenate(ys)
    ex1 = np.concatenate([np.roll(x, -1) for x in xs])
    ey1 = np.concatenate([np.roll(y, -1) for y in ys])
    lo, hi = np.minimum(ey0, ey1), np.maximum(ey0, ey1)
    # rows whose centre line y = r + 0.5 an edge crosses, half-open (lo <= y < hi), so that
    # a vertex is counted once
    first = np.maximum(np.ceil(lo - 0.5), 0)
    last = np.minimum(np.ceil(hi - 0.5) - 1, grid.rows - 1)
    keep = (ey0 != ey1) & (last >= first)
    if not keep.any():
        return
    ex0, ey0, ex1, ey1 = ex0[keep], ey0[keep], ex1[keep], ey1[keep]
    first, last = first[keep].astype(np.int64), last[keep].astype(np.int64)
    r_lo, r_hi = int(first.min()), int(last.max())
    c_lo = int(np.clip(np.ceil(min(ex0.min(), ex1.min()) - 0.5), 0, grid.cols))
    c_hi = int(np.clip(np.ceil(max(ex0.max(), ex1.max()) - 0.5), 0, grid.cols))
    if c_hi <= c_lo:
        return
    toggles = np.zeros((r_hi - r_lo + 1, c_hi - c_lo + 1), np.uint8)
    counts = last - first + 1
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = int(ends[start - 1]) if start else 0
        stop = int(np.searchsorted(ends, base + FILL_CHUNK, side="right"))
        stop = max(stop, start + 1)
        n = counts[start:stop]
        edge = np.repeat(np.arange(start, stop), n)
        offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        row = first[edge] + offset
        yc = row + 0.5
        x = ex0[edge] + (yc - ey0[edge]) * (ex1[edge] - ex0[edge]) / (ey1[edge] - ey0[edge])
        col = np.clip(np.ceil(x - 0.5), c_lo, c_hi).astype(np.int64) - c_lo
        np.add.at(toggles, (row - r_lo, col), 1)  # uint8 wraps: only the parity counts
        start = stop
    inside = (np.cumsum(toggles, axis=1, dtype=np.uint8) & 1)[:, :-1].view(bool)
    out[r_lo : r_hi + 1, c_lo:c_hi][inside] = value
