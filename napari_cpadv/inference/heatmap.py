"""A detector over a region of a slide level, tile by tile, without seams.

The output is the detector's cell grid: one value per ``cell`` x ``cell`` pixels of the
level (4 for the cell heads; the patch side for a classifier). Each tile is read with
``detector.margin`` pixels of context on every side (background colour beyond the slide),
run, and cropped back to its own cells, so the stitched map equals the detector run on the
whole region wherever the detector's receptive field is within the margin (exactly, for the
DAE). Tile sides and offsets are multiples of ``detector.multiple`` so that every pooling
layer sees the same phase as on the whole region.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Progress, Work
from napari_cpadv.slide.slide import Slide

Scope = Literal["region", "tissue", "slide"]


@dataclass(frozen=True)
class Window:
    """A block of cells: ``(row, col)`` of its first cell and its size, in cells."""

    row: int
    col: int
    rows: int
    cols: int


@dataclass(frozen=True)
class Heatmap:
    """Tumour logits on a cell grid of one slide level.

    ``logits`` ``(rows, cols)`` float32 covers cells ``origin`` onwards (NaN where not
    computed); a cell is ``cell`` x ``cell`` pixels of ``level``, i.e. ``cell *
    downsample`` level-0 pixels.
    """

    logits: np.ndarray
    level: int
    cell: int
    downsample: float
    origin: tuple[int, int] = (0, 0)
    attrs: dict[str, Any] = field(default_factory=dict)

    def probabilities(self) -> np.ndarray:
        return sigmoid(self.logits)


def sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x, dtype=np.float32)
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    return out


def halve(values: np.ndarray) -> np.ndarray:
    """2x NaN-aware mean of a float grid (odd sides padded with NaN): the next pyramid level."""
    r, c = -(-values.shape[0] // 2) * 2, -(-values.shape[1] // 2) * 2
    padded = np.full((r, c), np.nan, np.float32)
    padded[: values.shape[0], : values.shape[1]] = values
    blocks = padded.reshape(r // 2, 2, c // 2, 2)
    count = np.isfinite(blocks).sum(axis=(1, 3))
    total = np.nansum(blocks, axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def cells_of_box(
    slide: Slide, level: int, cell: int, box: tuple[float, float, float, float]
) -> Window:
    """The cells of ``level`` (``cell`` pixels a side) covering a level-0 box
    ``(row0, col0, row1, col1)``."""
    side = cell * float(slide.downsamples[level])
    eps = 1e-3  # a box drawn in µm comes back with float32 rounding of the µm scale
    r0, c0 = (max(0, math.floor(v / side + eps)) for v in box[:2])
    r1, c1 = (math.ceil(v / side - eps) for v in box[2:])
    return Window(r0, c0, max(0, r1 - r0), max(0, c1 - c0))


def cell_shape(slide: Slide, level: int, cell: int) -> tuple[int, int]:
    """Cells of the whole level (partial cells at the edges count)."""
    g = slide.geometry[level]
    return -(-g.rows // cell), -(-g.cols // cell)


def windows(
    shape: tuple[int, int],
    *,
    block: int,
    area: Window | None = None,
    keep: np.ndarray | None = None,
) -> list[Window]:
    """Blocks of ``block`` x ``block`` cells covering ``area`` (default all of ``shape``).

    Blocks sit on the global grid of ``block`` cells (so on-demand chunks and batch tiles
    coincide). ``keep`` is an optional boolean map over the grid of blocks (tissue).
    """
    rows, cols = shape
    a = area or Window(0, 0, rows, cols)
    out = []
    for br in range(a.row // block, -(-(a.row + a.rows) // block)):
        for bc in range(a.col // block, -(-(a.col + a.cols) // block)):
            if keep is not None and not keep[br, bc]:
                continue
            r0, c0 = br * block, bc * block
            out.append(Window(r0, c0, min(block, rows - r0), min(block, cols - c0)))
    return out


def run_windows(
    detector: Detector,
    slide: Slide,
    level: int,
    blocks: list[Window],
    *,
    device: Any = "cpu",
    batch: int = 1,
) -> Iterator[tuple[Window, np.ndarray]]:
    """Tumour logits for each block of cells, ``batch`` blocks per forward pass."""
    import torch

    detector.to(device).eval()
    cell, margin = detector.cell, detector.margin
    for i in range(0, len(blocks), batch):
        group = blocks[i : i + batch]
        side = max(max(w.rows, w.cols) for w in group) * cell
        side = -(-side // detector.multiple) * detector.multiple
        tiles = np.stack(
            [
                slide.read_region(
                    level,
                    w.row * cell - margin,
                    w.col * cell - margin,
                    side + 2 * margin,
                    side + 2 * margin,
                )
                for w in group
            ]
        )
        x = torch.from_numpy(tiles).to(device).permute(0, 3, 1, 2).float().div_(255)
        with torch.no_grad():
            if detector.output == "classes":
                out = _classify(detector, x, side)
            else:
                m = margin // cell
                # a detector may offer logits meant for tiles of a larger image
                run = getattr(detector, "slide_logits", detector.tumour_logits)
                out = run(x)[:, m : m + side // cell, m : m + side // cell]
        out = out.float().cpu().numpy()
        for w, o in zip(group, out, strict=True):
            yield w, o[: w.rows, : w.cols]


def _classify(detector: Detector, x: Any, side: int) -> Any:
    """A classifier's logit for each ``cell`` x ``cell`` patch of the tiles."""
    p = detector.cell
    n, c = x.shape[:2]
    k = side // p
    patches = x.unfold(2, p, p).unfold(3, p, p)  # n, c, k, k, p, p
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(n * k * k, c, p, p)
    return detector.tumour_logits(patches).reshape(n, k, k)


