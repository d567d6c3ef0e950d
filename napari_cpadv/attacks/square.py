"""Square (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search") under L∞ or L2: forward passes only, no gradient
(issue 29, item 2).

Random search over square windows: from a start on the budget's boundary (vertical stripes
of ±ε under L∞; a grid of the paper's centred-rectangle patterns under L2), each iteration
changes one window of every example not yet fooled (L∞: the window set to ±ε per channel;
L2: a pattern added in one window and the mass of a second window moved into it, the total
norm kept at ε) and keeps the change where the loss rose or the example was fooled. The
window's share of the image starts at ``p_init`` (0.8) and halves on the paper's schedule,
rescaled to the iterations run. Written from the paper; the tests compare it with
torchattacks' Square on a small classifier.

The loss is the objective's (class logits or per-cell heatmaps), read from the detector's
outputs alone: Square attacks a detector whose gradients are masked or missing, such as
the sparse coder's LCA, which no gradient attack reaches directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from napari_cpadv.attacks.base import Batch, TileAttack
from napari_cpadv.attacks.engine import AttackResult, _Best, eval_mode
from napari_cpadv.attacks.objectives import Objective, subset
from napari_cpadv.attacks.projections import Budget, box, norms
from napari_cpadv.progress import Progress, Work

P_INIT = 0.8
# the iterations (of 10,000) after which the window's share halves again (the paper's)
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def share(i: int, iterations: int, p_init: float = P_INIT) -> float:
    """The share of the image the window covers at iteration ``i`` of ``iterations``."""
    at = int(i / iterations * 10000)
    return p_init / 2 ** sum(at > h for h in HALVINGS)


def square(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    objective: Objective,
    *,
    budget: Budget,
    steps: int = 1000,
    restarts: int = 1,
    seed: int = 0,
    p_init: float = P_INIT,
) -> Work[AttackResult]:
    """Square within ``budget`` (L∞ or L2), ``steps`` iterations of one forward pass each."""
    if budget.norm not in ("linf", "l2"):
        raise ValueError(f"Square runs under an L∞ or L2 budget, not {budget.norm}")
    if steps < 1 or restarts < 1:
        raise ValueError(f"steps={steps} and restarts={restarts} must be at least 1")
    x = x.detach()
    g = torch.Generator(device=x.device).manual_seed(seed)
    best = _Best(x)
    with torch.no_grad(), eval_mode(model):
        for r in range(restarts):
            todo = torch.nonzero(~best.success).flatten()
            if not len(todo):
                break
            search = _Search(model, x[todo], subset(objective, todo), budget, g)
            for i in range(steps):
                if not bool(search.fooled.all()):
                    search.step(share(i, steps, p_init))
                yield Progress(r * steps + i + 1, restarts * steps, search.shown())
            full, loss = best.delta.clone(), torch.full_like(best.loss, -math.inf)
            full[todo], loss[todo] = search.delta, search.loss
            won = torch.zeros_like(best.success)
            won[todo] = search.fooled
            best.keep(full, loss, won)
    return AttackResult(best.delta, best.success, best.loss, norms(best.delta), steps, seed)


class _Search:
    """One random search over a batch: the kept δ, its loss and success per example."""

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        objective: Objective,
        budget: Budget,
        g: torch.Generator,
    ) -> None:
        self.model, self.x, self.objective, self.budget, self.g = model, x, objective, budget, g
        self.eps = budget.total(tuple(x.shape[1:]))
        n, c, h, w = x.shape
        if budget.norm == "linf":
            self.delta = box(self.eps * self._signs((n, c, 1, w)).expand(n, c, h, w), x)
        else:
            self.delta = box(_to_norm(_start_l2(x, self._signs, g), self.eps), x)
        self.loss, self.fooled = objective(model(x + self.delta))

    def _signs(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(0, 2, shape, generator=self.g, device=self.x.device).float() * 2 - 1

    def _corner(self, side: int) -> tuple[int, int]:
        h, w = self.x.shape[-2:]
        r = int(torch.randint(0, max(h - side, 0) + 1, (1,), generator=self.g))
        c = int(torch.randint(0, max(w - side, 0) + 1, (1,), generator=self.g))
        return r, c

    def step(self, p: float) -> None:
        """Propose one window change for every example not yet fooled; keep the better."""
        live = torch.nonzero(~self.fooled).flatten()
        x, delta = self.x[live], self.delta[live]
        n, c, h, w = x.shape
        if self.budget.norm == "linf":
            side = max(round(math.sqrt(p * h * w)), 1)
            r, q = self._corner(side)
            new = delta.clone()
            window = new[..., r : r + side, q : q + side]
            flip = 2 * self.eps * self._signs((n, c, 1, 1))
            new[..., r : r + side, q : q + side] = (window + flip).clamp(-self.eps, self.eps)
            new = box(new, x)
        else:
            new = self._l2_proposal(x, delta, p)
        loss, success = subset(self.objective, live)(self.model(x + new))
        better = (loss > self.loss[live]) | success
        kept = live[better]
        self.delta[kept] = new[better]
        self.loss[kept] = loss[better]
        self.fooled[kept] = success[better]

    def _l2_proposal(self, x: torch.Tensor, delta: torch.Tensor, p: float) -> torch.Tensor:
        """The paper's L2 step: a pattern added in one window, a second window's mass moved
        into it, the whole δ rescaled to the budget's norm."""
        n, c, h, w = x.shape
        side = max(round(math.sqrt(p * h * w)), 3)
        side += 1 - side % 2  # odd
        side = min(side, h, w)
        (r1, q1), (r2, q2) = self._corner(side), self._corner(side)
        one = (slice(None), slice(None), slice(r1, r1 + side), slice(q1, q1 + side))
        two = (slice(None), slice(None), slice(r2, r2 + side), slice(q2, q2 + side))
        image = _l2(delta).view(n, 1, 1, 1)
        mask = torch.zeros_like(delta)
        mask[one], mask[two] = 1.0, 1.0
        windows = _l2(delta * mask).view(n, 1, 1, 1)
        old = delta[one] / delta[one].pow(2).sum((-2, -1), keepdim=True).sqrt().clamp_min(1e-12)
        added = _eta(side, self.g, x.device) * self._signs((n, c, 1, 1)) + old
        room = ((self.eps**2 - image**2).clamp_min(0) / c + windows**2).sqrt()
        added = added / added.pow(2).sum((-2, -1), keepdim=True).sqrt().clamp_min(1e-12) * room
        new = delta.clone()
        new[two] = 0.0
        new[one] = added
        return box(_to_norm(new, self.eps), x)

    def shown(self) -> dict[str, float]:
        return {"loss": float(self.loss.mean()), "success": float(self.fooled.float().mean())}


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(len(v), -1).norm(dim=1)


