"""Masks as tiled pyramidal TIFFs that OpenSlide (and so ASAP and QuPath) read back."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import FormatError
from napari_cpadv.files import replacing

MASK_TILE = 512


def mask_pyramid(mask: np.ndarray, *, min_side: int = MASK_TILE) -> list[np.ndarray]:
    """The mask and its 2x reductions (max of each 2 x 2, so no region vanishes)."""
    levels = [mask]
    while max(levels[-1].shape) > min_side and min(levels[-1].shape) > 1:
        levels.append(_reduce(levels[-1]))
    return levels


def _reduce(m: np.ndarray) -> np.ndarray:
    """Max of each 2 x 2 (past the last row and column: 0), allocating only the result."""
    out = m[0::2, 0::2].copy()
    for dr, dc in ((0, 1), (1, 0), (1, 1)):
        part = m[dr::2, dc::2]
        view = out[: part.shape[0], : part.shape[1]]
        np.maximum(view, part, out=view)
    return out


def write_mask_bands(
    shape: tuple[int, int],
    band: Callable[[int, int], np.ndarray],
    path: str | os.PathLike[str],
    *,
    mpp: tuple[float, float] | None,
    downsample: tuple[float, float] = (1.0, 1.0),
    before_replace: Callable[[], None] | None = None,
) -> Path:
    """Write a label mask painted band by band, never whole in memory, as
    :func:`write_mask_tiff` would write it.

    ``band(r0, r1)`` returns rows ``r0:r1`` of the mask, ``(r1 - r0, cols)`` uint8; it is
    called for :data:`MASK_TILE` rows at a time, in order, and each band's tiles go to the
    file as they come. The reduced levels (a quarter of the mask and less) are kept in
    memory and written after it. ``before_replace`` may raise to leave any file already at
    ``path`` as it was.
    """
    rows, cols = shape
    reduced = max(rows, cols) > MASK_TILE and min(rows, cols) > 1
    half = np.zeros(((rows + 1) // 2, (cols + 1) // 2), np.uint8) if reduced else None

    def tiles() -> Iterator[np.ndarray]:
        for r0 in range(0, rows, MASK_TILE):
            b = np.asarray(band(r0, min(r0 + MASK_TILE, rows)), np.uint8)
            if half is not None:
                half[r0 // 2 : r0 // 2 + (b.shape[0] + 1) // 2] = _reduce(b)
            for c0 in range(0, cols, MASK_TILE):
                tile = np.zeros((MASK_TILE, MASK_TILE), np.uint8)
                part = b[:, c0 : c0 + MASK_TILE]
                tile[: part.shape[0], : part.shape[1]] = part
                yield tile

    pages: list[Any] = [tiles()]
    if half is not None:
        pages.append(half)  # filled by the time the first page's tiles are all written
    return _write_pages(
        pages, shape, path, mpp=mpp, downsample=downsample, before_replace=before_replace
    )


def write_mask_tiff(
    mask: np.ndarray,
    path: str | os.PathLike[str],
    *,
    mpp: tuple[float, float] | None,
    downsample: tuple[float, float] = (1.0, 1.0),
) -> Path:
    """Write a label mask ``(rows, cols)`` uint8 as a tiled pyramidal TIFF, atomically.

    Parameters
    ----------
    mask
        Labels (0 background) on the grid of one slide level.
    mpp
        The slide's ``(x, y)`` µm per level-0 pixel; the resolution tags then give the
        mask's own µm per pixel (``mpp * downsample``), so it overlays the slide.
    downsample
        ``(ds_y, ds_x)`` of the level the mask was painted at.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise FormatError(path, f"a mask must be 2-D, got shape {m.shape}")
    m = m.astype(np.uint8)
    return _write_pages(mask_pyramid(m), m.shape, path, mpp=mpp, downsample=downsample)


def _write_pages(
    pages: list[Any],
    shape: tuple[int, int],
    path: str | os.PathLike[str],
    *,
    mpp: tuple[float, float] | None,
    downsample: tuple[float, float],
    before_replace: Callable[[], None] | None = None,
) -> Path:
    """The pyramid's pages, the first maybe an iterator of tiles, each further level the
    2 x 2 max of the one before, to a temporary name, then moved into place."""
    import tifffile

    out = Path(path)
    rows, cols = shape
    with replacing(out) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=rows * cols > 2**31) as tw:
            level_shape = shape
            i = 0
            queue = list(pages)
            while queue:
                level = queue.pop(0)
                kw: dict[str, Any]
                if not isinstance(level, np.ndarray):
                    data, kw = level, {"shape": shape, "dtype": np.uint8}
                else:
                    data, kw, level_shape = level, {}, level.shape
                    if not queue and max(level.shape) > MASK_TILE and min(level.shape) > 1:
                        queue.append(_reduce(level))
                res: dict[str, Any] = {}
                if mpp is not None:
                    fy = rows / level_shape[0] * downsample[0]
                    fx = cols / level_shape[1] * downsample[1]
                    res = {
                        "resolution": (1e4 / (mpp[0] * fx), 1e4 / (mpp[1] * fy)),
                        "resolutionunit": "CENTIMETER",
                    }
                tw.write(
                    data,
                    tile=(MASK_TILE, MASK_TILE),
                    compression="deflate",
                    photometric="minisblack",
                    subfiletype=1 if i else 0,
                    software="napari-cpadv",
                    metadata=None,
                    **kw,
                    **res,
                )
                i += 1
        if before_replace is not None:
            before_replace()
    return out