def tissue_blocks(slide: Slide, level: int, *, cell: int, block: int) -> np.ndarray:
    """Which blocks of ``block`` x ``block`` cells hold any tissue (seed 000's rule)."""
    from napari_cpadv.slide.tiles import tissue_tiles

    rows, cols = cell_shape(slide, level, cell)
    keep = np.zeros((-(-rows // block), -(-cols // block)), bool)
    size = block * cell
    for t in tissue_tiles(slide, level=level, size=size, min_fraction=0.0):
        if t.fraction > 0:
            keep[t.row // size, t.col // size] = True
    return keep


def heatmap(
    detector: Detector,
    slide: Slide,
    *,
    level: int,
    scope: Scope = "slide",
    area: Window | None = None,
    block: int | None = None,
    device: Any = "cpu",
    batch: int = 1,
) -> Work[Heatmap]:
    """Run ``detector`` over ``slide``'s ``level`` and return the stitched heatmap.

    Parameters
    ----------
    scope
        ``"region"`` (the cells of ``area``), ``"tissue"`` (blocks with tissue; others NaN)
        or ``"slide"`` (everything).
    area
        For ``"region"``: cells, as a ``Window``; the heatmap covers exactly these cells.
    block
        Cells per block side (default: 512-pixel tiles, or one patch for a classifier). The
        blocks of ``"slide"`` and ``"tissue"`` sit on the slide's grid (as on-demand chunks
        do); those of ``"region"`` start at the area's corner.
    """
    slide.check_level(level)
    shape = cell_shape(slide, level, detector.cell)
    block = block or max(1, 512 // detector.cell)
    if scope == "region":
        if area is None:
            raise ValueError("scope 'region' needs an area")
        r0, c0 = max(area.row, 0), max(area.col, 0)
        area = Window(
            r0,
            c0,
            min(area.row + area.rows, shape[0]) - r0,
            min(area.col + area.cols, shape[1]) - c0,
        )
        if area.rows <= 0 or area.cols <= 0:
            raise ValueError(f"{slide.path}: the area lies outside level {level}")
    else:
        area = Window(0, 0, *shape)
    keep = (
        tissue_blocks(slide, level, cell=detector.cell, block=block) if scope == "tissue" else None
    )
    if scope == "region":
        # A drawn region's blocks start at its own corner, not on the slide's grid: a small
        # rectangle is one forward pass instead of up to four whole blocks cropped (for the
        # sparse coder, whose cost is its area, a 128-cell region cost 4 x 656² pixels of
        # LCA). The values are the same within the margin's tolerance (tests/inference).
        blocks = [
            Window(w.row + area.row, w.col + area.col, w.rows, w.cols)
            for w in windows((area.rows, area.cols), block=block)
        ]
    else:
        blocks = windows(shape, block=block, area=area, keep=keep)
    out = np.full((area.rows, area.cols), np.nan, np.float32)
    for k, (w, logits) in enumerate(
        run_windows(detector, slide, level, blocks, device=device, batch=batch)
    ):
        _paste(out, area, w, logits)
        yield Progress(k + 1, len(blocks), {"row": w.row, "col": w.col})
    return Heatmap(
        logits=out,
        level=level,
        cell=detector.cell,
        downsample=float(slide.downsamples[level]),
        origin=(area.row, area.col),
        attrs={"detector": detector.name, "slide": str(slide.path), "scope": scope},
    )


def _paste(out: np.ndarray, area: Window, w: Window, values: np.ndarray) -> None:
    r0, c0 = max(w.row, area.row), max(w.col, area.col)
    r1, c1 = min(w.row + w.rows, area.row + area.rows), min(w.col + w.cols, area.col + area.cols)
    if r0 < r1 and c0 < c1:
        out[r0 - area.row : r1 - area.row, c0 - area.col : c1 - area.col] = values[
            r0 - w.row : r1 - w.row, c0 - w.col : c1 - w.col
        ]
