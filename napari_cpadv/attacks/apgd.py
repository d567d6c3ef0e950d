"""APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks", Algorithm 1) under L∞ or L2: PGD whose step size the
run sets itself, with momentum, so that no step size is tuned (issue 29, item 1).

Each example starts at a random point of the budget, steps along the sign (L∞) or the
direction (L2) of the gradient with momentum 0.75, and keeps the highest loss reached. At
checkpoints (after 22 % of the iterations, then at shrinking intervals of at least 6 %),
its step size, which starts at twice the budget, is halved and it restarts from its best
point when fewer than 75 % of the steps since the last checkpoint raised the loss or when
neither the step size nor the best loss changed since then. Written from the paper (the
reference implementation, AutoAttack's ``APGDAttack``, is checked against in the tests):
the loop runs on the project's objectives, so it attacks class logits (seed 001's ResNet)
and per-cell heatmaps (seed 000's detectors) alike, which AutoAttack and torchattacks,
needing one ``(N, classes)`` logit vector per image, cannot.

Success is the objective's. Per example the attack keeps a δ that succeeded (the last
one), else the δ of the highest loss; restarts from new random points run only on the
examples no run has fooled yet. APGD-L1 (its own sparse steps) is not here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from napari_cpadv.attacks.base import Batch, TileAttack
from napari_cpadv.attacks.engine import AttackResult, _Best, eval_mode
from napari_cpadv.attacks.objectives import Objective, subset
from napari_cpadv.attacks.projections import Budget, norms, project
from napari_cpadv.progress import Progress, Work

MOMENTUM = 0.75
RHO = 0.75  # the share of steps since the last checkpoint that must have raised the loss
FIRST_CHECK, SHRINK, SHORTEST = 0.22, 0.03, 0.06  # checkpoint intervals, shares of the run


def apgd(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    objective: Objective,
    *,
    budget: Budget,
    steps: int = 100,
    restarts: int = 1,
    seed: int = 0,
) -> Work[AttackResult]:
    """APGD within ``budget`` (L∞ or L2); returns δ, success, loss and norms per example."""
    if budget.norm not in ("linf", "l2"):
        raise ValueError(f"APGD runs under an L∞ or L2 budget, not {budget.norm}")
    if steps < 1 or restarts < 1:
        raise ValueError(f"steps={steps} and restarts={restarts} must be at least 1")
    x = x.detach()
    g = torch.Generator(device=x.device).manual_seed(seed)
    best = _Best(x)
    with eval_mode(model):
        for r in range(restarts):
            todo = torch.nonzero(~best.success).flatten()
            if not len(todo):
                break
            run = _Run(model, x[todo], subset(objective, todo), budget, steps, g)
            for i in range(steps):
                run.step(i)
                yield Progress(r * steps + i + 1, restarts * steps, run.shown())
            delta, loss, success = run.result()
            full = best.delta.clone()
            full[todo] = delta
            loss_full = torch.full_like(best.loss, float("-inf"))
            loss_full[todo] = loss
            won = torch.zeros_like(best.success)
            won[todo] = success
            best.keep(full, loss_full, won)
    return AttackResult(best.delta, best.success, best.loss, norms(best.delta), steps, seed)


class _Run:
    """One APGD run from a random start over a batch: Algorithm 1's state per example."""

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        objective: Objective,
        budget: Budget,
        steps: int,
        g: torch.Generator,
    ) -> None:
        self.model, self.x, self.objective, self.budget = model, x, objective, budget
        self.eps = budget.total(tuple(x.shape[1:]))
        n, view = len(x), (-1, *([1] * (x.ndim - 1)))
        self.view = view
        self.delta = project(self._direction(_random(x, budget.norm, g)) * self.eps, x, budget)
        self.previous = self.delta.clone()
        self.loss, self.grad, success = self._evaluate(self.delta)
        self.best_loss, self.best = self.loss.clone(), self.delta.clone()
        self.best_grad = self.grad.clone()
        self.fooled, self.fooled_delta = success.clone(), self.delta.clone()
        self.fooled_loss = torch.where(success, self.loss, torch.full_like(self.loss, -math.inf))
        self.size = torch.full((n,), 2.0 * self.eps, device=x.device)
        self.history = [self.loss.clone()]  # the loss after every step, the start first
        self.interval = max(int(FIRST_CHECK * steps), 1)
        self.shrink, self.shortest = max(int(SHRINK * steps), 1), max(int(SHORTEST * steps), 1)
        self.since_check = 0
        self.best_at_check = self.best_loss.clone()
        self.halved_at_check = torch.ones(n, dtype=torch.bool, device=x.device)

    def _direction(self, v: torch.Tensor) -> torch.Tensor:
        """``v`` scaled to unit L∞ (its sign, for the steps) or unit L2 norm."""
        flat = v.reshape(len(v), -1)
        if self.budget.norm == "linf":
            return v / flat.abs().amax(1).clamp_min(1e-12).view(self.view)
        return v / flat.norm(dim=1).clamp_min(1e-12).view(self.view)

    def _evaluate(self, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        delta = delta.detach().requires_grad_(True)
        with torch.enable_grad():
            loss, success = self.objective(self.model(self.x + delta))
            (grad,) = torch.autograd.grad(loss.sum(), delta)
        return loss.detach(), grad.detach(), success.detach()

    def step(self, i: int) -> None:
        with torch.no_grad():
            ascent = self.grad.sign() if self.budget.norm == "linf" else self._direction(self.grad)
            z = project(self.delta + self.size.view(self.view) * ascent, self.x, self.budget)
            a = MOMENTUM if i > 0 else 1.0
            moved = self.delta + a * (z - self.delta) + (1 - a) * (self.delta - self.previous)
            self.previous, self.delta = self.delta, project(moved, self.x, self.budget)
        self.loss, self.grad, success = self._evaluate(self.delta)
        with torch.no_grad():
            self.fooled_delta[success] = self.delta[success]
            self.fooled_loss = torch.where(success, self.loss, self.fooled_loss)
            self.fooled |= success
            up = self.loss > self.best_loss
            self.best[up], self.best_grad[up] = self.delta[up], self.grad[up]
            self.best_loss = torch.where(up, self.loss, self.best_loss)
            self.history.append(self.loss.clone())
            self.since_check += 1
            if self.since_check == self.interval:
                self._checkpoint()

    def _checkpoint(self) -> None:
        """Halve the step and go back to the best point where the run stalled (Algorithm
        1's two conditions), then shorten the next interval."""
        last = torch.stack(self.history[-(self.interval + 1) :])
        rises = (last[1:] > last[:-1]).float().sum(0)
        oscillating = rises <= self.interval * RHO
        stuck = ~self.halved_at_check & (self.best_at_check >= self.best_loss)
        halve = oscillating | stuck
        self.size[halve] /= 2
        self.delta[halve], self.grad[halve] = self.best[halve], self.best_grad[halve]
        self.halved_at_check, self.best_at_check = halve, self.best_loss.clone()
        self.interval = max(self.interval - self.shrink, self.shortest)
        self.since_check = 0

    def shown(self) -> dict[str, float]:
        return {"loss": float(self.best_loss.mean()), "success": float(self.fooled.float().mean())}

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per example: the last δ that succeeded, else the δ of the highest loss."""
        won = self.fooled.view(self.view)
        delta = torch.where(won, self.fooled_delta, self.best)
        return delta, torch.where(self.fooled, self.fooled_loss, self.best_loss), self.fooled


def _random(x: torch.Tensor, norm: str, g: torch.Generator) -> torch.Tensor:
    """A random direction: uniform in the L∞ cube, Gaussian for L2."""
    if norm == "linf":
        return torch.rand(x.shape, generator=g, device=x.device) * 2 - 1
    return torch.randn(x.shape, generator=g, device=x.device)


class APGD(TileAttack):
    """``apgd`` under ``spec``'s L∞ or L2 budget, steps, restarts and seed (the step size is
    the run's own: a given one is refused)."""

    name = "apgd"
    summary = "APGD (Croce & Hein 2020): PGD that sets its own step size, L∞ or L2"
    norms = ("l2", "linf")
    single_step_check = True

    def check(self, detector: object, spec: object) -> None:  # type: ignore[override]
        super().check(detector, spec)  # type: ignore[arg-type]
        if getattr(spec, "step_size", None) is not None:
            raise ValueError("APGD sets its own step size (twice the budget, halved as it goes)")

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        spec = job.spec
        res = yield from apgd(
            job.detector,
            job.x,
            job.objective,
            budget=spec.budget,
            steps=spec.steps,
            restarts=spec.restarts,
            seed=spec.seed + job.first,
        )
        return res.delta


ATTACK = APGD()
