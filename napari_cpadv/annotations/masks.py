"""Masks as tiled pyramidal TIFFs that OpenSlide (and so ASAP and QuPath) read back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import FormatError

MASK_TILE = 512


def mask_pyramid(mask: np.ndarray, *, min_side: int = MASK_TILE) -> list[np.ndarray]:
    """The mask and its 2x reductions (max of each 2 x 2, so no region vanishes)."""
    levels = [mask]
    while max(levels[-1].shape) > min_side and min(levels[-1].shape) > 1:
        m = levels[-1]
        h, w = (m.shape[0] + 1) // 2 * 2, (m.shape[1] + 1) // 2 * 2
        padded = np.zeros((h, w), m.dtype)
        padded[: m.shape[0], : m.shape[1]] = m
        levels.append(padded.reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3)))
    return levels


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
    import tifffile

    m = np.asarray(mask)
    if m.ndim != 2:
        raise FormatError(path, f"a mask must be 2-D, got shape {m.shape}")
    out = Path(path)
    tmp = out.with_name(f".{out.name}.part")
    m = m.astype(np.uint8)
    try:
        with tifffile.TiffWriter(tmp, bigtiff=m.size > 2**31) as tw:
            for i, level in enumerate(mask_pyramid(m)):
                res: dict[str, Any] = {}
                if mpp is not None:
                    fy = m.shape[0] / level.shape[0] * downsample[0]
                    fx = m.shape[1] / level.shape[1] * downsample[1]
                    res = {
                        "resolution": (1e4 / (mpp[0] * fx), 1e4 / (mpp[1] * fy)),
                        "resolutionunit": "CENTIMETER",
                    }
                tw.write(
                    level,
                    tile=(MASK_TILE, MASK_TILE),
                    compression="deflate",
                    photometric="minisblack",
                    subfiletype=1 if i else 0,
                    software="napari-cpadv",
                    metadata=None,
                    **res,
                )
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
