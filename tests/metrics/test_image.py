"""PSNR and SSIM against scikit-image's reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from napari_cpadv.metrics.image import psnr, ssim


def _pair(seed: int, size: int, amplitude: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
    noise = rng.integers(-amplitude, amplitude + 1, a.shape)
    return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(11, 40), st.integers(1, 60))
def test_psnr_and_ssim_match_scikit_image(seed, size, amplitude):
    a, b = _pair(seed, size, amplitude)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-9)
    reference = structural_similarity(
        a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255,
    )  # fmt: skip
    assert ssim(a, b) == pytest.approx(reference, abs=1e-6)


def test_identical_images_and_bad_shapes():
    a, _ = _pair(0, 16, 1)
    assert psnr(a, a) == math.inf and ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a[:8])
    with pytest.raises(ValueError, match="11 x 11"):
        ssim(a[:8, :8], a[:8, :8])


def test_visibility_of_a_batch_pools_the_error_and_averages_ssim():
    from napari_cpadv.metrics.image import psnr, visibility

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    b = a.copy()
    assert visibility(a, b) == {"psnr_db": None, "ssim": 1.0}  # nothing changed: no PSNR
    b[1] = np.clip(a[1].astype(int) + 6, 0, 255)
    v = visibility(a, b)
    # the pooled error of one changed image in three: 10 log10(3) dB above that image's own
    assert v["psnr_db"] == pytest.approx(psnr(a[1], b[1]) + 10 * np.log10(3))
    assert v["ssim"] == pytest.approx((2 + ssim(a[1], b[1])) / 3)
