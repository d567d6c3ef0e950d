"""The synthetic slide's scene, built from the seed: tissue sections (star-shaped blobs),
tumour regions with holes and unannotated foci as polygons in level-0 pixels, the nucleus
lattice's spacing and the stain strengths; and which points lie in which blobs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_cpadv.geometry import Grid, fill_polygon, points_in_ring

CELL_UM = 9.5
"""Spacing of the nucleus lattice, micrometres."""
BACKGROUND = (243, 242, 240)
_NUCLEUS_DTYPE = np.dtype([("x", "f4"), ("y", "f4"), ("radius", "f4"), ("tumour", "?")])


@dataclass(frozen=True)
class Polygon:
    """A polygon in level-0 pixels, ``(x, y)`` vertices, not closed, with optional holes."""

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "exterior": np.round(self.exterior, 2).tolist(),
            "holes": [np.round(h, 2).tolist() for h in self.holes],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Polygon:
        return cls(
            np.asarray(obj["exterior"], float),
            tuple(np.asarray(h, float) for h in obj.get("holes", ())),
        )


@dataclass(frozen=True)
class _Blob:
    polygon: Polygon
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class _Scene:
    shape: tuple[int, int]
    seed: int
    px_um: float  # micrometres per level-0 pixel used for painting
    tissue: tuple[_Blob, ...]
    tumours: tuple[_Blob, ...]
    foci: tuple[_Blob, ...]
    cell_px: float
    tissue_cells: np.ndarray  # (cell rows + 2, cell cols + 2) bool, one cell of margin
    stain: tuple[float, float]  # haematoxylin, eosin strength


def _star(
    rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, rough: float, n: int = 128
) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 9):
        r += rough * rng.normal() / k**1.2 * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.45, 1.6)
    rot = rng.uniform(0, np.pi)
    x, y = rx * r * np.cos(theta), ry * r * np.sin(theta)
    xr = cx + x * np.cos(rot) - y * np.sin(rot)
    yr = cy + x * np.sin(rot) + y * np.cos(rot)
    return np.stack([xr, yr], axis=1)


def _blob(exterior: np.ndarray, holes: Sequence[np.ndarray] = ()) -> _Blob:
    x0, y0 = exterior.min(axis=0)
    x1, y1 = exterior.max(axis=0)
    return _Blob(Polygon(exterior, tuple(holes)), (x0, y0, x1, y1))


def _build_scene(
    shape: tuple[int, int],
    seed: int,
    px_um: float,
    *,
    n_tumours: int | None,
    n_foci: int,
    tissue_fraction: float,
) -> _Scene:
    rows, cols = shape
    rng = np.random.default_rng(seed)
    # Tissue sections: one per slot along the long side, each a rough ellipse.
    long_side, short_side = max(rows, cols), min(rows, cols)
    n_sections = int(np.clip(round(long_side / short_side), 1, 4))
    slot = long_side / n_sections
    area = tissue_fraction * rows * cols / n_sections
    tissue = []
    for k in range(n_sections):
        aspect = rng.uniform(0.7, 1.3)
        ry = math.sqrt(area / math.pi / aspect)
        rx = ry * aspect
        rx, ry = min(rx, 0.42 * slot), min(ry, 0.42 * short_side)
        c_long = (k + 0.5) * slot + rng.uniform(-0.04, 0.04) * slot
        c_short = short_side / 2 + rng.uniform(-0.05, 0.05) * short_side
        cx, cy = (c_long, c_short) if cols >= rows else (c_short, c_long)
        tissue.append((cx, cy, rx, ry, _blob(_star(rng, cx, cy, rx, ry, 0.35))))
    # Tumour regions inside the sections; half of them with a hole of normal tissue.
    if n_tumours is None:
        n_tumours = max(1, min(8, round(rows * cols / 4e6)))
    tumours, foci = [], []
    for k in range(n_tumours + n_foci):
        cx, cy, rx, ry, _ = tissue[rng.integers(len(tissue))]
        inner = min(rx, ry) * 0.45
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.65) * inner
        tx, ty = cx + dist * np.cos(ang), cy + dist * np.sin(ang)
        if k < n_tumours:
            tr = inner * rng.uniform(0.25, 0.55)
            ext = _star(rng, tx, ty, tr, tr * rng.uniform(0.6, 1.0), 0.55, 96)
            holes = []
            if k == 0 or rng.random() < 0.5:
                hr = tr * rng.uniform(0.15, 0.25)
                holes.append(_star(rng, tx, ty, hr, hr, 0.3, 48))
            tumours.append(_blob(ext, holes))
        else:  # a small focus, 40-90 µm across, that the truth leaves out
            fr = rng.uniform(20, 45) / px_um
            foci.append(_blob(_star(rng, tx, ty, fr, fr, 0.3, 32)))
    cell_px = CELL_UM / px_um
    tissue_cells = _tissue_cells(shape, cell_px, [t[4] for t in tissue])
    stain = (float(rng.uniform(0.85, 1.1)), float(rng.uniform(0.85, 1.1)))
    return _Scene(
        shape,
        seed,
        px_um,
        tuple(t[4] for t in tissue),
        tuple(tumours),
        tuple(foci),
        cell_px,
        tissue_cells,
        stain,
    )


def _fill(
    size: tuple[int, int], blobs: Sequence[_Blob], *, sx: float, sy: float, x0: float, y0: float
) -> np.ndarray:
    """Rasterise blobs (exteriors on, holes off) on a ``size`` (rows, cols) grid.

    Grid pixel ``(r, c)`` has its centre at level-0 ``((x0 + c + 0.5) * sx, (y0 + r + 0.5) * sy)``:
    the rule :func:`napari_cpadv.annotations.raster.rasterize` applies to the truth polygons.
    """
    out = np.zeros(size, np.uint8)
    grid = Grid(size[0], size[1], (sy, sx), int(y0), int(x0))
    for b in blobs:
        fill_polygon(out, (b.polygon.exterior, *b.polygon.holes), grid, 1)
    return out.astype(bool)


def _tissue_cells(shape: tuple[int, int], cell_px: float, tissue: Sequence[_Blob]) -> np.ndarray:
    """Which lattice cells hold tissue, with one cell of margin on every side."""
    grid = (math.ceil(shape[0] / cell_px) + 2, math.ceil(shape[1] / cell_px) + 2)
    return _fill(grid, tissue, sx=cell_px, sy=cell_px, x0=-1.0, y0=-1.0)


def _in_blobs(px: np.ndarray, py: np.ndarray, blobs: Sequence[_Blob]) -> np.ndarray:
    """Points inside any blob (its exterior, not its holes)."""
    out = np.zeros(px.shape, bool)
    for b in blobs:
        near = (px >= b.bbox[0]) & (px <= b.bbox[2]) & (py >= b.bbox[1]) & (py <= b.bbox[3])
        if not near.any():
            continue
        qx, qy = px[near], py[near]
        hit = points_in_ring(qx, qy, b.polygon.exterior)
        for h in b.polygon.holes:
            hit &= ~points_in_ring(qx, qy, h)
        out[near] |= hit
    return out


# -- per-cell nucleus parameters ---------------------------------------------------------
