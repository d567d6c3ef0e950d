"""Seed 001's PGD under every norm, and the equal-norm noise control."""

from __future__ import annotations

import pytest
import torch

from napari_cpadv.attacks.noise import noise_control, noise_like
from napari_cpadv.attacks.objectives import ClassObjective
from napari_cpadv.attacks.pgd import pgd
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.progress import drive

from .test_engine import tiny_classifier


@pytest.fixture(scope="module")
def case():
    model = tiny_classifier(5)
    x = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        labels = model(x).argmax(1)
    return model, x, labels


@pytest.mark.parametrize(
    "budget,key,limit",
    [
        (Budget("linf", 8.0, "per_pixel"), "linf_255", 8.0),
        (Budget("l2", 0.05, "per_pixel"), "l2_rms", 0.05),
        (Budget("l1", 0.02, "per_pixel"), "l1_mad", 0.02),
        (Budget("l0", 0.1, "per_pixel"), "l0_fraction", 0.1),
    ],
)
def test_pgd_stays_within_each_budget_in_both_units(case, budget, key, limit):
    model, x, labels = case
    res = drive(pgd(model, x, ClassObjective(labels), budget=budget, steps=20))
    assert max(res.norms[key]) <= limit * (1 + 1e-5) + 1e-9
    assert ((x + res.delta) >= 0).all() and ((x + res.delta) <= 1).all()
    assert res.success_rate > 0


def test_unconstrained_pgd_flips_every_label(case):
    model, x, labels = case
    res = drive(
        pgd(model, x, ClassObjective(labels, confidence=1.0), budget=Budget("none", 0), steps=200)
    )
    assert res.success.all()


def test_pgd_stops_each_example_once_it_flips(case):
    model, x, labels = case
    kw = dict(budget=Budget("linf", 0.3), step_size=0.01)
    small = drive(pgd(model, x, ClassObjective(labels), steps=50, **kw))
    long = drive(pgd(model, x, ClassObjective(labels), steps=200, **kw))
    assert small.success.any()
    torch.testing.assert_close(small.delta[small.success], long.delta[small.success])


def test_frozen_l0_support_never_grows(case):
    model, x, labels = case
    k = 6
    res = drive(
        pgd(model, x, ClassObjective(labels), budget=Budget("l0", k), steps=15, l0_support="frozen")
    )
    assert max(res.norms["l0_pixels"]) <= k


def test_noise_of_equal_norm_does_less_damage(case):
    model, x, labels = case
    obj = ClassObjective(labels)
    res = drive(pgd(model, x, obj, budget=Budget("l2", 0.5), steps=30))
    n = noise_like(res.delta, x, seed=1)
    got = torch.tensor([sum(v**2 for v in row) ** 0.5 for row in n.reshape(len(n), -1).tolist()])
    torch.testing.assert_close(
        got, torch.tensor(res.norms["l2_total"]).float(), rtol=1e-3, atol=1e-6
    )
    control = drive(noise_control(model, x, obj, res.delta, draws=8))
    assert control.success.shape == (8, len(x))
    assert control.success_rate < res.success_rate
    assert control.loss.mean() < res.loss.mean()


def test_seed_001s_own_constraints_reach_the_budget_exactly(case):
    """Seed 001 rescales δ to its L1 (MAD) or L2 (RMS) budget, and moves only the top
    pixels by gradient for L0: named variants beside the exact projections."""
    model, x, labels = case
    l2 = Budget("l2", 0.05, "per_pixel")
    kw = dict(steps=5, step_size=0.01)
    exact = drive(pgd(model, x, ClassObjective(labels), budget=l2, **kw))
    paper = drive(pgd(model, x, ClassObjective(labels), budget=l2, constraint="seed001", **kw))
    assert min(exact.norms["l2_rms"]) < 0.049  # a projection keeps short steps short
    assert paper.norms["l2_rms"] == pytest.approx([0.05] * len(x), rel=1e-3)  # rescaled
    l1 = Budget("l1", 0.02, "per_pixel")
    paper = drive(pgd(model, x, ClassObjective(labels), budget=l1, constraint="seed001", **kw))
    assert max(paper.norms["l1_mad"]) <= 0.02 * (1 + 1e-5)
    assert paper.norms["l1_mad"] == pytest.approx([0.02] * len(x), rel=1e-3)  # rescaled
    k = 6
    l0 = Budget("l0", k)
    paper = drive(pgd(model, x, ClassObjective(labels), budget=l0, constraint="seed001", **kw))
    assert max(paper.norms["l0_pixels"]) <= k and paper.success_rate > 0
    with pytest.raises(ValueError, match="unknown constraint"):
        drive(pgd(model, x, ClassObjective(labels), budget=l0, constraint="paper"))
