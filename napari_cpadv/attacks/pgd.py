"""Seed 001 §2.2: single-instance PGD under L0, L1, L2, L∞ or no norm at all.

Each example runs until its label flips with the requested confidence (``ClassObjective``)
or the steps run out. Budgets are ``projections.Budget`` (seed 001 states them per pixel:
L1 as the mean absolute difference, L2 as the root-mean-square difference, L∞ in 1/255,
L0 as a fraction of the pixels).

L0 support: ``"reproject"`` (default) re-selects the best ``k`` pixels after every step
(the exact L0 projection with the box); ``"frozen"`` picks them after the first step and
then only moves those pixels, a cheaper and more conservative variant.

Constraints: ``"exact"`` (default) projects onto the norm ball (Duchi's L1 projection, the
L2 ball, the L0 projection); ``"seed001"`` applies seed 001's own rules: L1 and L2 by
rescaling δ to the budget's mean absolute or root-mean-square difference after every
step (so the achieved norm is the budget, not at most the budget), and L0 by moving only
the top fraction of pixels by the step's gradient, the rest of the image unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import torch

from napari_cpadv.attacks.base import Batch, TileAttack
from napari_cpadv.attacks.engine import AttackResult, StepRule, attack
from napari_cpadv.attacks.objectives import Objective
from napari_cpadv.attacks.projections import Budget, box, l0
from napari_cpadv.progress import Work

if TYPE_CHECKING:
    pass

Constraint = Literal["exact", "seed001"]
Projector = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

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


def rescaled(budget: Budget, shape: tuple[int, ...]) -> Projector:
    """Seed 001's L1/L2 rule: δ scaled to exactly the budget's norm, then boxed."""
    from napari_cpadv.attacks.projections import rescale_l2_clipped

    eps = budget.total(shape)

    def project(delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return rescale_l2_clipped(delta, x, eps, p=1 if budget.norm == "l1" else 2)

    return project


def top_gradient_pixels(k: int) -> Projector:
    """Seed 001's L0 rule: after each step only the ``k`` pixels the step (the gradient)
    moved most keep their perturbation; the rest of the image is left unchanged."""
    state: dict[str, torch.Tensor] = {}

    def project(moved: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = moved.shape
        prev = state.get("delta")
        if prev is None or prev.shape != moved.shape:
            prev = torch.zeros_like(moved)
        step = (moved - prev).pow(2).sum(1).reshape(n, h * w)
        keep = torch.zeros_like(step, dtype=torch.bool)
        if k:
            keep.scatter_(1, step.topk(min(k, h * w), dim=1).indices, True)
        out = box(moved * keep.reshape(n, 1, h, w).to(moved.dtype), x)
        state["delta"] = out
        return out

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
    constraint: Constraint = "exact",
    sparsity: float = 0.01,
    random_start: bool = False,
    restarts: int = 1,
    seed: int = 0,
) -> Work[AttackResult]:
    """PGD within ``budget``; returns the per-example δ, success and achieved norms."""
    shape = tuple(x.shape[1:])
    projector = None
    if constraint not in ("exact", "seed001"):
        raise ValueError(f"unknown constraint {constraint!r}: 'exact' or 'seed001'")
    if constraint == "seed001" and budget.norm in ("l1", "l2"):
        projector = rescaled(budget, shape)
    elif constraint == "seed001" and budget.norm == "l0":
        projector = top_gradient_pixels(int(budget.total(shape)))
    elif budget.norm == "l0" and l0_support == "frozen":
        projector = frozen_l0(int(budget.total(shape)))
    return (
        yield from attack(
            model,
            x,
            objective,
            budget=budget,
            steps=steps,
            step_size=default_step(budget, shape, steps) if step_size is None else step_size,
            # seed 001 rescales dense steps: its L1 moves every pixel, not the top 1 %
            rule="l2" if constraint == "seed001" and budget.norm == "l1" else RULES[budget.norm],
            sparsity=sparsity,
            random_start=random_start,
            restarts=restarts,
            early_stop=True,
            projector=projector,
            seed=seed,
        )
    )


class PGD(TileAttack):
    """Seed 001's attack: ``pgd`` under ``spec``'s budget, steps, restarts and constraint."""

    name = "pgd"
    summary = "seed 001's projected gradient descent under any norm"
    single_step_check = True

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        res = yield from pgd(
            job.detector,
            job.x,
            job.objective,
            budget=job.spec.budget,
            steps=job.spec.steps,
            step_size=job.spec.step_size,
            seed=job.spec.seed,
            restarts=job.spec.restarts,
            random_start=job.spec.restarts > 1,
            constraint=job.spec.constraint,  # type: ignore[arg-type]
        )
        return res.delta


ATTACK = PGD()
