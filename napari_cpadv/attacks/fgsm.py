"""Seed 000 §2.8.2: iterative FGSM on the image, then δ rescaled to a total L2 budget.

100 steps of 1/255 along the sign of the gradient (clipped to the [0, 1] box only), then
δ is scaled, clipping-aware, to exactly L2 = 25 (total, [0, 1] scale) on a 512x512x3 tile
("images have L2 ≈ 500").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from napari_cpadv.attacks.base import Batch, TileAttack
from napari_cpadv.attacks.engine import AttackResult, attack
from napari_cpadv.attacks.objectives import Objective
from napari_cpadv.attacks.projections import Budget, norms, rescale_l2_clipped
from napari_cpadv.progress import Work

if TYPE_CHECKING:
    pass

STEP = 1 / 255
STEPS = 100
L2_BUDGET = 25.0
DEFAULT_BUDGET = Budget("l2", L2_BUDGET)  # total L2, [0, 1] scale


def fgsm(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    objective: Objective,
    *,
    steps: int = STEPS,
    step_size: float = STEP,
    budget: Budget = DEFAULT_BUDGET,
    seed: int = 0,
) -> Work[AttackResult]:
    """Iterative FGSM, then the clipping-aware rescale to ``budget`` (an L2 budget)."""
    if budget.norm != "l2":
        raise ValueError(f"seed 000's FGSM rescales to an L2 budget, not {budget.norm}")
    raw = yield from attack(
        model,
        x,
        objective,
        budget=Budget("none", 0.0),
        steps=steps,
        step_size=step_size,
        rule="sign",
        early_stop=False,
        seed=seed,
    )
    delta = rescale_l2_clipped(raw.delta, x, budget.total(tuple(x.shape[1:])))
    with torch.no_grad():
        loss, success = objective(model(x + delta))
    return AttackResult(delta, success, loss, norms(delta), raw.steps, seed)


class FGSM(TileAttack):
    """Seed 000's attack on the DAE: ``fgsm`` with ``spec``'s steps, step size and L2 budget."""

    name = "fgsm"
    summary = "seed 000's iterative FGSM, rescaled to the budget"
    norms = ("l2",)
    single_step_check = True

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        return (yield from fgsm(job.detector, job.x, job.objective, **job.spec.loop(STEP))).delta


ATTACK = FGSM()
