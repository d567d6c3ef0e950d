"""Seed 000's dataset preparation: tissue tiles of a level with their cell-level masks."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.annotations.raster import CELL, Grid, cell_grid
from napari_cpadv.files import write_atomic, write_json
from napari_cpadv.slide.slide import Slide
from napari_cpadv.slide.tiles import Tile, tissue_tiles
from napari_cpadv.slide.tissue import tile_is_tissue

INDEX = "index.csv"
ORIGIN = "dataset.json"  # the slide the tiles came from: real or painted, µm per pixel


def origin_of(slide: Slide, level: int) -> dict[str, Any]:
    """What a detector trained on ``slide``'s ``level`` learnt from: the slide, whether it
    is painted (``synthetic``) or ``real`` tissue, and its µm per pixel there (``None``
    without a resolution); ``models.origin`` reads it into the weights' record."""
    from napari_cpadv.slide.synthetic import is_painted

    scale = slide.level_scale(level)
    return {
        "slide": str(slide.path),
        "level": level,
        "tissue": "synthetic" if is_painted(slide) else "real",
        "um_per_pixel": None if scale is None else round(float(scale[1]), 4),
    }
COLUMNS = (
    "tile",
    "mask",
    "level",
    "row",
    "col",
    "x0",
    "y0",
    "size",
    "tumour_cells",
    "nuclei",
    "tumour_nuclei",
)


def read_nuclei(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, tumour)`` of every nucleus in a synthetic slide's ``.truth.json``.

    Positions are level-0 pixels; ``tumour`` is boolean. Raises ``FormatError`` naming the
    file when it is not such a truth file.
    """
    import json

    from napari_cpadv.errors import FormatError

    p = Path(path)
    try:
        nuclei = json.loads(p.read_text())["nuclei"]
        x = np.asarray(nuclei["x"], dtype=np.float64)
        y = np.asarray(nuclei["y"], dtype=np.float64)
        tumour = np.asarray(nuclei["tumour"], dtype=bool)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(p, f"not a synthetic slide's truth JSON with nuclei ({exc})") from exc
    if not x.shape == y.shape == tumour.shape or x.ndim != 1:
        raise FormatError(p, "nuclei x, y and tumour differ in length")
    return x, y, tumour


def read_truth_tumours(path: str | os.PathLike[str]) -> list[Any]:
    """The tumour regions of a synthetic slide's ``.truth.json`` as ``Tumor`` annotations
    (a real field's truth holds nuclei only: none). Raises ``FormatError`` naming the file
    when it is not such a truth file."""
    import json

    from napari_cpadv.annotations.model import Annotation
    from napari_cpadv.errors import FormatError
    from napari_cpadv.slide.synthetic import Polygon

    p = Path(path)
    try:
        tumours = [Polygon.from_json(t) for t in json.loads(p.read_text()).get("tumours", [])]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError(p, f"not a synthetic slide's truth JSON ({exc})") from exc
    return [Annotation(t.exterior, t.holes, cls="Tumor") for t in tumours]


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_tile_dataset(
    slide: Slide,
    annotations: str | os.PathLike[str] | None,
    *,
    level: int,
    size: int,
    out: Path,
    truth: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write every tile whose mean colour passes seed 000's hue rule, with its cell mask.

    Layout under ``out``: ``tiles/R_C.png`` (RGB), ``masks/R_C.png`` (one pixel per cell of
    4 x 4 level pixels, 255 for tumour by ``raster.CELL_POSITIVE_FRACTION``) and
    ``index.csv`` (file names, level position, level-0 position ``(x0, y0)``, size and the
    fraction of tumour cells), written last. With a synthetic slide's ``truth`` JSON the
    index also counts the nuclei whose centres lie in each tile, and the tumour nuclei among
    them (seed 001's patch labels); without it both columns are -1.
    """
    _check_size(slide, size)  # before any folder is made
    (out / "tiles").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    rows = []
    for t in tissue_tile_records(slide, annotations, level=level, size=size, truth=truth):
        stem = f"{t.tile.row}_{t.tile.col}"
        write_atomic(out / "tiles" / f"{stem}.png", _png(t.pixels))
        write_atomic(out / "masks" / f"{stem}.png", _png((t.label * 255).astype(np.uint8)))
        rows.append(
            (
                f"tiles/{stem}.png",
                f"masks/{stem}.png",
                level,
                t.tile.row,
                t.tile.col,
                t.tile.x0,
                t.tile.y0,
                size,
                t.tumour_cells,
                *t.counts,
            )
        )
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    write_json(out / ORIGIN, origin_of(slide, level))
    write_atomic(out / INDEX, text.getvalue().encode())
    return {
        "out": str(out),
        "tiles": len(rows),
        "level": level,
        "size": size,
        "tumour_tiles": sum(1 for r in rows if r[8] > 0),
    }


@dataclass(frozen=True)
class TileRecord:
    """One tissue tile of a level: where it is, its pixels, its cell labels (one per cell
    of 4 x 4 level pixels), the share of tumour cells, and its nuclei and tumour nuclei
    (``-1`` without a truth file)."""

    tile: Tile
    pixels: np.ndarray
    label: np.ndarray
    tumour_cells: float
    counts: tuple[int, int]


def tissue_tile_records(
    slide: Slide,
    annotations: str | os.PathLike[str] | None,
    *,
    level: int,
    size: int,
    truth: str | os.PathLike[str] | None = None,
) -> Iterator[TileRecord]:
    """Every tile whose mean colour passes seed 000's hue rule, in row-major order, with its
    cell labels: what ``write_tile_dataset`` writes and a streamed tile set indexes."""
    from napari_cpadv.annotations import read_annotations

    _check_size(slide, size)
    anns = read_annotations(annotations) if annotations is not None else []
    nuclei = read_nuclei(truth) if truth is not None else None
    g0, g = slide.geometry[0], slide.geometry[level]
    grid = Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols))
    for t in tissue_tiles(slide, level=level, size=size, min_fraction=0.0):
        if t.fraction == 0:
            continue
        pixels = slide.read_region(level, t.row, t.col, size, size)
        if not tile_is_tissue(pixels):
            continue
        _, label = cell_grid(anns, grid.window(t.row, t.col, size, size))
        counts = _count(nuclei, t.x0, t.y0, size * grid.ds[1], size * grid.ds[0])
        yield TileRecord(t, pixels, label, round(float(label.mean()), 6), counts)


def _check_size(slide: Slide, size: int) -> None:
    if size % CELL:
        raise ValueError(f"{slide.path}: tile size {size} is not a multiple of {CELL}")


def _count(
    nuclei: tuple[np.ndarray, np.ndarray, np.ndarray] | None, x0: int, y0: int, w: float, h: float
) -> tuple[int, int]:
    if nuclei is None:
        return -1, -1
    x, y, tumour = nuclei
    inside = (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)
    return int(inside.sum()), int((inside & tumour).sum())
