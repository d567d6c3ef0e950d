"""Seed 001 Fig. 4: success rate against budget under L0, L1, L2 and L∞ (and without a
norm), on labelled held-out patches, against their true labels.

Every attack is ``attacks.pgd.pgd`` with seed 001's own constraints (``constraint=
"seed001"``: L0 keeps the top fraction of pixels by the step's gradient, L1 and L2 rescale
δ to the budget's mean absolute or root-mean-square difference, L∞ clamps). Only patches
the classifier gets right when clean are attacked (an attack takes no credit for the
model's own mistakes); success is counted on the float δ (the paper's setting) and on the
image rounded to 8 bits (what a saved copy holds). Each norm also carries the checks of
Carlini et al.'s list the run can make: success monotone in the budget, Gaussian noise of
the attack's L2 norm, one step against many, twice the steps, a non-zero gradient.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_cpadv.attacks.projections import Budget
from napari_cpadv.progress import Progress, Work, within

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector

# The budgets of the four panels, per pixel: L0 a fraction of the pixels, L1 and L2 the
# mean absolute and root-mean-square difference in grey levels (of 255), L∞ grey levels,
# down to the half grey level that seed 001 §3.2 reports (the least that moves a pixel).
BUDGETS: dict[str, tuple[float, ...]] = {
    "l0": (0.01, 0.02, 0.05, 0.1, 0.2),
    "l1": (0.125, 0.25, 0.5, 1.0, 2.0),
    "l2": (0.125, 0.25, 0.5, 1.0, 2.0),
    "linf": (0.5, 1.0, 2.0, 4.0, 8.0),
}

UNITS = {
    "l0": "fraction of pixels",
    "l1": "mean |δ| (grey levels)",
    "l2": "RMS δ (grey levels)",
    "linf": "max |δ| (grey levels)",
    "none": "none",
}


def budget_of(norm: str, value: float) -> Budget:
    """A panel's budget in ``projections.Budget``'s per-pixel units (L1, L2 from grey levels)."""
    scale = 1 / 255 if norm in ("l1", "l2") else 1.0
    return Budget(norm, value * scale, "per_pixel")  # type: ignore[arg-type]


def norm_panels(
    detector: Detector,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    budgets: Mapping[str, Sequence[float]] = BUDGETS,
    steps: int = 100,
    seed: int = 0,
    batch: int = 16,
    device: torch.device | str = "cpu",
) -> Work[dict[str, Any]]:
    """Success of PGD under each norm and budget on ``images`` ``(N, S, S, 3)`` uint8 with
    true ``labels``; also the unconstrained attack. Returns the panels and their checks."""
    from napari_cpadv.attacks.objectives import ClassObjective, logits_of
    from napari_cpadv.device import to_tensor

    detector.to(device).eval()
    y = np.asarray(labels, dtype=np.int64)
    x = to_tensor(images, device)
    clean = logits_of(detector, x, torch.zeros_like(x), batch).argmax(1).cpu().numpy()
    right = np.flatnonzero(clean == y)
    if right.size == 0:
        raise ValueError("the classifier gets none of these patches right: nothing to attack")
    x = x[torch.from_numpy(right).to(x.device)]
    objective = ClassObjective(torch.from_numpy(y[right]).to(device))
    out: dict[str, Any] = {"patches": len(images), "attacked": int(right.size), "steps": steps}
    parts = [*budgets, "none"]
    for k, norm in enumerate(parts):
        values = budgets.get(norm, (0.0,))
        work = _panel(detector, x, objective, norm, values, steps, seed, batch)
        out[norm] = yield from within(work, k / len(parts), (k + 1) / len(parts), norm=norm)
    return out


def _panel(
    detector: Detector,
    x: torch.Tensor,
    objective: Any,
    norm: str,
    values: Sequence[float],
    steps: int,
    seed: int,
    batch: int,
) -> Work[dict[str, Any]]:
    """One norm over its budgets (smallest first), then its checks at the middle budget."""
    rows = []
    for k, value in enumerate(sorted(values)):
        budget = budget_of(norm, value)
        work = _attack(detector, x, objective, budget, steps, seed, batch)
        rows.append((yield from within(work, k / (len(values) + 2), (k + 1) / (len(values) + 2))))
        rows[-1]["budget"] = value
    rates = [r["success"] for r in rows]
    monotone = all(b >= a - 1e-9 for a, b in itertools.pairwise(rates))
    middle = budget_of(norm, sorted(values)[len(values) // 2])
    checks = yield from within(
        _checks(detector, x, objective, middle, steps, seed, batch, rows[len(values) // 2]),
        len(values) / (len(values) + 2),
        1.0,
    )
    checks["monotone"] = {"passed": bool(monotone), "success": rates}
    for row in rows:
        row.pop("delta", None)
    return {"unit": UNITS[norm], "rows": rows, "checks": checks}


def pgd_in_batches(
    detector: Detector,
    x: torch.Tensor,
    objective: Any,
    *,
    budget: Budget,
    steps: int,
    seed: int,
    batch: int,
) -> Work[tuple[torch.Tensor, torch.Tensor]]:
    """PGD with seed 001's constraint over ``x`` in batches: the float δ and the success of
    every image (on the CPU)."""
    from napari_cpadv.attacks.objectives import subset
    from napari_cpadv.attacks.pgd import pgd

    deltas, success = [], []
    for i in range(0, len(x), batch):
        idx = torch.arange(i, min(i + batch, len(x)))
        work = pgd(
            detector,
            x[idx],
            subset(objective, idx),
            budget=budget,
            steps=steps,
            constraint="seed001",
            seed=seed,
        )
        res = yield from within(work, i / len(x), (i + len(idx)) / len(x))
        deltas.append(res.delta)
        success.append(res.success.cpu())
    return torch.cat(deltas), torch.cat(success)


def _attack(
    detector: Detector,
    x: torch.Tensor,
    objective: Any,
    budget: Budget,
    steps: int,
    seed: int,
    batch: int,
) -> Work[dict[str, Any]]:
    """``pgd_in_batches`` scored: success of the float δ and of the image saved in 8 bits,
    the achieved norms, how visible the saved images' changes are (PSNR, SSIM), and δ (for
    the checks; dropped from the report)."""
    from napari_cpadv.attacks.base import quantise, saved_visibility
    from napari_cpadv.attacks.objectives import logits_of
    from napari_cpadv.attacks.projections import norms

    delta, success = yield from pgd_in_batches(
        detector, x, objective, budget=budget, steps=steps, seed=seed, batch=batch
    )
    q = quantise(x, delta)
    saved = objective(logits_of(detector, x, q))[1].cpu()
    rate = float(success.float().mean())
    yield Progress(1, 1, {"success": rate})

    return {
        "success": rate,
        "success_8bit": float(saved.float().mean()),
        "achieved": {k: float(np.mean(v)) for k, v in norms(delta).items()},
        **saved_visibility(x, delta),
        "delta": delta,
    }


def _checks(
    detector: Detector,
    x: torch.Tensor,
    objective: Any,
    budget: Budget,
    steps: int,
    seed: int,
    batch: int,
    row: dict[str, Any],
) -> Work[dict[str, Any]]:
    """Noise of equal L2 norm, one step, twice the steps and the gradient at one budget."""
    from napari_cpadv.attacks.noise import noise_like
    from napari_cpadv.attacks.objectives import logits_of
    from napari_cpadv.experiments.sweep import gradient_norm

    delta = row.pop("delta")
    noise = noise_like(delta, x, seed=seed)
    noise_rate = float(objective(logits_of(detector, x, noise))[1].float().mean())
    one = yield from within(_attack(detector, x, objective, budget, 1, seed, batch), 0, 0.3)
    twice = yield from within(
        _attack(detector, x, objective, budget, 2 * steps, seed, batch), 0.3, 1
    )
    one.pop("delta")
    twice.pop("delta")
    grad = gradient_norm(detector, x, objective)
    rate = row["success"]
    return {
        "budget": budget.value,
        "noise": {"passed": noise_rate <= rate + 0.01, "success": noise_rate, "attack": rate},
        "one_step": {"passed": one["success"] <= rate + 0.01, "success": one["success"]},
        "doubled": {"passed": twice["success"] <= rate + 0.01, "success": twice["success"]},
        "gradient": {"passed": grad > 0, "norm": grad},
    }
