"""Each projection lands in its set, is idempotent, and is the nearest point."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_cpadv.attacks import projections as P

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def batches(draw, max_side: int = 4):
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64)
    scale = draw(st.floats(0.01, 2.0))
    delta = scale * (2 * torch.rand(n, 3, h, w, generator=g, dtype=torch.float64) - 1)
    return x, delta


def _rows(t):
    return t.reshape(t.shape[0], -1)


@SETTINGS
@given(batches(), st.floats(0.0, 3.0))
def test_l2_lands_in_the_ball_and_is_the_nearest_point(xd, eps):
    _, d = xd
    p = P.l2(d, eps)
    assert (_rows(p).norm(dim=1) <= eps + 1e-9).all()
    torch.testing.assert_close(P.l2(p, eps), p)
    # the nearest point of a ball is radial: p = d when inside, else d·eps/|d|
    inside = _rows(d).norm(dim=1) <= eps
    for i in range(len(d)):
        want = d[i] if inside[i] else d[i] * eps / d[i].norm()
        torch.testing.assert_close(p[i], want)


def _l1_reference(v: np.ndarray, eps: float) -> np.ndarray:
    """Projection onto the L1 ball by bisection on the threshold θ (a different method)."""
    if np.abs(v).sum() <= eps:
        return v
    lo, hi = 0.0, np.abs(v).max()
    for _ in range(200):
        theta = (lo + hi) / 2
        if np.maximum(np.abs(v) - theta, 0).sum() > eps:
            lo = theta
        else:
            hi = theta
    return np.sign(v) * np.maximum(np.abs(v) - hi, 0)


@SETTINGS
@given(batches(), st.floats(0.0, 10.0))
def test_l1_is_exact(xd, eps):
    _, d = xd
    p = P.l1(d, eps)
    assert (_rows(p).abs().sum(1) <= eps + 1e-7).all()
    torch.testing.assert_close(P.l1(p, eps), p, atol=1e-9, rtol=1e-7)
    for i in range(len(d)):
        ref = _l1_reference(d[i].numpy().ravel(), eps)
        np.testing.assert_allclose(p[i].numpy().ravel(), ref, atol=1e-7)


@SETTINGS
@given(batches(), st.floats(0.0, 1.0))
def test_linf_and_box(xd, eps):
    x, d = xd
    p = P.box(P.linf(d, eps), x)
    assert (p.abs() <= eps + 1e-12).all()
    assert ((x + p) >= 0).all() and ((x + p) <= 1).all()
    torch.testing.assert_close(P.box(P.linf(p, eps), x), p)


@settings(max_examples=40, deadline=None)
@given(batches(max_side=2), st.integers(0, 4))
def test_l0_is_the_nearest_point_with_the_box(xd, k):
    x, d = xd
    p = P.l0(d, x, k)
    h, w = x.shape[2:]
    changed = (p != 0).any(dim=1).reshape(len(x), -1).sum(1)
    assert (changed <= k).all()
    assert ((x + p) >= -1e-12).all() and ((x + p) <= 1 + 1e-12).all()
    torch.testing.assert_close(P.l0(p, x, k), p)
    # brute force over every set of at most k pixels
    boxed = P.box(d, x)
    for i in range(len(x)):
        best = math.inf
        pixels = range(h * w)
        for m in range(min(k, h * w) + 1):
            for keep in itertools.combinations(pixels, m):
                mask = torch.zeros(h * w, dtype=torch.float64)
                mask[list(keep)] = 1
                cand = boxed[i] * mask.reshape(1, h, w)
                best = min(best, float((cand - d[i]).pow(2).sum()))
        assert float((p[i] - d[i]).pow(2).sum()) == pytest.approx(best, abs=1e-9)


@SETTINGS
@given(batches(), st.floats(0.01, 3.0))
def test_clipping_aware_rescale_reaches_the_norm_after_clipping(xd, eps):
    x, d = xd
    out = P.rescale_l2_clipped(d, x, eps)
    assert ((x + out) >= 0).all() and ((x + out) <= 1).all()
    reachable = _rows(P.box(d * 1e6, x)).norm(dim=1)
    got = _rows(out).norm(dim=1)
    for i in range(len(x)):
        assert float(got[i]) == pytest.approx(min(eps, float(reachable[i])), rel=1e-6, abs=1e-9)


def test_fgsm_budget_on_a_tile():
    # seed 000: δ rescaled to a total L2 of 25 on a 512x512x3 tile in [0, 1]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 512, 512, generator=g)
    d = torch.sign(torch.randn(1, 3, 512, 512, generator=g)) / 255
    out = P.rescale_l2_clipped(d, x, 25.0)
    assert P.norms(out)["l2_total"][0] == pytest.approx(25.0, rel=1e-4)


def test_budget_units_convert_and_bad_budgets_are_refused():
    shape = (3, 224, 224)
    assert P.Budget("l2", 0.01, "per_pixel").total(shape) == pytest.approx(
        0.01 * math.sqrt(3 * 224 * 224)
    )
    assert P.Budget("l1", 0.01, "per_pixel").total(shape) == pytest.approx(0.01 * 3 * 224 * 224)
    assert P.Budget("linf", 0.5, "per_pixel").total(shape) == pytest.approx(0.5 / 255)
    assert P.Budget("l0", 0.1, "per_pixel").total(shape) == math.floor(0.1 * 224 * 224)
    assert P.Budget("l2", 25.0).total(shape) == 25.0
    with pytest.raises(ValueError, match="wrong sign|>= 0"):
        P.Budget("l2", -1.0)
    with pytest.raises(ValueError, match="fraction"):
        P.Budget("l0", 3.0, "per_pixel")
    with pytest.raises(ValueError, match="unknown norm"):
        P.Budget("l3", 1.0)  # type: ignore[arg-type]


def test_norms_report_both_units():
    d = torch.zeros(1, 3, 2, 2)
    d[0, :, 0, 0] = torch.tensor([0.1, -0.2, 0.0])
    n = P.norms(d)
    assert n["l0_pixels"] == [1.0] and n["l0_fraction"] == [0.25]
    assert n["l1_total"][0] == pytest.approx(0.3) and n["l1_mad"][0] == pytest.approx(0.3 / 12)
    assert n["l2_total"][0] == pytest.approx(math.sqrt(0.05))
    assert n["linf_255"][0] == pytest.approx(0.2 * 255)


def test_projections_leave_their_input_alone():
    g = torch.Generator().manual_seed(1)
    x, d = torch.rand(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    before = d.clone()
    for budget in (
        P.Budget("l0", 3),
        P.Budget("l1", 1.0),
        P.Budget("l2", 0.5),
        P.Budget("linf", 0.1),
    ):
        P.project(d, x, budget)
    P.rescale_l2_clipped(d, x, 1.0)
    torch.testing.assert_close(d, before, rtol=0, atol=0)
