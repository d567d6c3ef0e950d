"""Telling tissue from background.

Seed 000 keeps a tile when its *mean* colour is "purple enough":
``R - B < 32``, ``R - G > 16`` and ``B - G > 16`` (8-bit RGB). The alternative here is
Otsu's threshold on HSV saturation, which adapts to faint or unusual stains.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

TissueMethod = Literal["hue", "otsu"]


def passes_hue_rule(rgb: np.ndarray) -> np.ndarray:
    """Seed 000's rule on colours ``(..., 3)`` (0-255): True where R-B<32, R-G>16, B-G>16."""
    c = np.asarray(rgb, dtype=np.float64)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    return (r - b < 32) & (r - g > 16) & (b - g > 16)


def tile_is_tissue(tile: np.ndarray) -> bool:
    """Seed 000's test of a tile ``(rows, cols, 3)`` uint8: its mean colour passes the hue rule."""
    return bool(passes_hue_rule(tile.reshape(-1, 3).mean(axis=0)))


def saturation(image: np.ndarray) -> np.ndarray:
    """HSV saturation ``(max - min) / max`` of an RGB image, float32 in [0, 1]."""
    img = np.asarray(image, dtype=np.float32)
    mx, mn = img.max(axis=-1), img.min(axis=-1)
    return np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0).astype(np.float32)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` in [0, 1]: values above it form the upper class."""
    hist, edges = np.histogram(np.asarray(values).ravel(), bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def tissue_mask(image: np.ndarray, *, method: TissueMethod = "hue") -> np.ndarray:
    """Per-pixel tissue mask of a (low-resolution) RGB image ``(rows, cols, 3)``.

    ``"hue"`` applies seed 000's rule to each pixel (at thumbnail scale a pixel is already
    the mean of many); ``"otsu"`` thresholds saturation at Otsu's level (at least 0.05,
    so that a blank slide is not split in two).
    """
    if method == "hue":
        return passes_hue_rule(image)
    if method == "otsu":
        sat = saturation(image)
        return sat > max(otsu_threshold(sat), 0.05)
    raise ValueError(f"unknown tissue method {method!r}; use 'hue' or 'otsu'")
