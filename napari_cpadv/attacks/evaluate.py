"""How much damage attacks do, measured the way a robustness evaluation should be.

* ``success_vs_budget``: one attack over a list of budgets, a success matrix (seed 001
  Fig. 4), warning when success is not monotone in the budget;
* ``sanity``: the warnings a result must carry when a rule of thumb fails (noise beats the
  white-box attack, iterative weaker than one step, zero gradients, no convergence).

``experiments.sweep`` and ``experiments.transfer`` run them over the tiles of a slide,
with the AUC-PR table of every detector under every condition (seed 000 Fig. 10) and the
transfer matrix.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_cpadv.attacks.engine import AttackResult
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.progress import Progress, Work, within


@dataclass(frozen=True)
class Sweep:
    """Success ``(budgets, N)`` of one attack over ``budgets``, and warnings."""

    budgets: tuple[Budget, ...]
    success: np.ndarray
    norms: list[dict[str, list[float]]]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def rates(self) -> list[float]:
        return [float(r.mean()) for r in self.success]


def success_vs_budget(
    run: Callable[[Budget], Work[AttackResult]], budgets: Sequence[Budget]
) -> Work[Sweep]:
    """Run ``run(budget)`` for every budget (smallest first) and collect success."""
    rows, all_norms = [], []
    for k, b in enumerate(budgets):
        res = yield from within(run(b), k / len(budgets), (k + 1) / len(budgets), budget=b.value)
        rows.append(res.success.cpu().numpy())
        all_norms.append(res.norms)
        yield Progress(k + 1, len(budgets), {"budget": b.value, "success": res.success_rate})
    success = np.stack(rows)
    rates = success.mean(axis=1)
    warnings = []
    if any(b2 < b1 - 1e-9 for b1, b2 in itertools.pairwise(rates)):
        warnings.append(
            "success is not monotone in the budget: "
            + ", ".join(f"{b.value:g}: {r:.3f}" for b, r in zip(budgets, rates, strict=True))
            + " (too few steps, a step size too large, or gradient masking)"
        )
    return Sweep(tuple(budgets), success, all_norms, tuple(warnings))


def sanity(
    *,
    attack_damage: float,
    noise_damage: float | None = None,
    one_step_damage: float | None = None,
    gradient_norm: float | None = None,
    doubled_damage: float | None = None,
    tolerance: float = 0.01,
) -> list[str]:
    """Warnings for a white-box result; "damage" is any measure where larger is worse for
    the detector (an AUC-PR drop, a success rate)."""
    out = []
    if noise_damage is not None and noise_damage > attack_damage + tolerance:
        out.append(
            f"noise of the same norm does more damage ({noise_damage:.3f}) "
            f"than the attack ({attack_damage:.3f})"
        )
    if one_step_damage is not None and one_step_damage > attack_damage + tolerance:
        out.append(
            f"one step does more damage ({one_step_damage:.3f}) "
            f"than the iterative attack ({attack_damage:.3f})"
        )
    if gradient_norm is not None and gradient_norm == 0:
        out.append("the gradient is zero: the attack cannot move (masked or saturated logits)")
    if doubled_damage is not None and doubled_damage > attack_damage + tolerance:
        out.append(
            "not converged: twice the iterations do more damage "
            f"({doubled_damage:.3f} vs {attack_damage:.3f})"
        )
    return out
