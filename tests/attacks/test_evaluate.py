"""Success against budget, AUC-PR tables and the sanity warnings."""

from __future__ import annotations

import numpy as np
import torch

from napari_cpadv.attacks.evaluate import aucpr_table, sanity, success_vs_budget, transfer_matrix
from napari_cpadv.attacks.objectives import CellObjective, ClassObjective
from napari_cpadv.attacks.pgd import pgd
from napari_cpadv.attacks.projections import Budget
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


def test_aucpr_and_transfer_tables():
    torch.manual_seed(0)
    dets = {"dae": make("dae").eval(), "dae2": make("dae").eval()}
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, 2:6, 2:6] = 1
    zero = torch.zeros_like(x)
    table = aucpr_table(dets, x, masks, {"clean": zero, "noise": 0.01 * torch.randn_like(x)})
    assert set(table) == {"clean", "noise"} and set(table["clean"]) == {"dae", "dae2"}
    assert all(0 <= v <= 1 for row in table.values() for v in row.values())
    matrix = transfer_matrix(dets, x, masks, {"dae": zero, "dae2": zero})
    assert matrix["dae"] == table["clean"]
    _ = CellObjective  # the cell objective is what the detectors are attacked with


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
