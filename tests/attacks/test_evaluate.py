"""Success against budget, the AUC-PR table of a transfer run, and the sanity warnings."""

from __future__ import annotations

import numpy as np
import torch

from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.attacks.evaluate import sanity, success_vs_budget
from napari_cpadv.attacks.objectives import ClassObjective
from napari_cpadv.attacks.pgd import pgd
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.experiments.scoring import cell_aucpr
from napari_cpadv.experiments.tiles import Tiles
from napari_cpadv.experiments.transfer import transfer
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive

from .test_engine import tiny_classifier


def test_success_matrix_over_budgets_is_monotone_without_warnings():
    model = tiny_classifier(5)
    x = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        labels = model(x).argmax(1)
    budgets = [Budget("linf", v, "per_pixel") for v in (0.0, 2.0, 8.0, 32.0)]
    sweep = drive(
        success_vs_budget(
            lambda b: pgd(model, x, ClassObjective(labels), budget=b, steps=20), budgets
        )
    )
    assert sweep.success.shape == (4, 10)
    assert sweep.rates() == sorted(sweep.rates()) and not sweep.warnings


def test_a_non_monotone_sweep_is_flagged():
    model = tiny_classifier(5)
    x = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        labels = model(x).argmax(1)
    budgets = [Budget("linf", 32.0, "per_pixel"), Budget("linf", 0.0)]
    sweep = drive(
        success_vs_budget(
            lambda b: pgd(model, x, ClassObjective(labels), budget=b, steps=20), budgets
        )
    )
    assert sweep.warnings and "not monotone" in sweep.warnings[0]


def test_transfer_table_rows_with_a_zero_budget_equal_the_clean_row():
    torch.manual_seed(0)
    dets = {"dae": make("dae").eval(), "dae2": make("dae").eval()}
    # 8-bit tiles, as read from a slide: a zero δ survives the rounding of x + δ
    x = torch.randint(0, 256, (2, 3, 32, 32), generator=torch.Generator().manual_seed(0)) / 255
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, 2:6, 2:6] = 1
    tiles = Tiles(x, [(0, 0), (0, 32)], masks, 0, 4)
    specs = {n: AttackSpec("fgsm", Budget("l2", 0.0), 0, steps=2) for n in dets}
    rep = drive(transfer(dets, tiles, specs))
    assert set(rep["aucpr"]) == {"clean", "noise (dae)", "noise (dae2)", "dae", "dae2"}
    assert rep["aucpr"]["clean"] == {n: cell_aucpr(d, x, masks) for n, d in dets.items()}
    assert rep["aucpr"]["dae"] == rep["aucpr"]["clean"] == rep["aucpr"]["noise (dae2)"]
    assert all(0 <= v <= 1 for row in rep["aucpr"].values() for v in row.values())


def test_sanity_warnings():
    assert (
        sanity(attack_damage=0.3, noise_damage=0.01, one_step_damage=0.1, doubled_damage=0.3) == []
    )
    warns = sanity(
        attack_damage=0.1,
        noise_damage=0.2,
        one_step_damage=0.3,
        gradient_norm=0.0,
        doubled_damage=0.25,
    )
    assert len(warns) == 4
