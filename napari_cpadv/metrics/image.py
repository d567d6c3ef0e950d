"""How visible a perturbation is: PSNR and SSIM between an original and its adversarial copy.

Both take 8-bit RGB ``(H, W, 3)`` (or ``(H, W)``) arrays. SSIM is Wang et al. (2004) with
the usual constants (K1 = 0.01, K2 = 0.03, data range 255) and an 11 x 11 Gaussian window
of σ = 1.5, averaged over the channels and over the pixels whose window fits inside the
image; it matches scikit-image's ``structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter


def psnr(original: np.ndarray, other: np.ndarray, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images)."""
    a, b = _pair(original, other)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def ssim(original: np.ndarray, other: np.ndarray, *, data_range: float = 255.0) -> float:
    """Mean structural similarity (1 for identical images)."""
    a, b = _pair(original, other)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11 x 11 pixels, got {a.shape[:2]}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    pad = 5  # (window - 1) / 2: the border scikit-image leaves out of the mean
    values = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]

        def blur(v: np.ndarray) -> np.ndarray:
            return gaussian_filter(v, sigma=1.5, truncate=3.5, mode="reflect")

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(values))


def visibility(original: np.ndarray, perturbed: np.ndarray) -> dict[str, float | None]:
    """How visible the changes of a batch ``(N, H, W, 3)`` of 8-bit images are: PSNR of the
    pooled mean squared error (``None`` when nothing changed: no finite value) and the
    mean SSIM over the images."""
    a, b = _pair(original, perturbed)
    mse = float(np.mean((a - b) ** 2))
    return {
        "psnr_db": None if mse == 0 else 10 * math.log10(255.0**2 / mse),
        "ssim": float(np.mean([ssim(u, v) for u, v in zip(a, b, strict=True)])),
    }


def _pair(original: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(original, np.float64), np.asarray(other, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} and {b.shape}")
    return a, b
