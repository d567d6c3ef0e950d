"""Budget sweeps (seed 001 Fig. 4, seed 000's damage against budget) and the checks a
white-box result owes its reader: twice the iterations, one step, the gradient at the
clean tiles, and Gaussian noise of the same norm."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from napari_cpadv.attacks.base import AttackSpec, Scored, quantise, rounding_warnings
from napari_cpadv.attacks.engine import AttackResult
from napari_cpadv.attacks.objectives import CellObjective, Objective, logits_of, objective_for
from napari_cpadv.attacks.projections import Budget, norms
from napari_cpadv.experiments.scoring import condition, logits_aucpr, scorable
from napari_cpadv.experiments.tiles import Tiles
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work, within


def sweep(
    detector: Detector,
    tiles: Tiles,
    spec: AttackSpec,
    values: Sequence[float],
    *,
    device: Any = "cpu",
    batch: int = 4,
    noise: bool = True,
    check: bool = False,
    cluster: Any = None,
) -> Work[dict[str, Any]]:
    """Run ``spec`` at every budget value in ``values`` on ``tiles``, smallest first.

    Returns a JSON-ready report: the success matrix (budgets x tiles, seed 001 Fig. 4),
    success rates, achieved norms, the detector's cell AUC-PR clean and at each budget
    (with ground truth), the same for Gaussian noise of each budget's achieved L2 norm
    (``noise``), and warnings when a sanity rule fails. ``check`` adds the convergence
    check (twice the iterations at the largest budget), one step at the largest budget
    (iterative attacks) and the gradient at the clean tiles. With ``cluster``
    (``inference.cluster.Cluster``) the budgets are crafted on its workers, one a task;
    scoring and the checks run here.
    """
    from napari_cpadv.attacks.evaluate import success_vs_budget

    started = time.perf_counter()
    budgets = _budgets(spec, values)
    detector.to(device).eval()
    x = tiles.x.to(device)
    labels = tiles.labels if detector.output == "cells" else None
    clean_logits = logits_of(detector, x, torch.zeros_like(x))  # once: objective, clean AUC-PR
    objective = objective_for(detector, x, labels, clean=clean_logits)
    share = 0.0 if cluster is None else 0.9  # of the bar: crafting on the cluster
    results = yield from within(
        _on_cluster(cluster, detector, x, labels, spec, budgets, batch), 0.0, share
    )

    def run(b: Budget) -> Work[AttackResult]:
        if b.value not in results:  # crafted here
            at = replace(spec, budget=b)
            results[b.value] = yield from at.runner.craft(detector, x, objective, at, batch=batch)
        return results[b.value]

    table = yield from within(success_vs_budget(run, budgets), share, 1.0)
    warnings = list(table.warnings)
    labels = scorable(labels, warnings)
    clean = logits_aucpr(clean_logits, labels) if labels is not None else None
    scorer = _Scorer(detector, x, objective, labels, clean)
    rows = [
        scorer.row(b, results[b.value], warnings, spec.seed if noise else None) for b in budgets
    ]
    if labels is not None:
        warnings += _not_monotone(rows)
    checks: dict[str, Any] = {}
    if check:  # at the largest budget
        top = replace(spec, budget=budgets[-1])
        checks = yield from convergence_checks(
            detector, x, objective, top, rows[-1]["damage"], labels, clean, batch=batch
        )
    warnings += checks.get("warnings", [])
    return {
        **_what(detector, spec, budgets, tiles, device),
        "success": table.success.astype(int).tolist(),
        "success_rates": table.rates(),
        **_success_rule(objective),
        "clean_aucpr": clean,
        "rows": rows,
        "checks": checks,
        "warnings": warnings,
        "seconds": time.perf_counter() - started,
    }


def _budgets(spec: AttackSpec, values: Sequence[float]) -> list[Budget]:
    """The budgets of ``values``, smallest first; ``ValueError`` for none or a negative one."""
    if not values or any(v < 0 for v in values):
        raise ValueError(f"budgets must be a non-empty list of values >= 0, not {list(values)}")
    return [replace(spec.budget, value=v) for v in sorted(float(v) for v in values)]


def _on_cluster(
    cluster: Any,
    detector: Detector,
    x: torch.Tensor,
    labels: Any,
    spec: AttackSpec,
    budgets: list[Budget],
    batch: int,
) -> Work[dict[float, Scored]]:
    """Every budget crafted on ``cluster``'s workers, one a task (none without one)."""
    if cluster is None:
        return {}
    from napari_cpadv.experiments.chunks import Craft, craft_on

    crafts = {b.value: Craft(detector.name, replace(spec, budget=b), batch) for b in budgets}
    return (yield from craft_on(cluster, {detector.name: detector}, x, labels, crafts))


