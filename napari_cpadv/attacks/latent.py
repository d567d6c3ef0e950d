"""Seed 000 §2.8.1: the attack on the sparse latent of the sparse-coding detector.

Sparse coding is an iterative, non-differentiable inference, so the image is encoded once
and the attack then works on the code: 100 steps along the sign of the head's gradient,
restricted to the code's non-zero support and kept non-negative (so the code stays
sparse, near the natural-image manifold). The image perturbation is the difference of the
two decodings, δ = σ·Φ(a_adv − a), optionally rescaled (clipping-aware) to an L2 budget.
Because re-encoding x + δ need not give back a_adv, both successes are reported: on the
attacked code, and end to end through the whole detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch

from napari_cpadv.attacks.base import Batch, TileAttack
from napari_cpadv.attacks.engine import AttackResult, eval_mode
from napari_cpadv.attacks.objectives import Objective
from napari_cpadv.attacks.projections import Budget, box, norms, rescale_l2_clipped
from napari_cpadv.progress import Progress, Work

if TYPE_CHECKING:
    from napari_cpadv.models.detector import LatentDetector


STEP = 0.02  # in code units (codes of standardised images are of order 1)


@dataclass(frozen=True)
class LatentResult(AttackResult):
    """An ``AttackResult`` (``success`` end to end, after re-encoding ``x + δ``) with the
    attacked ``codes`` and ``latent_success``, the success on the attacked code through the
    head."""

    codes: torch.Tensor
    latent_success: torch.Tensor


def latent_attack(
    detector: LatentDetector,
    x: torch.Tensor,
    objective: Objective,
    *,
    steps: int = 100,
    step_size: float = STEP,
    budget: Budget | None = None,
    seed: int = 0,
) -> Work[LatentResult]:
    """Attack ``detector`` (one with a sparse code: ``latent``) through its code.

    ``step_size`` is in code units (codes of standardised images are of order 1);
    ``budget`` (L2 only) rescales the resulting δ.
    """
    if budget is not None and budget.norm != "l2":
        raise ValueError(f"the latent attack's δ is rescaled to an L2 budget, not {budget.norm}")
    with eval_mode(detector):
        x = x.detach()
        code = detector.encode(x)
        support = code.codes > 0
        a = code.codes.clone()
        loss = torch.zeros(len(x))
        for s in range(steps):
            a.requires_grad_(True)
            loss, latent_success = objective(detector.head(a))
            (grad,) = torch.autograd.grad(loss.sum(), a)
            with torch.no_grad():
                a = (a + step_size * grad.sign() * support).clamp_min(0)
            yield Progress(s + 1, steps, {"loss": float(loss.detach().mean())})
        with torch.no_grad():
            a = a.detach()
            delta = box(detector.synthesise(a - code.codes) * code.std, x)
            if budget is not None:
                delta = rescale_l2_clipped(delta, x, budget.total(tuple(x.shape[1:])))
            loss, latent_success = objective(detector.head(a))
            end_loss, success = objective(detector(x + delta))
    return LatentResult(
        delta=delta,
        success=success,
        loss=end_loss,
        norms=norms(delta),
        steps=steps,
        seed=seed,
        codes=a,
        latent_success=latent_success,
    )


class Latent(TileAttack):
    """Seed 000's attack on the sparse coder: ``latent_attack`` on each batch's code."""

    name = "latent"
    summary = "seed 000's attack on the sparse code"
    gradient = False
    needs_latent = True
    norms = ("l2",)

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        latent = cast("LatentDetector", job.detector)  # checked: needs_latent
        return (yield from latent_attack(latent, job.x, job.objective, **job.spec.loop(STEP))).delta


ATTACK = Latent()
