"""A budget in words: its unit, the other unit, the PSNR it allows, unreachable and visible."""

from __future__ import annotations

import math

import pytest

from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.attacks.budgets import VISIBLE_PSNR_DB, meaning
from napari_cpadv.attacks.projections import Budget


def test_seed_000s_budget_is_31_db_on_its_tile_and_19_on_a_quarter_of_it():
    m = meaning(Budget("l2", 25.0), 512)
    assert m.psnr_db == pytest.approx(31.0, abs=0.05) and m.warning is None
    assert "RMS 0.0282" in m.other and m.label == "total L2 over a 512 x 512 x 3 tile"
    small = meaning(Budget("l2", 25.0), 128)
    assert small.psnr_db == pytest.approx(19.0, abs=0.05)
    assert small.psnr_db < VISIBLE_PSNR_DB and "likely visible" in small.warning


@pytest.mark.parametrize(
    ("budget", "label"),
    [
        (Budget("l2", 0.03, "per_pixel"), "RMS change, in [0, 1]"),
        (Budget("linf", 8, "per_pixel"), "grey levels of 255"),
        (Budget("linf", 8 / 255), "largest change, in [0, 1]"),
        (Budget("l1", 0.01, "per_pixel"), "mean absolute change, in [0, 1]"),
        (Budget("l0", 0.2, "per_pixel"), "fraction of pixels"),
        (Budget("l0", 500), "pixels changed in a 224 x 224 x 3 tile"),
    ],
)
def test_the_label_follows_norm_and_unit(budget, label):
    assert meaning(budget, 224).label == label


def test_the_other_unit_is_the_same_perturbation():
    per = meaning(Budget("l2", 0.02, "per_pixel"), 100)
    assert per.other == f"total L2 {0.02 * math.sqrt(30000):.4g} over a 100 x 100 x 3 tile"
    linf = meaning(Budget("linf", 8, "per_pixel"), 100)
    assert linf.psnr_db == pytest.approx(-20 * math.log10(8 / 255))
    l1 = meaning(Budget("l1", 0.1, "per_pixel"), 100)
    assert l1.psnr_kind == "at most" and "plainly visible" in l1.warning


@pytest.mark.parametrize(
    "budget",
    [
        Budget("l2", 25.0, "per_pixel"),  # RMS 25 in [0, 1]: accepted before, L∞ 254/255
        Budget("l2", 1000.0),  # more than a 128-pixel tile's sqrt(49152) = 222
        Budget("linf", 300, "per_pixel"),
        Budget("linf", 8),  # 8 in [0, 1] units: the grey levels were meant
        Budget("l1", 2, "per_pixel"),
        Budget("l0", 20_000),
    ],
)
def test_unreachable_budgets_are_refused_before_running(budget):
    assert meaning(budget, 128).unreachable
    with pytest.raises(ValueError, match="cannot be reached|has only"):
        AttackSpec("pgd", budget, level=0, tile=128)


def test_the_papers_budgets_are_accepted():
    for budget, tile in ((Budget("l2", 25.0), 512), (Budget("linf", 8, "per_pixel"), 224)):
        AttackSpec("pgd", budget, level=0, tile=tile)
        assert meaning(budget, tile).warning is None