def _to_norm(v: torch.Tensor, eps: float) -> torch.Tensor:
    """``v`` scaled to L2 norm ``eps`` per example."""
    return v / _l2(v).clamp_min(1e-12).view(-1, 1, 1, 1) * eps


def _rectangles(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """The paper's pattern of nested rectangles around the centre, weights 1/k², unit norm."""
    out = torch.zeros(rows, cols, device=device)
    r0, c0 = rows // 2, cols // 2
    for k in range(max(r0, c0) + 1):
        out[max(r0 - k, 0) : min(r0 + k + 1, rows), max(c0 - k, 0) : min(c0 + k + 1, cols)] += (
            1.0 / (k + 1) ** 2
        )
    return out / out.pow(2).sum().sqrt().clamp_min(1e-12)


def _eta(side: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """Two opposite halves of rectangles in a ``side`` window, unit norm, turned by chance."""
    top = side // 2
    pattern = torch.cat(
        [_rectangles(top, side, device), -_rectangles(side - top, side, device)], dim=0
    )
    pattern = pattern / pattern.pow(2).sum().sqrt().clamp_min(1e-12)
    if bool(torch.rand(1, generator=g, device=g.device) > 0.5):
        pattern = pattern.T
    return pattern


def _start_l2(
    x: torch.Tensor, signs: Callable[..., torch.Tensor], g: torch.Generator
) -> torch.Tensor:
    """The paper's L2 start: a grid of windows of a fifth of the side, each a pattern with a
    random sign per channel."""
    n, c, h, w = x.shape
    side = max(h // 5, 1)
    first = (h - side * 5) // 2 if h >= 5 else 0
    out = torch.zeros_like(x)
    for r in range(first, h - side + 1, side):
        for q in range(first, w - side + 1, side):
            out[..., r : r + side, q : q + side] += _eta(side, g, x.device) * signs((n, c, 1, 1))
    return out


class Square(TileAttack):
    """``square`` under ``spec``'s L∞ or L2 budget, its steps (iterations, one forward pass
    each), restarts and seed; it needs no gradient, so it attacks the sparse coder too."""

    name = "square"
    summary = "Square (Andriushchenko et al. 2020): random search, forward passes only"
    norms = ("l2", "linf")
    gradient = False

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        spec = job.spec
        res = yield from square(
            job.detector,
            job.x,
            job.objective,
            budget=spec.budget,
            steps=spec.steps,
            restarts=spec.restarts,
            seed=spec.seed + job.first,
        )
        return res.delta


ATTACK = Square()
