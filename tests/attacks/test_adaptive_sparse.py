"""Issue 29, item 4: the sparse coder attacked in image space. The unrolled LCA is the
encoder's own dynamics and its gradient is the true one (finite differences); BPDA scores
what the encoder computes; both attacks move the real sparse detector's output where noise
of the same norm does not, and refuse a detector with no LCA."""

from __future__ import annotations

import pytest
import torch

from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.attacks.objectives import objective_for
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.attacks.registry import registry
from napari_cpadv.models.detector import make
from napari_cpadv.models.lca import LCA
from napari_cpadv.models.lca_grad import bpda_codes, unrolled_codes
from napari_cpadv.progress import drive


def _lca(**kw) -> LCA:
    torch.manual_seed(0)
    return LCA(**{"atoms": 8, "size": 6, "stride": 2, "lam": 0.3, "iterations": 40, **kw})


def _image(side: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(seed))


def test_the_unrolled_codes_are_the_encoders_own_for_as_many_iterations():
    lca, x = _lca(tol=0.0), _image()
    for k in (1, 7, 40):  # 7: a chunk and a part of one
        want = lca.encode(x, iterations=k, tol=0).codes
        got = unrolled_codes(lca, x, k, chunk=5)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), k
    with pytest.raises(ValueError, match="must be >= 1"):
        unrolled_codes(lca, x, 0)


def test_the_unrolled_gradient_is_the_true_one_by_finite_differences():
    """A directional derivative of a fixed weighting of the codes, by autograd through the
    checkpointed unroll and by central differences, in float64."""
    lca = _lca().double()
    x = _image(seed=2).double().requires_grad_(True)
    w = torch.randn(unrolled_codes(lca, x, 25).shape, generator=torch.Generator().manual_seed(3))
    w = w.double()

    def f(z: torch.Tensor) -> torch.Tensor:
        return (unrolled_codes(lca, z, 25, chunk=4) * w).sum()

    (grad,) = torch.autograd.grad(f(x), x)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        numeric = (f(x + h * v) - f(x - h * v)) / (2 * h)
    assert float((grad * v).sum()) == pytest.approx(float(numeric), rel=1e-4, abs=1e-8)
    assert float(grad.abs().sum()) > 0


def test_bpda_scores_the_encoders_codes_with_a_short_unrolls_gradient():
    lca, x = _lca(tol=1e-3, iterations=200), _image(seed=5)
    xg = x.clone().requires_grad_(True)
    codes = bpda_codes(lca, xg, 6)
    assert torch.equal(codes.detach(), lca.encode(x).codes)  # forward: the encoder's own
    (g_bpda,) = torch.autograd.grad(codes.sum(), xg)
    xu = x.clone().requires_grad_(True)
    (g_short,) = torch.autograd.grad(unrolled_codes(lca, xu, 6).sum(), xu)
    assert torch.allclose(g_bpda, g_short)  # backward: the unroll's


@pytest.fixture(scope="module")
def sparse_and_tile():
    """A small sparse detector whose head calls part of a tile tumour."""
    torch.manual_seed(0)
    det = make("sparse", atoms=16, size=8, stride=2, iterations=60, tol=1e-3).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():  # a head that calls the tile's brighter cells tumour
        logits = det(x)
        last = [m for m in det.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.bias -= float(logits.median())
    return det, x


@pytest.mark.parametrize("name", ["unrolled", "bpda"])
def test_each_adaptive_attack_moves_the_sparse_detector_where_noise_does_not(sparse_and_tile, name):
    """At an RMS of 0.03 a pixel, scored by the real detector (the encoder run to its
    tolerance) after 8-bit rounding: the attack loses a quarter or more of the cells the
    clean tile calls tumour (measured: 0.6 kept), noise of the same norm none."""
    det, x = sparse_and_tile
    objective = objective_for(det, x)
    with torch.no_grad():
        called = det(x) > 0
        clean = float(objective(det(x))[0].mean())

    def run(attack: str) -> tuple[float, float]:
        spec = AttackSpec(attack, Budget("l2", 0.03, "per_pixel"), level=0, steps=8, tile=32)
        scored = drive(registry()[attack].craft(det, x, objective, spec, batch=1))
        kept = float(((scored.logits > 0) & called).sum() / called.sum())
        return float(scored.loss.mean()) - clean, kept

    (gain, kept), (noise_gain, noise_kept) = run(name), run("noise")
    assert called.float().mean() > 0.2
    assert kept < 0.75 and noise_kept > 0.95
    assert gain > 0.02 and gain > 10 * max(noise_gain, 0.0)


def test_the_adaptive_attacks_need_an_lca():
    dae = make("dae").eval()
    for name in ("unrolled", "bpda"):
        spec = AttackSpec(name, Budget("l2", 0.03, "per_pixel"), level=0, steps=1, tile=32)
        with pytest.raises(ValueError, match="sparse code"):
            registry()[name].check(dae, spec)
