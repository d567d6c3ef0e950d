"""Plane geometry shared by the slide painter and the annotations (level-0 pixels, x-y)."""

from __future__ import annotations

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
