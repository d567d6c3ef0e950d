"""The control of seed 000: random noise of the same norm as an attack's δ.

Gaussian or random-sign noise, each draw rescaled per example to the L2 norm of the
attack's δ after clipping to [0, 1] (``rescale_l2_clipped``), so the only difference from
the attack is the direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from napari_cpadv.attacks.base import AttackSpec, Batch, TileAttack
from napari_cpadv.attacks.engine import eval_mode
from napari_cpadv.attacks.objectives import Objective
from napari_cpadv.attacks.projections import norms, rescale_l2_clipped
from napari_cpadv.progress import Progress, Work

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class NoiseResult:
    """Per draw and example: ``loss`` and ``success`` ``(draws, N)``; ``l2`` achieved."""

    loss: torch.Tensor
    success: torch.Tensor
    l2: torch.Tensor
    kind: str
    seed: int

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean())


def noise_like(
    delta: torch.Tensor,
    x: torch.Tensor,
    *,
    kind: Literal["gaussian", "sign"] = "gaussian",
    seed: int = 0,
) -> torch.Tensor:
    """One draw of noise with each example's L2 norm equal to that of ``delta``."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    z = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    if kind == "sign":
        z = z.sign()
    elif kind != "gaussian":
        raise ValueError(f"unknown noise {kind!r}: 'gaussian' or 'sign'")
    target = torch.tensor(norms(delta)["l2_total"], dtype=torch.float64)
    out = torch.empty_like(x)
    for i in range(len(x)):  # each example to its own norm
        out[i : i + 1] = rescale_l2_clipped(z[i : i + 1], x[i : i + 1], float(target[i]))
    return out


@torch.no_grad()
def noise_control(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    objective: Objective,
    delta: torch.Tensor,
    *,
    draws: int = 10,
    kind: Literal["gaussian", "sign"] = "gaussian",
    seed: int = 0,
) -> Work[NoiseResult]:
    """Score ``draws`` noise draws of ``delta``'s norm under ``objective``."""
    losses, successes, l2s = [], [], []
    with eval_mode(model):
        for d in range(draws):
            n = noise_like(delta, x, kind=kind, seed=seed + d)
            loss, success = objective(model(x + n))
            losses.append(loss)
            successes.append(success)
            l2s.append(torch.tensor(norms(n)["l2_total"]))
            yield Progress(d + 1, draws, {"loss": float(loss.mean())})
    return NoiseResult(torch.stack(losses), torch.stack(successes), torch.stack(l2s), kind, seed)


class Noise(TileAttack):
    """The control as an attack: a Gaussian direction per tile, rescaled (clipping-aware)
    to the L2 budget; it runs no step, so it reports 0 iterations."""

    name = "noise"
    summary = "Gaussian noise of the same L2 norm: the control"
    gradient = False
    norms = ("l2",)

    def iterations(self, spec: AttackSpec) -> int:
        return 0

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        direction = noise_like(torch.ones_like(job.x), job.x, seed=job.spec.seed + job.first)
        yield Progress(1, 1, {"tiles": len(job.x)})
        return rescale_l2_clipped(direction, job.x, job.spec.budget.total(tuple(job.x.shape[1:])))


ATTACK = Noise()
