"""APGD (issue 29, item 1): the same success as the reference implementation (AutoAttack's
APGD as torchattacks ships it) on a small classifier, at least as strong as the project's
PGD on the shipped DAE at equal budget and iterations, and its step size its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cpadv.annotations import read_annotations
from napari_cpadv.attacks.apgd import apgd
from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.attacks.objectives import CellObjective, ClassObjective, objective_for
from napari_cpadv.attacks.pgd import pgd
from napari_cpadv.attacks.projections import Budget, norms
from napari_cpadv.experiments.tiles import region_tiles
from napari_cpadv.models import weights
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

from ..conftest import SAMPLE


def _two_class_data(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """16 x 16 RGB images: a brighter or a darker square on noise, by class."""
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 3, 16, 16, generator=g) * 0.5 + 0.25
    x[:, :, 4:12, 4:12] += (y.float() * 0.3 - 0.15).view(-1, 1, 1, 1)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def classifier():
    """A small CNN trained for a few seconds on the two classes: correct on most."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 2),
    )
    x, y = _two_class_data(512, g)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    xt, yt = _two_class_data(256, g)
    with torch.no_grad():
        right = net(xt).argmax(1) == yt
    assert right.float().mean() > 0.9
    return net, xt[right][:96], yt[right][:96]


@pytest.mark.parametrize(("norm", "eps"), [("linf", 12 / 255), ("l2", 0.8)])
def test_apgd_succeeds_where_the_reference_implementation_does(classifier, norm, eps):
    """On the same correctly classified examples, the same budget, 20 iterations and one
    run from a random start each, the share fooled matches torchattacks' APGD (AutoAttack's
    code) within 0.05, and the two agree on at least 90 % of the examples (measured: the
    same share to the last example at seeds 0-2, 0.27 and 0.65 under L∞ 10/255 and 12/255,
    0.26-0.27 under L2 0.8). Random starts differ, so the two need not agree exactly."""
    torchattacks = pytest.importorskip("torchattacks")  # installed by `make setup`
    net, x, y = classifier
    ours = drive(apgd(net, x, ClassObjective(y), budget=Budget(norm, eps), steps=20, seed=0))
    reference = torchattacks.APGD(
        net, norm="Linf" if norm == "linf" else "L2", eps=eps, steps=20, n_restarts=1, seed=0
    )
    with torch.no_grad():
        theirs = net(reference(x, y)).argmax(1) != y
    rates = float(ours.success.float().mean()), float(theirs.float().mean())
    assert 0.15 < rates[1] < 0.85, rates  # a budget that fools some, not all
    assert abs(rates[0] - rates[1]) <= 0.05, rates
    assert (ours.success == theirs).float().mean() >= 0.9
    key = "linf_255" if norm == "linf" else "l2_total"
    bound = eps * 255 if norm == "linf" else eps
    assert max(norms(ours.delta)[key]) <= bound * (1 + 1e-4)
    assert ((x + ours.delta) >= 0).all() and ((x + ours.delta) <= 1).all()


def test_apgd_halves_its_step_where_plain_pgd_at_that_step_oscillates(classifier):
    """Its own step size: started at twice the budget, a fixed step that large oscillates;
    APGD's checkpoints bring the loss above what PGD at that fixed step ends with."""
    net, x, y = classifier
    budget, objective = Budget("linf", 2 / 255), ClassObjective(y, loss="margin")
    ours = drive(apgd(net, x, objective, budget=budget, steps=30, seed=0))
    fixed = drive(pgd(net, x, objective, budget=budget, steps=30, step_size=4 / 255,
                      random_start=False))  # fmt: skip
    assert ours.success.float().mean() >= fixed.success.float().mean()
    assert ours.loss[~ours.success].mean() >= fixed.loss[~fixed.success].mean()


@pytest.mark.slow
@pytest.mark.parametrize(("norm", "value"), [("l2", 0.0282), ("linf", 2.0)])
def test_apgd_is_at_least_as_strong_as_pgd_on_the_shipped_dae(norm, value):
    """The shipped DAE on four 64-pixel tumour tiles of the sample slide, against their
    truth, at the same per-pixel budget and 10 iterations: APGD's loss and its damage to
    the tumour cells are at least PGD's (with PGD's default step, 2.5 budget / steps)."""
    slide = open_slide(SAMPLE)
    truth = read_annotations(SAMPLE.with_suffix(".xml"))
    tiles = region_tiles(slide, 2, (1536, 1024, 512, 512), 64, annotations=truth)
    dae = weights.resolve("dae", None)
    objective = objective_for(dae, tiles.x, tiles.labels)
    assert isinstance(objective, CellObjective)
    budget = Budget(norm, value, "per_pixel")  # type: ignore[arg-type]
    strong = drive(apgd(dae, tiles.x, objective, budget=budget, steps=10, seed=0))
    plain = drive(pgd(dae, tiles.x, objective, budget=budget, steps=10))
    assert float(strong.loss.mean()) >= float(plain.loss.mean()) * 0.999
    with torch.no_grad():
        found = [(dae(tiles.x + r.delta) > 0).float() for r in (strong, plain)]
    tumour = torch.from_numpy(np.asarray(tiles.labels)).bool()
    still = [float(f[tumour].mean()) for f in found]
    assert still[0] <= still[1] + 0.02, still  # tumour cells still found: APGD <= PGD


def test_apgd_refuses_a_step_size_and_other_norms():
    from napari_cpadv.models.detector import make

    dae = make("dae").eval()
    attack = AttackSpec("apgd", Budget("l2", 1.0), 0, tile=64).runner
    with pytest.raises(ValueError, match="sets its own step size"):
        attack.check(dae, AttackSpec("apgd", Budget("l2", 1.0), 0, tile=64, step_size=0.1))
    with pytest.raises(ValueError, match="not l1"):
        attack.check(dae, AttackSpec("apgd", Budget("l1", 1.0), 0, tile=64))
    with pytest.raises(ValueError, match="L∞ or L2"):
        drive(apgd(dae, torch.rand(1, 3, 8, 8), lambda z: (z.sum(), z.sum() > 0),
                   budget=Budget("l1", 1.0)))  # fmt: skip
