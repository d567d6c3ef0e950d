"""The one iterative attack loop every attack of the seeds runs on.

``attack`` is a generator: it yields an ``AttackState`` after every step (loss, success and
norms per example) and returns an ``AttackResult``. It works on batches, on the model's
device, with the model in eval mode (its mode is restored afterwards), and never mutates
the input. Restarts keep, per example, the worst case for the model: success first, then
the higher loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

from napari_cpadv.attacks.objectives import Objective
from napari_cpadv.attacks.projections import Budget, norms, project
from napari_cpadv.progress import Progress, Work

StepRule = Literal["sign", "l2", "l1", "l0"]


@dataclass(frozen=True)
class AttackResult:
    """``delta`` ``(N, C, H, W)`` with ``x + delta`` in [0, 1]; per-example ``success`` and
    ``loss`` of the kept δ; its ``norms`` in both units; ``steps`` run (the most of any
    restart) and the ``seed``."""

    delta: torch.Tensor
    success: torch.Tensor
    loss: torch.Tensor
    norms: dict[str, list[float]]
    steps: int
    seed: int

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean())


def _step(grad: torch.Tensor, rule: StepRule, size: float, sparsity: float) -> torch.Tensor:
    """The ascent direction scaled to ``size`` under each rule."""
    n = grad.shape[0]
    flat = grad.reshape(n, -1)
    if rule == "sign":
        return size * grad.sign()
    if rule == "l2" or rule == "l0":
        norm = flat.norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.ndim - 1)))
        return size * grad / norm
    # "l1": move only the coordinates with the largest |gradient| (sparse steepest ascent)
    k = max(1, round(sparsity * flat.shape[1]))
    top = flat.abs().topk(k, dim=1).indices
    out = torch.zeros_like(flat).scatter_(1, top, flat.gather(1, top).sign())
    return (size * out / k).reshape(grad.shape)


def attack(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    objective: Objective,
    *,
    budget: Budget,
    steps: int,
    step_size: float,
    rule: StepRule = "sign",
    sparsity: float = 0.01,
    random_start: bool = False,
    restarts: int = 1,
    early_stop: bool = True,
    projector: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> Work[AttackResult]:
    """Maximise ``objective(model(x + δ))`` by projected steps within ``budget``.

    Parameters
    ----------
    model
        Maps ``(N, C, H, W)`` in [0, 1] to logits; an ``nn.Module`` is put in eval mode.
    rule
        ``sign`` (FGSM/L∞), ``l2`` (normalised gradient), ``l1`` (the ``sparsity``
        fraction of coordinates with the largest gradient), ``l0`` (normalised gradient,
        then the L0 projection).
    random_start
        Start each restart at a random point of the budget (uniform in the L∞ box, else
        a random direction of half the budget's norm); the first restart starts at 0.
    early_stop
        Examples that succeed stop moving (single-instance attacks keep the smallest
        successful δ), and the loop ends when all have succeeded.
    projector
        Replaces ``projections.project(δ, x, budget)`` (a frozen L0 support, say).
    """
    if steps < 0 or step_size < 0 or restarts < 1:
        raise ValueError(f"steps={steps}, step_size={step_size}, restarts={restarts} out of range")
    x = x.detach()
    g = torch.Generator(device=x.device).manual_seed(seed)
    best = _Best(x)
    total = steps * restarts
    done = 0
    ran = 0
    with eval_mode(model):
        for r in range(restarts):
            delta = _start(x, budget, g) if (random_start and r > 0) else torch.zeros_like(x)
            for s in range(steps + 1):
                final = s == steps  # only scores the last δ: no graph needed
                with torch.set_grad_enabled(not final):
                    delta.requires_grad_(not final)
                    loss, success = objective(model(x + delta))
                if final or (early_stop and bool(success.all())):
                    break
                (grad,) = torch.autograd.grad(loss.sum(), delta)
                with torch.no_grad():
                    step = _step(grad, rule, step_size, sparsity)
                    if early_stop:
                        step[success] = 0
                    moved = delta.detach() + step
                    delta = project(moved, x, budget) if projector is None else projector(moved, x)
                done += 1
                shown = {
                    "loss": float(loss.detach().mean()),
                    "success": float(success.float().mean()),
                }
                yield Progress(done, total, {"restart": r, **shown})
            ran = max(ran, s)
            best.keep(delta.detach(), loss.detach(), success)
    return AttackResult(best.delta, best.success, best.loss, norms(best.delta), ran, seed)


class _Best:
    """Per example, the worst case for the model over restarts: success first, then the
    higher loss."""

    def __init__(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        self.delta = torch.zeros_like(x)
        self.loss = torch.full((n,), float("-inf"), device=x.device)
        self.success = torch.zeros(n, dtype=torch.bool, device=x.device)

    @torch.no_grad()
    def keep(self, delta: torch.Tensor, loss: torch.Tensor, success: torch.Tensor) -> None:
        better = (success & ~self.success) | ((success == self.success) & (loss > self.loss))
        self.delta[better] = delta[better]
        self.loss = torch.where(better, loss, self.loss)
        self.success = self.success | success


@contextmanager
def eval_mode(model: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Put ``model`` (when it is an ``nn.Module``) in eval mode, and back as it was after."""
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        yield
    finally:
        if module is not None:
            module.train(was_training)


def _start(x: torch.Tensor, budget: Budget, g: torch.Generator) -> torch.Tensor:
    total = budget.total(tuple(x.shape[1:]))
    if budget.norm == "linf":
        d = (torch.rand(x.shape, generator=g, device=x.device) * 2 - 1) * total
    else:
        d = torch.randn(x.shape, generator=g, device=x.device)
        if budget.norm in ("l1", "l2"):
            flat = d.reshape(len(d), -1)
            size = flat.abs().sum(1) if budget.norm == "l1" else flat.norm(dim=1)
            d = d * (0.5 * total / size.clamp_min(1e-12)).view(-1, 1, 1, 1)
        else:
            d = d * 0.01
    return project(d, x, budget)
