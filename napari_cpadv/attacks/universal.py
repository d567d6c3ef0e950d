"""Seed 001: a universal perturbation, one δ for every image, learnt by SGD.

δ ascends the mean loss over mini-batches of training images (sign steps for an L∞
budget, normalised-gradient steps otherwise) and is projected onto the budget's ball
after every step; each image then sees ``clip(x + δ, 0, 1)``. Success is reported
separately on the training images and on held-out images it never saw.

Objectives depend on each image's label, so they are given as ``objective_for(indices)``:
the objective of those images of the set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from napari_cpadv.attacks import projections as P
from napari_cpadv.attacks.base import AttackSpec, Scored, TileAttack, quantise, score
from napari_cpadv.attacks.engine import eval_mode
from napari_cpadv.attacks.objectives import Objective, subset
from napari_cpadv.progress import Progress, Work

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector

ObjectiveFor = Callable[[torch.Tensor], Objective]


@dataclass(frozen=True)
class UniversalResult:
    """δ ``(1, C, H, W)``, its norms, per-epoch mean loss, and the training success rate."""

    delta: torch.Tensor
    norms: dict[str, list[float]]
    train_success: float
    losses: list[float]
    seed: int


def _ball(delta: torch.Tensor, budget: P.Budget) -> torch.Tensor:
    total = budget.total(tuple(delta.shape[1:]))
    if budget.norm == "linf":
        return P.linf(delta, total)
    if budget.norm == "l2":
        return P.l2(delta, total).clamp(-1, 1)
    if budget.norm == "l1":
        return P.l1(delta, total).clamp(-1, 1)
    if budget.norm == "none":
        return delta.clamp(-1, 1)
    raise ValueError("a universal perturbation takes an L1, L2, L∞ or no budget, not L0")


@torch.no_grad()
def success_with(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    delta: torch.Tensor,
    objective_for: ObjectiveFor,
    *,
    batch: int = 64,
) -> torch.Tensor:
    """Per-image success ``(N,)`` of ``delta`` added to every image of ``x``."""
    out = []
    for i in range(0, len(x), batch):
        idx = torch.arange(i, min(i + batch, len(x)))
        out.append(objective_for(idx)(model((x[idx] + delta).clamp(0, 1)))[1].cpu())
    return torch.cat(out)


def universal(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    objective_for: ObjectiveFor,
    *,
    budget: P.Budget,
    epochs: int = 10,
    batch: int = 32,
    step_size: float | None = None,
    seed: int = 0,
) -> Work[UniversalResult]:
    """Learn one δ on the images ``x`` (training set) within ``budget``.

    ``step_size`` defaults to a tenth of the budget's total norm (1/255 without a norm).
    """
    shape = tuple(x.shape[1:])
    size = (
        step_size
        if step_size is not None
        else (1 / 255 if budget.norm == "none" else 0.1 * budget.total(shape))
    )
    _ball(torch.zeros(1, *shape), budget)  # refuse L0 before any work
    rng = np.random.default_rng(seed)
    delta = torch.zeros(1, *shape, device=x.device)
    losses: list[float] = []
    steps_per_epoch = -(-len(x) // batch)
    with eval_mode(model):
        for epoch in range(epochs):
            running = []
            order = torch.from_numpy(rng.permutation(len(x)))
            for k in range(steps_per_epoch):
                idx = order[k * batch : (k + 1) * batch]
                delta.requires_grad_(True)
                loss, _ = objective_for(idx)(model((x[idx] + delta).clamp(0, 1)))
                (grad,) = torch.autograd.grad(loss.mean(), delta)
                with torch.no_grad():
                    if budget.norm == "linf" or budget.norm == "none":
                        step = size * grad.sign()
                    else:
                        step = size * grad / grad.norm().clamp_min(1e-12)
                    delta = _ball(delta.detach() + step, budget)
                running.append(float(loss.detach().mean()))
                yield Progress(
                    epoch * steps_per_epoch + k + 1,
                    epochs * steps_per_epoch,
                    {"epoch": epoch, "loss": running[-1]},
                )
            losses.append(float(np.mean(running)))
        train = success_with(model, x, delta, objective_for)
    return UniversalResult(delta, P.norms(delta), float(train.float().mean()), losses, seed)


class Universal(TileAttack):
    """Seed 001's universal perturbation over the tiles given: one δ learnt on all of them
    (``learn``) and added to each."""

    name = "universal"
    summary = "one δ learnt over all tiles (seed 001)"
    per_tile = False
    norms = ("l1", "l2", "linf", "none")

    def iterations(self, spec: AttackSpec) -> int:
        return spec.epochs

    def doubled(self, spec: AttackSpec) -> AttackSpec:
        return replace(spec, epochs=2 * spec.epochs)

    def learn(
        self,
        detector: Detector,
        x: torch.Tensor,
        objective: Objective,
        spec: AttackSpec,
        batch: int,
    ) -> Work[UniversalResult]:
        """``universal`` with ``spec``'s budget, epochs, step size and seed."""
        self.check(detector, spec)
        return (
            yield from universal(
                detector,
                x,
                lambda idx: subset(objective, idx),
                budget=spec.budget,
                epochs=spec.epochs,
                batch=batch,
                step_size=spec.step_size,
                seed=spec.seed,
            )
        )

    def craft(
        self,
        detector: Detector,
        x: torch.Tensor,
        objective: Objective,
        spec: AttackSpec,
        *,
        batch: int = 4,
    ) -> Work[Scored]:
        res = yield from self.learn(detector, x, objective, spec, batch)
        delta = res.delta.expand_as(x)
        steps = spec.epochs * -(-len(x) // batch)
        return score(detector, x, quantise(x, delta), objective, spec.seed, steps, unrounded=delta)


ATTACK = Universal()