def _what(
    detector: Detector, spec: AttackSpec, budgets: list[Budget], tiles: Tiles, device: Any
) -> dict[str, Any]:
    """What a sweep ran: detector, attack, budgets, tiles, iterations, seed, device."""
    return {
        "detector": detector.name,
        "attack": spec.attack,
        "norm": spec.budget.norm,
        "unit": spec.budget.unit,
        "budgets": [b.value for b in budgets],
        "level": tiles.level,
        "tiles": [list(p) for p in tiles.positions],
        "steps": spec.iterations,
        "seed": spec.seed,
        "device": str(device),
    }


@dataclass(frozen=True)
class _Scorer:
    """What every row of a sweep is scored against: the detector, the clean tiles, the
    objective, the cell labels (``None``: no AUC-PR) and the clean AUC-PR."""

    detector: Detector
    x: torch.Tensor
    objective: Objective
    labels: np.ndarray | None
    clean: float | None

    def condition(self, delta: torch.Tensor, logits: torch.Tensor | None = None) -> dict[str, Any]:
        return condition(
            self.detector, self.x, delta, self.objective, self.labels, self.clean, logits
        )

    def row(
        self, b: Budget, res: Scored, warnings: list[str], noise_seed: int | None
    ) -> dict[str, Any]:
        """One budget's row (and its warnings): the attack, the float δ's norms and success
        (the papers' setting, before rounding to 8 bits), and noise of the same L2 norm
        unless ``noise_seed`` is ``None``."""
        from napari_cpadv.attacks.evaluate import sanity
        from napari_cpadv.attacks.noise import noise_like

        row: dict[str, Any] = {"budget": b.value, "norms": res.norms}
        row.update(self.condition(res.delta, res.logits))
        if res.norms_float is not None and res.success_float is not None:
            row["float"] = {
                "norms": res.norms_float,
                "success_rate": float(res.success_float.float().mean()),
            }
        warnings += [f"budget {b.value:g}: {w}" for w in rounding_warnings(res, b)]
        if noise_seed is not None:
            n = quantise(self.x, noise_like(res.delta, self.x, seed=noise_seed))
            row["noise"] = {**self.condition(n), "l2_total": norms(n)["l2_total"]}
            warnings += [
                f"budget {b.value:g}: {w}"
                for w in sanity(attack_damage=row["damage"], noise_damage=row["noise"]["damage"])
            ]
        return row


def _not_monotone(rows: list[dict[str, Any]]) -> list[str]:
    if not any(
        later["aucpr"] > earlier["aucpr"] + 0.01 for earlier, later in itertools.pairwise(rows)
    ):
        return []
    return [
        "AUC-PR under attack is not monotone in the budget: "
        + ", ".join(f"{r['budget']:g}: {r['aucpr']:.3f}" for r in rows)
    ]


def _success_rule(objective: Objective) -> dict[str, str]:
    if not isinstance(objective, CellObjective):
        return {}
    return {
        "success_rule": f"cells: fewer than {objective.keep:.0%} of the tumour cells found "
        "clean still found, or a normal tile's call flipping to tumour"
    }


def gradient_norm(detector: Detector, x: torch.Tensor, objective: Objective) -> float:
    """Mean per-tile L2 norm of the objective's gradient at ``x`` (zero: nothing moves)."""
    from napari_cpadv.attacks.engine import eval_mode

    with eval_mode(detector):
        d = torch.zeros_like(x, requires_grad=True)
        loss, _ = objective(detector(x + d))
        (grad,) = torch.autograd.grad(loss.sum(), d)
    return float(grad.flatten(1).norm(dim=1).mean())


def convergence_checks(
    detector: Detector,
    x: torch.Tensor,
    objective: Objective,
    spec: AttackSpec,
    damage: float,
    labels: np.ndarray | None,
    clean: float | None,
    *,
    batch: int = 4,
) -> Work[dict[str, Any]]:
    """The checks a white-box result owes its reader, at ``spec``'s budget: twice the
    iterations (convergence), one step (iterative attacks) and the gradient at the clean
    images. ``damage`` is the attack's (AUC-PR drop, or success rate without labels)."""
    from napari_cpadv.attacks.evaluate import sanity

    out: dict[str, Any] = {}
    twice = spec.doubled()
    doubled = yield from twice.runner.craft(detector, x, objective, twice, batch=batch)
    out["doubled"] = {
        "steps": spec.doubled().iterations,
        **condition(detector, x, doubled.delta, objective, labels, clean),
    }
    one = None
    if spec.runner.single_step_check and spec.steps > 1:
        once = replace(spec, steps=1)
        single = yield from once.runner.craft(detector, x, objective, once, batch=batch)
        out["one_step"] = condition(detector, x, single.delta, objective, labels, clean)
        one = out["one_step"]["damage"]
    if not getattr(detector, "gradient_free", False):  # the sparse coder has no gradient
        out["gradient_norm"] = gradient_norm(detector, x, objective)
    out["warnings"] = sanity(
        attack_damage=damage,
        one_step_damage=one,
        gradient_norm=out.get("gradient_norm"),
        doubled_damage=out["doubled"]["damage"],
    )
    return out
