"""What the Export dock writes: annotations QuPath and ASAP read, masks, the adversarial
region as a lossless TIFF, and the metrics. Every file is written under a temporary name
and moved into place, so a failed export leaves an existing file as it was."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.annotations.model import Annotation
from napari_cpadv.annotations.raster import RasterNotes
from napari_cpadv.errors import FormatError
from napari_cpadv.files import replacing


def heatmap_annotations(hm: Any, *, threshold: float = 0.5, cls: str = "Tumor") -> list[Any]:
    """A heatmap thresholded at ``threshold`` as polygons in level-0 pixels."""
    return grid_annotations(
        hm.probabilities(), hm.cell * hm.downsample, hm.origin, threshold=threshold, cls=cls,
        level=hm.level,
    )  # fmt: skip


def grid_annotations(
    values: np.ndarray,
    cell_level0: float,
    origin: tuple[int, int],
    *,
    threshold: float = 0.5,
    cls: str = "Tumor",
    level: int = 0,
) -> list[Any]:
    """Probabilities on a cell grid (``cell_level0`` level-0 pixels a cell, first cell at
    ``origin`` (row, col)) thresholded into polygons in level-0 pixels; NaN is outside."""
    from napari_cpadv.annotations.raster import mask_to_annotations

    s = float(cell_level0)
    return mask_to_annotations(
        np.nan_to_num(np.asarray(values, np.float32), nan=0.0),
        threshold=threshold,
        ds=(s, s),
        level=level,
        cls=cls,
        origin=(origin[1] * s, origin[0] * s),
    )


def write_heatmap_annotations(
    hm: Any, path: str | os.PathLike[str], *, threshold: float = 0.5
) -> Path:
    """``.geojson`` (QuPath) or ``.xml`` (ASAP), by extension."""
    from napari_cpadv.annotations import write_annotations

    return write_annotations(heatmap_annotations(hm, threshold=threshold), path)


def write_heatmap_mask(
    hm: Any,
    path: str | os.PathLike[str],
    *,
    mpp: tuple[float, float] | None,
    threshold: float = 0.5,
) -> Path:
    """The thresholded heatmap as a label TIFF on its cell grid (1 = tumour), with
    resolution tags that lay it over the slide."""
    from napari_cpadv.annotations.masks import write_mask_tiff

    mask = (np.nan_to_num(hm.probabilities(), nan=0.0) >= threshold).astype(np.uint8)
    s = hm.cell * hm.downsample
    return write_mask_tiff(mask, path, mpp=mpp, downsample=(s, s))


@dataclass(frozen=True)
class AnnotationMask:
    """A written annotation mask: where, its size, what it holds and what it left out."""

    path: Path
    level: int
    shape: tuple[int, int]
    tumour_pixels: int
    notes: RasterNotes

    @property
    def tumour_fraction(self) -> float:
        return self.tumour_pixels / max(1, self.shape[0] * self.shape[1])


def write_annotation_mask(
    slide: Any,
    annotations: Sequence[Annotation],
    level: int,
    path: str | os.PathLike[str],
    *,
    allow_empty: bool = True,
) -> AnnotationMask:
    """Annotations rasterised on a whole slide level (1 = tumour) as a pyramidal label TIFF
    laid over the slide, painted and written a band of rows at a time, so that memory is
    bounded by the band and the reduced levels (under a third of the mask), never by the
    number of vertices.

    Raises
    ------
    SlideError
        When even the reduced levels would not fit in memory.
    FormatError
        With ``allow_empty=False``, when no tumour pixel falls on the level (any file
        already at ``path`` is left as it was).
    """
    from napari_cpadv.annotations.masks import write_mask_bands
    from napari_cpadv.annotations.raster import rasterize
    from napari_cpadv.geometry import Grid

    slide.check_level(level)
    slide.check_in_memory(level, "a mask's reduced levels", bytes_per_pixel=1 / 3)
    g0, g = slide.geometry[0], slide.geometry[level]
    grid = Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols))
    areas = [a for a in annotations if a.is_area]
    tumour = [0]

    def band(r0: int, r1: int) -> np.ndarray:
        m = rasterize(areas, grid.window(r0, 0, r1 - r0, grid.cols))
        tumour[0] += int(np.count_nonzero(m))
        return m

    notes = RasterNotes.of(annotations)

    def refuse_empty() -> None:
        if tumour[0] == 0 and not allow_empty:
            raise FormatError(path, _empty_reason(annotations, g0, notes))

    out = write_mask_bands(
        (g.rows, g.cols),
        band,
        path,
        mpp=slide.mpp,
        downsample=grid.ds,
        before_replace=refuse_empty,
    )
    return AnnotationMask(out, level, (g.rows, g.cols), tumour[0], notes)


def _empty_reason(annotations: Sequence[Annotation], g0: Any, notes: RasterNotes) -> str:
    if not annotations:
        return "the annotation file holds no annotation: the mask would be empty"
    tumours = [a for a in annotations if a.is_area and a.is_tumour]
    if not tumours:
        classes = sorted({a.cls or "(no class)" for a in annotations})
        return f"no annotation is a tumour area (classes: {', '.join(classes)}): empty mask"
    on = [a for a in tumours if a.bbox[0] < g0.cols and a.bbox[1] < g0.rows]
    on = [a for a in on if a.bbox[2] > 0 and a.bbox[3] > 0]
    if not on:
        x0 = min(a.bbox[0] for a in tumours)
        y0 = min(a.bbox[1] for a in tumours)
        return (
            f"none of the {len(tumours)} tumour annotations lies on the slide "
            f"({g0.cols} x {g0.rows} level-0 pixels; they start at x {x0:.0f}, y {y0:.0f}): "
            "the mask would be empty"
        )
    return "the tumour annotations cover no pixel centre of this level: the mask would be empty"


def write_region_tiff(
    slide: Any, level: int, box: tuple[int, int, int, int], path: str | os.PathLike[str]
) -> Path:
    """The level pixels of ``box`` ``(r0, c0, r1, c1)`` as one lossless (deflate) TIFF page,
    with the level's resolution and the region's level-0 origin in its description."""
    import tifffile

    r0, c0, r1, c1 = box
    pixels = slide.read_region(level, r0, c0, r1 - r0, c1 - c0)
    out = Path(path)
    ds = float(slide.downsamples[level])
    extra: dict[str, Any] = {}
    if slide.mpp is not None:
        extra = {
            "resolution": (1e4 / (slide.mpp[0] * ds), 1e4 / (slide.mpp[1] * ds)),
            "resolutionunit": "CENTIMETER",
        }
    meta = {"level": level, "level0_origin_xy": [c0 * ds, r0 * ds], "source": str(slide.path)}
    with replacing(out) as tmp:
        tifffile.imwrite(
            tmp,
            pixels,
            photometric="rgb",
            compression="zlib",
            description=json.dumps(meta),
            metadata=None,
            software="napari-cpadv",
            **extra,
        )
    return out


def write_metrics(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """The metrics table as ``.csv`` or ``.json``, by extension."""
    from napari_cpadv.experiments.metrics_table import metrics_csv
    from napari_cpadv.files import write_atomic, write_json

    p = Path(path)
    if p.suffix.lower() == ".csv":
        return write_atomic(p, metrics_csv(rows).encode())
    if p.suffix.lower() == ".json":
        return write_json(p, {"metrics": rows})
    raise ValueError(f"{p}: metrics are written as .csv or .json")
