"""Polygons to masks at any level and on the cell grid, and masks or heatmaps back to polygons.

Pixel rule: a pixel is inside when its centre is (even-odd over the exterior and holes).
Level-L pixel ``(r, c)`` has its centre at level-0 ``((c + 0.5) * ds_x, (r + 0.5) * ds_y)``,
where ``ds`` is the level's *true* downsample per axis (level-0 size over level size), not
``2**L``. Camelyon16's ordered overwrite holds: tumour polygons are painted first, then
the exclusion groups (``_2``) clear what they cover.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_cpadv.annotations.model import Annotation
from napari_cpadv.geometry import Grid, fill_polygon

__all__ = ["CELL", "Grid", "cell_fraction", "cell_grid", "mask_to_annotations", "rasterize"]

CELL = 4
"""A cell is ``CELL x CELL`` pixels of the level the heatmap was computed at."""
CELL_POSITIVE_FRACTION = 0.5
"""A cell is labelled tumour when at least half its pixels (8 of 16) are tumour."""


def rasterize(
    annotations: Sequence[Annotation],
    grid: Grid,
    *,
    tumour_only: bool = True,
    dtype: type = np.uint8,
) -> np.ndarray:
    """Paint polygons on a grid: 1 inside tumour, 0 elsewhere; exclusions painted last, as 0.

    Parameters
    ----------
    annotations
        In level-0 pixels; only areas (polygons) are painted, points and lines are not
        (:class:`RasterNotes` counts them). With ``tumour_only`` (Camelyon semantics) only
        tumour classes paint 1; otherwise every non-exclusion class does.
    grid
        The level window to paint (true downsample per axis). Coordinates beyond it are
        clipped.

    Returns
    -------
    numpy.ndarray
        ``(grid.rows, grid.cols)`` mask.
    """
    out: np.ndarray = np.zeros((grid.rows, grid.cols), dtype)
    x_lo, x_hi = grid.col0 * grid.ds[1], (grid.col0 + grid.cols) * grid.ds[1]
    y_lo, y_hi = grid.row0 * grid.ds[0], (grid.row0 + grid.rows) * grid.ds[0]

    def visible(a: Annotation) -> bool:
        bx0, by0, bx1, by1 = a.bbox
        return bx1 >= x_lo and bx0 <= x_hi and by1 >= y_lo and by0 <= y_hi

    areas = [a for a in annotations if a.is_area and visible(a)]
    for a in areas:
        if not a.is_exclusion and (a.is_tumour or not tumour_only):
            fill_polygon(out, a.rings, grid, 1)
    for a in areas:
        if a.is_exclusion:
            fill_polygon(out, a.rings, grid, 0)
    return out


@dataclass(frozen=True)
class RasterNotes:
    """What :func:`rasterize` leaves out of a set of annotations, to tell the user.

    Attributes
    ----------
    not_areas
        Points and lines by geometry (a mask paints areas only).
    other_classes
        Areas by class that is neither tumour nor exclusion (not painted under Camelyon
        semantics, never silently taken for tumour).
    """

    not_areas: dict[str, int]
    other_classes: dict[str, int]

    @classmethod
    def of(cls, annotations: Sequence[Annotation]) -> RasterNotes:
        not_areas = Counter[str](a.geometry for a in annotations if not a.is_area)
        other = Counter(
            a.cls or "(no class)"
            for a in annotations
            if a.is_area and not a.is_tumour and not a.is_exclusion
        )
        return cls(dict(not_areas), dict(other))

    def lines(self) -> list[str]:
        out = []
        if self.not_areas:
            what = ", ".join(f"{n} {k}" for k, n in sorted(self.not_areas.items()))
            out.append(f"not rasterised (not areas): {what}")
        if self.other_classes:
            what = ", ".join(f"{k!r} x {n}" for k, n in sorted(self.other_classes.items()))
            out.append(f"areas of classes neither tumour nor exclusion, not painted: {what}")
        return out


CELL_BAND = 2048
"""Rows of a level :func:`cell_grid` paints at a time (its memory: one band, and the cells)."""


def cell_fraction(mask: np.ndarray, cell: int = CELL) -> np.ndarray:
    """Tumour fraction of each ``cell x cell`` block of a level mask (partial blocks dropped)."""
    rows, cols = mask.shape[0] // cell, mask.shape[1] // cell
    m = mask[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell)
    return m.sum(axis=(1, 3), dtype=np.float32) / np.float32(cell * cell)


def cell_grid(
    annotations: Sequence[Annotation], grid: Grid, *, cell: int = CELL
) -> tuple[np.ndarray, np.ndarray]:
    """The cell grid of a level window: ``(fraction, label)``, one value per cell.

    ``fraction`` is the share of the cell's pixels that are tumour (float32);
    ``label`` is ``fraction >= CELL_POSITIVE_FRACTION`` (uint8), the binary label that
    detectors are trained and scored on. The window is painted :data:`CELL_BAND` rows at
    a time, so a whole level costs its cells, not its pixels.
    """
    rows, cols = grid.rows // cell, grid.cols // cell
    frac = np.empty((rows, cols), np.float32)
    step = max(cell, CELL_BAND // cell * cell)
    for r0 in range(0, rows * cell, step):
        n = min(step, rows * cell - r0)
        band = rasterize(annotations, grid.window(grid.row0 + r0, grid.col0, n, grid.cols))
        frac[r0 // cell : (r0 + n) // cell] = cell_fraction(band, cell)
    return frac, (frac >= CELL_POSITIVE_FRACTION).astype(np.uint8)


def mask_to_annotations(
    values: np.ndarray,
    *,
    threshold: float = 0.5,
    ds: tuple[float, float] = (1.0, 1.0),
    level: int = 0,
    min_area: float = 0.0,
    cls: str = "Tumor",
    color: str = "#FF0000",
    kind: str = "detection",
    origin: tuple[float, float] = (0.0, 0.0),
) -> list[Annotation]:
    """Threshold a mask or heatmap into polygons in level-0 pixels.

    Parameters
    ----------
    values
        ``(rows, cols)`` mask or probabilities on a grid whose pixels are ``ds = (ds_y,
        ds_x)`` level-0 pixels (a cell grid of level L has ``ds = 4 * downsample_L``).
    threshold
        Pixels ``>= threshold`` are inside.
    min_area
        Regions smaller than this many level-0 square pixels are dropped.
    origin
        Level-0 ``(x, y)`` of the grid's top-left corner.

    Returns
    -------
    list of Annotation
        Valid polygons with holes; measurements record the threshold, the level, the mean
        value inside and the area in level-0 pixels.
    """
    v = np.asarray(values, dtype=np.float64)
    inside = v >= threshold
    if not inside.any():
        return []
    out = []
    for p in _polygons(inside, ds, origin):
        if p.is_empty or p.area < max(min_area, 1e-9):
            continue
        ext = np.asarray(p.exterior.coords)[:-1]
        holes = tuple(np.asarray(h.coords)[:-1] for h in p.interiors)
        probe = Annotation(ext - origin, tuple(h - np.asarray(origin) for h in holes))
        region = rasterize([probe], Grid(v.shape[0], v.shape[1], ds), tumour_only=False)
        region = region.astype(bool)
        mean = float(v[region].mean()) if region.any() else float(v[inside].mean())
        measured = {"threshold": float(threshold), "level": float(level)}
        measured |= {"mean_probability": mean, "area_px": float(p.area)}
        out.append(
            Annotation(ext, holes, cls=cls, color=color, kind=kind, measurements=measured)  # type: ignore[arg-type]
        )
    return out


def _polygons(
    inside: np.ndarray, ds: tuple[float, float], origin: tuple[float, float]
) -> list[Any]:
    """The regions of a boolean grid as valid shapely polygons with holes, in level-0
    ``(x, y)``: contours traced at the pixel edges, nested by even-odd."""
    import shapely
    from skimage.measure import find_contours

    padded = np.pad(inside.astype(np.float32), 1)
    rings = []
    for contour in find_contours(padded, 0.5):
        # contour in padded (row, col) pixel-index coordinates -> level-0 (x, y)
        x = (contour[:, 1] - 1 + 0.5) * ds[1] + origin[0]
        y = (contour[:, 0] - 1 + 0.5) * ds[0] + origin[1]
        if len(x) >= 4:
            rings.append(shapely.Polygon(np.stack([x, y], axis=1)))
    if not rings:
        return []
    geom = rings[0]
    for ring in rings[1:]:  # nesting by even-odd: a ring inside another is its hole
        geom = geom.symmetric_difference(ring)
    geom = shapely.make_valid(geom)
    return [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, shapely.Polygon)]
