"""Seed 001 §2.2: single-instance PGD under L0, L1, L2, L∞ or no norm at all.

Each example runs until its label flips with the requested confidence (``ClassObjective``)
or the steps run out. Budgets are ``projections.Budget`` (seed 001 states them per pixel:
L1 as the mean absolute difference, L2 as the root-mean-square difference, L∞ in 1/255,
L0 as a fraction of the pixels).

L0 support: ``"reproject"`` (default) re-selects the best ``k`` pixels after every step
(the exact L0 projection with the box); ``"frozen"`` picks them after the first step and
then only moves those pixels, a cheaper and more conservative variant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from napari_cpadv.attacks.engine import AttackResult, StepRule, attack
from napari_cpadv.attacks.objectives import Objective
from napari_cpadv.attacks.projections import Budget, box, l0
from napari_cpadv.progress import Work

RULES: dict[str, StepRule] = {"linf": "sign", "l2": "l2", "l1": "l1", "l0": "l0", "none": "sign"}


def default_step(budget: Budget, shape: tuple[int, ...], steps: int) -> float:
    """2.5 x budget / steps (Madry et al.), 1/255 without a norm, 1.0 (an L2 step) for L0."""
    if budget.norm == "none":
        return 1 / 255
    if budget.norm == "l0":
        return 1.0
    return 2.5 * budget.total(shape) / max(steps, 1)


def frozen_l0(k: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A projector that chooses ``k`` pixels on its first call and keeps them."""
    support: dict[str, torch.Tensor] = {}

    def project(delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if "mask" not in support:
            first = l0(delta, x, k)
            support["mask"] = (first != 0).any(dim=1, keepdim=True)
            return first
        return box(delta * support["mask"], x)

    return project


def pgd(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    objective: Objective,
    *,
    budget: Budget,
    steps: int = 100,
    step_size: float | None = None,
    l0_support: Literal["reproject", "frozen"] = "reproject",
    sparsity: float = 0.01,
    random_start: bool = False,
    restarts: int = 1,
    seed: int = 0,
) -> Work[AttackResult]:
    """PGD within ``budget``; returns the per-example δ, success and achieved norms."""
    shape = tuple(x.shape[1:])
    projector = None
    if budget.norm == "l0" and l0_support == "frozen":
        projector = frozen_l0(int(budget.total(shape)))
    return (
        yield from attack(
            model,
            x,
            objective,
            budget=budget,
            steps=steps,
            step_size=default_step(budget, shape, steps) if step_size is None else step_size,
            rule=RULES[budget.norm],
            sparsity=sparsity,
            random_start=random_start,
            restarts=restarts,
            early_stop=True,
            projector=projector,
            seed=seed,
        )
    )
