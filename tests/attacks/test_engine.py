"""The attack loop on small models: exact steps, untouched inputs, batches, budgets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_cpadv.attacks.engine import attack
from napari_cpadv.attacks.fgsm import fgsm
from napari_cpadv.attacks.objectives import CellObjective, ClassObjective
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.progress import drive


class Linear(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def ascend(logits):
    return logits, torch.zeros(len(logits), dtype=torch.bool)


def tiny_classifier(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 2)
    )


def test_one_linf_step_on_a_linear_model_is_eps_sign_w():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 3, 4, 4, generator=g)
    x = torch.full((2, 3, 4, 4), 0.5)
    eps = 0.03
    res = drive(attack(Linear(w), x, ascend, budget=Budget("linf", eps), steps=1, step_size=eps))
    torch.testing.assert_close(res.delta, (eps * w.sign()).expand_as(x))
    assert res.norms["linf"] == pytest.approx([eps, eps])


def test_the_input_is_untouched_and_the_mode_restored():
    model = tiny_classifier().train()
    x = torch.rand(3, 3, 8, 8)
    before = x.clone()
    obj = ClassObjective(torch.tensor([0, 1, 0]))
    drive(attack(model, x, obj, budget=Budget("l2", 0.5), steps=5, step_size=0.1, rule="l2"))
    assert torch.equal(x, before) and model.training


@pytest.mark.parametrize(
    "rule,norm,value",
    [("sign", "linf", 0.05), ("l2", "l2", 0.5), ("l1", "l1", 2.0), ("l0", "l0", 6)],
)
def test_a_batch_equals_its_items_one_by_one(rule, norm, value):
    model = tiny_classifier()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 1])
    kw = dict(
        budget=Budget(norm, value),
        steps=4,
        step_size=0.05 if rule == "sign" else 0.3,
        rule=rule,
        early_stop=False,
    )
    whole = drive(attack(model, x, ClassObjective(labels), **kw))
    for i in range(3):
        one = drive(attack(model, x[i : i + 1], ClassObjective(labels[i : i + 1]), **kw))
        torch.testing.assert_close(one.delta[0], whole.delta[i], atol=1e-6, rtol=1e-5)


def test_a_zero_budget_returns_the_input():
    model = tiny_classifier()
    x = torch.rand(2, 3, 8, 8)
    res = drive(
        attack(
            model,
            x,
            ClassObjective(torch.tensor([0, 1])),
            budget=Budget("linf", 0.0),
            steps=3,
            step_size=0.1,
        )
    )
    assert torch.count_nonzero(res.delta) == 0


def test_success_is_monotone_in_budget():
    model = tiny_classifier(3)
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        labels = model(x).argmax(1)
    rates = []
    for eps in (0.0, 0.01, 0.03, 0.1, 0.3):
        res = drive(
            attack(
                model,
                x,
                ClassObjective(labels),
                budget=Budget("linf", eps),
                steps=10,
                step_size=eps / 4,
            )
        )
        rates.append(res.success_rate)
    assert rates[0] == 0 and rates == sorted(rates) and rates[-1] > rates[0]


class _Recording:
    """An objective that records what each restart's final δ scored (the graph-free call)."""

    def __init__(self, inner):
        self.inner, self.finals = inner, []

    def __call__(self, logits):
        loss, success = self.inner(logits)
        if not torch.is_grad_enabled():
            self.finals.append((loss.detach().clone(), success.clone()))
        return loss, success


def test_restarts_keep_the_worst_case():
    """Per example, the kept δ is the restart that succeeded, else the one of highest loss;
    and with random starts some example is kept from a restart other than the first."""
    model = tiny_classifier(4)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        labels = model(x).argmax(1)
    kw = dict(
        budget=Budget("linf", 0.05), steps=2, step_size=0.005, random_start=True, early_stop=False
    )
    rec = _Recording(ClassObjective(labels))
    three = drive(attack(model, x, rec, restarts=3, **kw))
    assert len(rec.finals) == 3
    losses = torch.stack([loss for loss, _ in rec.finals])  # (restarts, N)
    wins = torch.stack([ok for _, ok in rec.finals])
    key = wins.float() * 1e6 + losses  # success first, then loss
    chosen = key.argmax(0)
    torch.testing.assert_close(three.loss, losses[chosen, torch.arange(8)])
    assert (three.success == wins.any(0)).all()
    assert (chosen > 0).any()  # the restarts mattered: not the first restart's result
    one = drive(attack(model, x, ClassObjective(labels), restarts=1, **kw))
    torch.testing.assert_close(one.loss, losses[0])


def test_fgsm_reaches_exactly_the_total_l2_budget_and_hurts_the_dae():
    """Seed 000's FGSM on the shipped (trained) DAE, on a 128-pixel tile of the sample slide:
    exactly L2 = 25, and the cells the DAE called clean are called otherwise after."""
    from napari_cpadv.models.weights import resolve
    from napari_cpadv.slide import open_slide

    from ..conftest import SAMPLE

    det = resolve("dae", None)
    slide = open_slide(SAMPLE)
    tile = slide.read_region(2, 256, 256, 128, 128)
    x = torch.from_numpy(tile).permute(2, 0, 1)[None].float().div(255)
    with torch.no_grad():
        reference = (det.eval()(x) > 0).float()
    obj = CellObjective(reference)
    res = drive(fgsm(det, x, obj, steps=10))
    assert res.norms["l2_total"][0] == pytest.approx(25.0, rel=1e-4)
    assert ((x + res.delta) >= 0).all() and ((x + res.delta) <= 1).all()
    # it hurts: the loss it ascends rose, and many cells no longer agree with the clean call
    with torch.no_grad():
        before, _ = obj(det(x))
        after = (det(x + res.delta) > 0).float()
    assert res.loss[0] > 2 * before[0]
    assert (after != reference).float().mean() > 0.1
    with pytest.raises(ValueError, match="L2 budget"):
        drive(fgsm(det, x, obj, budget=Budget("linf", 0.1)))
