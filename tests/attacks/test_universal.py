"""A universal δ learnt on training images transfers to held-out ones better than noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_cpadv.attacks.noise import noise_like
from napari_cpadv.attacks.objectives import ClassObjective
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.attacks.universal import success_with, universal
from napari_cpadv.progress import drive


def test_universal_delta_beats_noise_on_held_out_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(200, 3, 8, 8, generator=g)
    with torch.no_grad():
        labels = model(x).argmax(1)
    train, held = torch.arange(0, 150), torch.arange(150, 200)

    def objective_for(subset):
        return lambda idx: ClassObjective(labels[subset][idx])

    budget = Budget("linf", 12.0, "per_pixel")
    res = drive(universal(model, x[train], objective_for(train), budget=budget, epochs=5, batch=25))
    assert res.delta.shape == (1, 3, 8, 8) and max(res.norms["linf_255"]) <= 12.0 + 1e-4
    assert res.losses[-1] > res.losses[0]
    held_rate = float(success_with(model, x[held], res.delta, objective_for(held)).float().mean())
    noise = noise_like(res.delta, torch.full((1, 3, 8, 8), 0.5), kind="sign", seed=3)
    noise_rate = float(success_with(model, x[held], noise, objective_for(held)).float().mean())
    assert res.train_success > 0.3 and held_rate > noise_rate


def test_universal_refuses_an_l0_budget():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(ValueError, match="not L0"):
        drive(
            universal(
                model,
                torch.rand(4, 3, 2, 2),
                lambda idx: ClassObjective(torch.zeros(len(idx))),
                budget=Budget("l0", 1),
            )
        )
