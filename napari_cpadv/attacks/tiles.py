"""Attacks over many tiles at once: the tiles of a slide region, budget sweeps, transfer
matrices and universal perturbations, as ``cpadv attack``, ``sweep``, ``transfer`` and
``universal`` run them.

Every δ that is scored here has first been rounded to 8 bits (``quantise``), as it would be
when the adversarial image is saved, so success, AUC-PR and norms are those of an image a
viewer can show. Cell-level AUC-PR is computed tile by tile on the attacked tiles (each
tile seen alone, as it was attacked) against the cell labels of the annotations.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from napari_cpadv.attacks.engine import AttackResult
from napari_cpadv.attacks.objectives import CellObjective, ClassObjective, Objective
from napari_cpadv.attacks.projections import Budget, norms
from napari_cpadv.attacks.registry import NAMES, REGISTRY
from napari_cpadv.progress import Progress, Work, within

AttackName = Literal["fgsm", "pgd", "universal", "latent", "noise"]
ATTACKS: tuple[str, ...] = NAMES  # the registry's order
# each detector's own white-box attack in the seeds (seed 000 §2.8, seed 001 §2.2)
NATURAL: dict[str, AttackName] = {"dae": "fgsm", "sparse": "latent", "resnet18": "pgd"}


@dataclass(frozen=True)
class AttackSpec:
    """What to run: attack, budget, steps, level, tile side, seed; ``step_size`` (``None``:
    each attack's default; code units for the latent attack), ``restarts`` (PGD, from random
    starts after the first), ``constraint`` (PGD: ``exact`` projections or seed 001's own
    ``seed001`` rules, see :mod:`napari_cpadv.attacks.pgd`) and, for ``universal``, its
    epochs."""

    attack: AttackName
    budget: Budget
    level: int
    steps: int = 100
    tile: int = 512
    seed: int = 0
    epochs: int = 10
    step_size: float | None = None
    restarts: int = 1
    constraint: str = "exact"

    def __post_init__(self) -> None:
        if self.constraint not in ("exact", "seed001"):
            raise ValueError(f"unknown constraint {self.constraint!r}: 'exact' or 'seed001'")
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}; choose one of {', '.join(ATTACKS)}")
        if self.steps < 0 or self.epochs < 1 or self.restarts < 1:
            raise ValueError(
                f"steps {self.steps}, epochs {self.epochs}, restarts {self.restarts}: "
                "steps must be >= 0, epochs and restarts >= 1"
            )
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"a step size must be > 0, got {self.step_size}")
        from napari_cpadv.attacks.budgets import meaning

        unreachable = meaning(self.budget, self.tile).unreachable
        if unreachable:
            raise ValueError(f"budget {self.budget.value:g} ({self.budget.unit}): {unreachable}")

    def doubled(self) -> AttackSpec:
        """The same attack with twice the iterations (the convergence check)."""
        if self.attack == "universal":
            return replace(self, epochs=2 * self.epochs)
        return replace(self, steps=2 * self.steps)


@dataclass(frozen=True)
class Tiles:
    """Tiles of one slide level: ``x`` ``(N, 3, S, S)`` in [0, 1] on the CPU, the level
    ``positions`` (row, col) of their corners, and cell ``labels`` ``(N, S/c, S/c)`` from
    the annotations (``None`` without)."""

    x: torch.Tensor
    positions: list[tuple[int, int]]
    labels: np.ndarray | None
    level: int
    cell: int

    def __len__(self) -> int:
        return len(self.x)


def tile_positions(
    shape: tuple[int, int], downsample: float, region: tuple[int, int, int, int], side: int
) -> list[tuple[int, int]]:
    """Corners of the ``side`` tiles of a level (``shape`` rows, cols) that together cover
    every pixel of the level-0 ``region`` ``(x, y, w, h)``: the tiles of the level's global
    grid that the region touches, a last row or column moved back inside the level where
    the level ends within it. Empty when the region misses the level or the level is
    smaller than one tile."""
    x0, y0, w, h = region
    if w <= 0 or h <= 0 or shape[0] < side or shape[1] < side:
        return []
    r_lo, c_lo = max(0, math.floor(y0 / downsample)), max(0, math.floor(x0 / downsample))
    r_hi = min(shape[0], math.ceil((y0 + h) / downsample))
    c_hi = min(shape[1], math.ceil((x0 + w) / downsample))
    if r_hi <= r_lo or c_hi <= c_lo:
        return []
    rows = dict.fromkeys(min(r, shape[0] - side) for r in range(r_lo // side * side, r_hi, side))
    cols = dict.fromkeys(min(c, shape[1] - side) for c in range(c_lo // side * side, c_hi, side))
    return [(r, c) for r in rows for c in cols]


def tiles_level0(
    positions: Sequence[tuple[int, int]], side: int, downsample: float
) -> list[list[int]]:
    """Each tile at ``positions`` (level ``row, col``) as a level-0 ``[x, y, w, h]``."""
    out = []
    for r, c in positions:
        x0, y0 = math.floor(c * downsample), math.floor(r * downsample)
        x1, y1 = math.ceil((c + side) * downsample), math.ceil((r + side) * downsample)
        out.append([x0, y0, x1 - x0, y1 - y0])
    return out


def no_tile_reason(
    region: tuple[int, int, int, int], shape: tuple[int, int], level: int, side: int
) -> str:
    """Why no tile covers ``region``: it misses the level, or the level is smaller than a tile."""
    if shape[0] < side or shape[1] < side:
        return f"level {level} ({shape[1]} x {shape[0]}) is smaller than one {side}-pixel tile"
    return f"the region (x, y, w, h) {tuple(region)} does not overlap level {level}"


def tile_side(detector: Any, tile: int) -> int:
    """``tile`` rounded down to the detector's multiple.

    Raises
    ------
    ValueError
        When ``tile`` is smaller than one multiple (a 0 or negative tile of old became
        thousands of 4-pixel attacks without a word).
    """
    if tile < detector.multiple:
        raise ValueError(
            f"a tile of {tile} pixels is smaller than {detector.name}'s smallest input "
            f"({detector.multiple} pixels)"
        )
    return tile // detector.multiple * detector.multiple


def read_tiles(
    slide: Any,
    level: int,
    positions: Sequence[tuple[int, int]],
    side: int,
    *,
    annotations: Any = None,
    cell: int = 4,
) -> Tiles:
    """Read the ``side`` tiles at ``positions`` and, with annotations, their cell labels."""
    from napari_cpadv.annotations.raster import cell_grid
    from napari_cpadv.geometry import Grid

    g0, g = slide.geometry[0], slide.geometry[level]
    grid = Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols))
    images = np.stack([slide.read_region(level, r, c, side, side) for r, c in positions])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    labels = None
    if annotations is not None:
        labels = np.stack(
            [
                cell_grid(annotations, grid.window(r, c, side, side), cell=cell)[1]
                for r, c in positions
            ]
        )
    return Tiles(x, list(positions), labels, level, cell)


def region_tiles(
    slide: Any,
    level: int,
    region: tuple[int, int, int, int],
    side: int,
    *,
    annotations: Any = None,
    cell: int = 4,
) -> Tiles:
    """All whole ``side`` tiles of the level-0 ``region`` ``(x, y, w, h)``, in memory."""
    g = slide.geometry[level]
    positions = tile_positions((g.rows, g.cols), slide.downsamples[level], region, side)
    if not positions:
        raise ValueError(no_tile_reason(region, (g.rows, g.cols), level, side))
    return read_tiles(slide, level, positions, side, annotations=annotations, cell=cell)


CELL_KEEP = 0.5
"""Cell success: fewer than this share of the tumour cells found clean still found."""


def objective_for(
    detector: Any, x: torch.Tensor, labels: np.ndarray | None = None, *, keep: float = CELL_KEEP
) -> Objective:
    """Untargeted objective of ``detector`` on ``x``: against the cell ``labels`` when given,
    else against the clean prediction (cells: ``logits > 0``; classes: the argmax). A cell
    objective also keeps the clean prediction, for the success it reports
    (:meth:`CellObjective.reported_success`, with ``keep``)."""
    if not 0 < keep <= 1:
        raise ValueError(f"the cell success share must lie in (0, 1], got {keep}")
    clean = logits_of(detector, x, torch.zeros_like(x))
    if detector.output == "classes":
        return ClassObjective(clean.argmax(1))
    found = (clean > 0).float()
    if labels is not None:
        reference = torch.from_numpy(np.asarray(labels)).float().to(x.device)
        return CellObjective(reference, clean=found, keep=keep)
    return CellObjective(found, clean=found, keep=keep)


def _subset(objective: Objective, idx: torch.Tensor) -> Objective:
    if isinstance(objective, CellObjective):
        clean = objective.clean
        return replace(
            objective,
            reference=objective.reference[idx.to(objective.reference.device)],
            clean=None if clean is None else clean[idx.to(clean.device)],
        )
    if isinstance(objective, ClassObjective):
        return replace(objective, labels=objective.labels[idx.to(objective.labels.device)])
    raise TypeError(f"cannot take a subset of {type(objective).__name__}")


def _universal(
    detector: Any, x: torch.Tensor, objective: Objective, spec: AttackSpec, batch: int
) -> Work[Any]:
    """``attacks.universal.universal`` with ``spec``'s budget, epochs, step size and seed."""
    from napari_cpadv.attacks.universal import universal

    return (
        yield from universal(
            detector,
            x,
            lambda idx: _subset(objective, idx),
            budget=spec.budget,
            epochs=spec.epochs,
            batch=batch,
            step_size=spec.step_size,
            seed=spec.seed,
        )
    )


def quantise(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """δ after ``x + δ`` is rounded to 8 bits (what a saved adversarial image holds)."""
    return (x + delta).clamp(0, 1).mul(255).round().div(255) - x


def craft(
    detector: Any,
    x: torch.Tensor,
    objective: Objective,
    spec: AttackSpec,
    *,
    batch: int = 4,
) -> Work[Scored]:
    """Run ``spec``'s attack on ``x`` (on ``x``'s device) in batches; δ rounded to 8 bits.

    ``universal`` learns one δ on all of ``x`` and adds it to every image; ``noise`` is
    Gaussian noise at the L2 budget (the control).
    """
    from napari_cpadv.attacks.fgsm import fgsm
    from napari_cpadv.attacks.latent import latent_attack
    from napari_cpadv.attacks.noise import noise_like
    from napari_cpadv.attacks.pgd import pgd
    from napari_cpadv.attacks.projections import rescale_l2_clipped

    n = len(x)
    name = getattr(detector, "name", None)
    if spec.attack == "latent" and name != "sparse":
        raise ValueError("the latent attack needs the sparse-coding detector")
    if getattr(detector, "gradient_free", False) and REGISTRY[spec.attack].gradient:
        raise ValueError(
            "the sparse coder's encoding is an iterative solver with no gradient to the image "
            "(seed 000 §2.8.1): attack it with the latent attack"
        )
    if spec.attack == "noise" and spec.budget.norm != "l2":
        raise ValueError("the noise control is scaled to an L2 budget")
    if spec.attack == "universal":
        res = yield from _universal(detector, x, objective, spec, batch)
        delta = res.delta.expand_as(x)
        steps = spec.epochs * -(-n // batch)
    else:
        parts = []
        for i in range(0, n, batch):
            idx = torch.arange(i, min(i + batch, n))
            xi, obj = x[idx], _subset(objective, idx)
            extra: dict[str, Any] = {} if spec.step_size is None else {"step_size": spec.step_size}
            share = (i / n, min(i + batch, n) / n)  # one monotone bar over all batches
            if spec.attack == "fgsm":
                part = fgsm(
                    detector, xi, obj, steps=spec.steps, budget=spec.budget, seed=spec.seed, **extra
                )
            elif spec.attack == "pgd":
                part = pgd(
                    detector,
                    xi,
                    obj,
                    budget=spec.budget,
                    steps=spec.steps,
                    seed=spec.seed,
                    restarts=spec.restarts,
                    random_start=spec.restarts > 1,
                    constraint=spec.constraint,  # type: ignore[arg-type]
                    **extra,
                )
            elif spec.attack == "latent":
                part = latent_attack(
                    detector, xi, obj, steps=spec.steps, budget=spec.budget, seed=spec.seed, **extra
                )
            else:
                z = noise_like(torch.ones_like(xi), xi, seed=spec.seed + i)  # a direction
                parts.append(rescale_l2_clipped(z, xi, spec.budget.total(tuple(xi.shape[1:]))))
                continue
            r = yield from within(part, *share)
            parts.append(r.delta)
            yield Progress(min(i + batch, n), n, {"tiles": min(i + batch, n)})
        delta = torch.cat(parts)
        steps = 0 if spec.attack == "noise" else spec.steps
    return score(detector, x, quantise(x, delta), objective, spec.seed, steps, unrounded=delta)


@torch.no_grad()
def logits_of(detector: Any, x: torch.Tensor, delta: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """The detector's logits on ``clip(x + δ)``, in batches."""
    return torch.cat(
        [
            detector((x[i : i + batch] + delta[i : i + batch]).clamp(0, 1))
            for i in range(0, len(x), batch)
        ]
    )


@dataclass(frozen=True)
class Scored(AttackResult):
    """An ``AttackResult`` that keeps the detector's ``logits`` on ``x + δ``, so that what
    is scored next (AUC-PR) needs no second pass of the detector. ``norms_float`` and
    ``success_float`` are those of the float δ before 8-bit rounding (the papers'
    setting), when the attack made one."""

    logits: torch.Tensor
    norms_float: dict[str, list[float]] | None = None
    success_float: torch.Tensor | None = None


def reported_success(objective: Objective, logits: torch.Tensor) -> torch.Tensor:
    """The success a report gives: a cell objective's pathologist-level rule, else the
    objective's own."""
    if isinstance(objective, CellObjective):
        return objective.reported_success(logits)
    return objective(logits)[1]


def score(
    detector: Any,
    x: torch.Tensor,
    delta: torch.Tensor,
    objective: Objective,
    seed: int = 0,
    steps: int = 0,
    *,
    unrounded: torch.Tensor | None = None,
) -> Scored:
    """Loss and success of ``x + δ`` under ``objective``, δ's norms and the logits; with
    ``unrounded`` (δ before rounding to 8 bits) its norms and success too."""
    logits = logits_of(detector, x, delta)
    loss, _ = objective(logits)
    success = reported_success(objective, logits)
    extra: dict[str, Any] = {}
    if unrounded is not None:
        extra = {
            "norms_float": norms(unrounded),
            "success_float": reported_success(objective, logits_of(detector, x, unrounded)),
        }
    return Scored(delta, success, loss, norms(delta), steps, seed, logits=logits, **extra)


def rounding_warnings(scored: Scored, budget: Any, tol: float = 0.1) -> list[str]:
    """A warning when rounding to 8 bits moved the budget's achieved norm by more than
    ``tol`` (seed 001's L∞ = 0.5/255 rounds to 0 or to a whole grey level)."""
    if scored.norms_float is None:
        return []
    key = budget.norm_key()
    after = np.asarray(scored.norms[key], float)
    before = np.asarray(scored.norms_float[key], float)
    moved = np.abs(after - before) / np.maximum(np.abs(before), 1e-12)
    if not len(moved) or float(moved.max()) <= tol:
        return []
    return [
        f"rounding to 8 bits changed the achieved {key} by up to {100 * float(moved.max()):.0f} "
        f"% (float δ mean {before.mean():.4g}, saved image mean {after.mean():.4g}): results "
        "on the saved image are not the papers' float setting"
    ]


def _aucpr(logits: torch.Tensor, labels: np.ndarray) -> float:
    from napari_cpadv.metrics.scores import aucpr

    return aucpr(np.asarray(labels), logits.float().cpu().numpy()).aucpr


def cell_aucpr(detector: Any, x: torch.Tensor, labels: np.ndarray) -> float:
    """Cell-level AUC-PR of a cell detector on ``x`` ``(N, 3, S, S)`` against ``labels``."""
    return _aucpr(logits_of(detector, x, torch.zeros_like(x)), labels)


def _damage(clean: float | None, after: float | None, success: float) -> float:
    """AUC-PR drop when there is ground truth, else the success rate."""
    return clean - after if clean is not None and after is not None else success


def _scorable(labels: np.ndarray | None, warnings: list[str]) -> np.ndarray | None:
    """``labels`` when AUC-PR can be computed on them (some tumour cells), else ``None``
    with a warning saying why it is missing."""
    if labels is not None and not labels.any():
        warnings.append("no tumour cell in these tiles: AUC-PR is undefined and not reported")
        return None
    return labels


def _condition(
    detector: Any,
    x: torch.Tensor,
    delta: torch.Tensor,
    objective: Objective,
    labels: np.ndarray | None,
    clean: float | None,
    logits: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Success, AUC-PR (with labels) and damage of one δ, from one pass of the detector
    (none when its ``logits`` on ``x + δ`` are given)."""
    if logits is None:
        logits = logits_of(detector, x, delta)
    rate = float(reported_success(objective, logits).float().mean())
    out: dict[str, Any] = {"success_rate": rate}
    if labels is not None:
        out["aucpr"] = _aucpr(logits, labels)
    out["damage"] = _damage(clean, out.get("aucpr"), rate)
    return out


def sweep(
    detector: Any,
    tiles: Tiles,
    spec: AttackSpec,
    values: Sequence[float],
    *,
    device: Any = "cpu",
    batch: int = 4,
    noise: bool = True,
    check: bool = False,
) -> Work[dict[str, Any]]:
    """Run ``spec`` at every budget value in ``values`` on ``tiles``, smallest first.

    Returns a JSON-ready report: the success matrix (budgets x tiles, seed 001 Fig. 4),
    success rates, achieved norms, the detector's cell AUC-PR clean and at each budget
    (with ground truth), the same for Gaussian noise of each budget's achieved L2 norm
    (``noise``), and warnings when a sanity rule fails. ``check`` adds the convergence
    check (twice the iterations at the largest budget), one step at the largest budget
    (iterative attacks) and the gradient at the clean tiles.
    """
    from napari_cpadv.attacks.evaluate import sanity, success_vs_budget
    from napari_cpadv.attacks.noise import noise_like

    if not values or any(v < 0 for v in values):
        raise ValueError(f"budgets must be a non-empty list of values >= 0, not {list(values)}")
    started = time.perf_counter()
    budgets = [replace(spec.budget, value=v) for v in sorted(float(v) for v in values)]
    detector.to(device).eval()
    x = tiles.x.to(device)
    labels = tiles.labels if detector.output == "cells" else None
    objective = objective_for(detector, x, labels)
    results: dict[float, Scored] = {}

    def run(b: Budget) -> Work[AttackResult]:
        res = yield from craft(detector, x, objective, replace(spec, budget=b), batch=batch)
        results[b.value] = res
        return res

    table = yield from success_vs_budget(run, budgets)
    warnings = list(table.warnings)
    labels = _scorable(labels, warnings)
    clean = cell_aucpr(detector, x, labels) if labels is not None else None
    rows: list[dict[str, Any]] = []
    for b in budgets:
        res = results[b.value]
        row: dict[str, Any] = {"budget": b.value, "norms": res.norms}
        row.update(_condition(detector, x, res.delta, objective, labels, clean, res.logits))
        if res.norms_float is not None and res.success_float is not None:
            row["float"] = {  # the papers' setting, before rounding to 8 bits
                "norms": res.norms_float,
                "success_rate": float(res.success_float.float().mean()),
            }
        warnings += [f"budget {b.value:g}: {w}" for w in rounding_warnings(res, b)]
        if noise:
            n = quantise(x, noise_like(res.delta, x, seed=spec.seed))
            row["noise"] = _condition(detector, x, n, objective, labels, clean)
            row["noise"]["l2_total"] = norms(n)["l2_total"]
            warnings += [
                f"budget {b.value:g}: {w}"
                for w in sanity(attack_damage=row["damage"], noise_damage=row["noise"]["damage"])
            ]
        rows.append(row)
    if labels is not None and any(
        later["aucpr"] > earlier["aucpr"] + 0.01 for earlier, later in itertools.pairwise(rows)
    ):
        warnings.append(
            "AUC-PR under attack is not monotone in the budget: "
            + ", ".join(f"{r['budget']:g}: {r['aucpr']:.3f}" for r in rows)
        )
    checks: dict[str, Any] = {}
    if check:
        top = replace(spec, budget=budgets[-1])
        checks = yield from convergence_checks(
            detector, x, objective, top, rows[-1]["damage"], labels, clean, batch=batch
        )
        warnings += checks["warnings"]
    return {
        "detector": detector.name,
        "attack": spec.attack,
        "norm": spec.budget.norm,
        "unit": spec.budget.unit,
        "budgets": [b.value for b in budgets],
        "level": tiles.level,
        "tiles": [list(p) for p in tiles.positions],
        "steps": spec.epochs if spec.attack == "universal" else spec.steps,
        "seed": spec.seed,
        "device": str(device),
        "success": table.success.astype(int).tolist(),
        "success_rates": table.rates(),
        **_success_rule(objective),
        "clean_aucpr": clean,
        "rows": rows,
        "checks": checks,
        "warnings": warnings,
        "seconds": time.perf_counter() - started,
    }


def _success_rule(objective: Objective) -> dict[str, str]:
    if not isinstance(objective, CellObjective):
        return {}
    return {
        "success_rule": f"cells: fewer than {objective.keep:.0%} of the tumour cells found "
        "clean still found, or a normal tile's call flipping to tumour"
    }


def gradient_norm(detector: Any, x: torch.Tensor, objective: Objective) -> float:
    """Mean per-tile L2 norm of the objective's gradient at ``x`` (zero: nothing moves)."""
    from napari_cpadv.attacks.engine import eval_mode

    with eval_mode(detector):
        d = torch.zeros_like(x, requires_grad=True)
        loss, _ = objective(detector(x + d))
        (grad,) = torch.autograd.grad(loss.sum(), d)
    return float(grad.flatten(1).norm(dim=1).mean())


def convergence_checks(
    detector: Any,
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
    doubled = yield from craft(detector, x, objective, spec.doubled(), batch=batch)
    out["doubled"] = {
        "steps": spec.doubled().epochs if spec.attack == "universal" else spec.doubled().steps,
        **_condition(detector, x, doubled.delta, objective, labels, clean),
    }
    one = None
    if spec.attack in ("fgsm", "pgd") and spec.steps > 1:
        single = yield from craft(detector, x, objective, replace(spec, steps=1), batch=batch)
        out["one_step"] = _condition(detector, x, single.delta, objective, labels, clean)
        one = out["one_step"]["damage"]
    if spec.attack != "latent":  # the latent attack moves codes, not pixels
        out["gradient_norm"] = gradient_norm(detector, x, objective)
    out["warnings"] = sanity(
        attack_damage=damage,
        one_step_damage=one,
        gradient_norm=out.get("gradient_norm"),
        doubled_damage=out["doubled"]["damage"],
    )
    return out


def transfer(
    detectors: dict[str, Any],
    tiles: Tiles,
    specs: dict[str, AttackSpec],
    *,
    device: Any = "cpu",
    batch: int = 4,
) -> Work[dict[str, Any]]:
    """Craft ``specs[source]`` on each source detector and score every detector on each δ
    (seed 000 Fig. 10: FGSM crafted on the DAE, the latent attack on the sparse coder).

    Rows are conditions (``clean``, ``noise`` of each source's achieved L2 norm, and the
    attack crafted on each source); columns are the scored detectors (cell detectors of
    one cell size). ``aucpr[row][col]`` with ground truth, ``success[row][col]`` always
    (against each detector's own objective). Warnings name a transfer that hurts a
    detector more than the white-box attack on it, and noise that beats an attack.
    """
    from napari_cpadv.attacks.evaluate import sanity
    from napari_cpadv.attacks.noise import noise_like

    if any(d.output != "cells" for d in detectors.values()):
        raise ValueError(
            "transfer is scored on cell heatmaps of one level; "
            + ", ".join(n for n, d in detectors.items() if d.output != "cells")
            + " works on level-0 patches"
        )
    if len({d.cell for d in detectors.values()}) > 1:
        raise ValueError("the detectors' cells differ in size; score them on separate runs")
    sources = list(specs)
    unknown = [s for s in sources if s not in detectors]
    if unknown:
        raise ValueError(f"sources {unknown} are not among the scored detectors {list(detectors)}")
    started = time.perf_counter()
    x = tiles.x.to(device)
    for d in detectors.values():
        d.to(device).eval()
    objectives = {n: objective_for(d, x, tiles.labels) for n, d in detectors.items()}
    warnings: list[str] = []
    labels = _scorable(tiles.labels, warnings)
    deltas: dict[str, torch.Tensor] = {"clean": torch.zeros_like(x)}
    crafted: dict[str, Scored] = {}
    for k, name in enumerate(sources):
        spec = specs[name]
        share = (k / len(sources), (k + 1) / len(sources))
        res = yield from within(
            craft(detectors[name], x, objectives[name], spec, batch=batch), *share, source=name
        )
        crafted[name] = res
        deltas[f"noise ({name})"] = quantise(x, noise_like(res.delta, x, seed=spec.seed))
    for name in sources:
        deltas[name] = crafted[name].delta
    known: dict[
        tuple[str, str], torch.Tensor
    ] = {  # logits already computed: clean tiles, and each source on its own δ
        ("clean", n): logits_of(d, x, deltas["clean"]) for n, d in detectors.items()
    }
    known.update({(n, n): crafted[n].logits for n in sources})
    clean = (
        {n: _aucpr(known["clean", n], labels) for n in detectors}
        if labels is not None
        else dict.fromkeys(detectors)
    )
    table = {
        row: {
            n: _condition(d, x, delta, objectives[n], labels, clean[n], known.get((row, n)))
            for n, d in detectors.items()
        }
        for row, delta in deltas.items()
    }
    for target in detectors:
        for source in sources:
            cell = table[source][target]
            noise_cell = table[f"noise ({source})"][target]
            if source == target:
                warnings += [
                    f"{source}: {w}"
                    for w in sanity(attack_damage=cell["damage"], noise_damage=noise_cell["damage"])
                ]
            elif target in sources and cell["damage"] > table[target][target]["damage"] + 0.01:
                warnings.append(
                    f"the attack crafted on {source} hurts {target} more ({cell['damage']:.3f}) "
                    f"than the white-box attack on {target} ({table[target][target]['damage']:.3f})"
                )
    return {
        "detectors": list(detectors),
        "sources": sources,
        "attacks": {
            name: {
                "attack": sp.attack,
                "budget": {
                    "norm": sp.budget.norm,
                    "value": sp.budget.value,
                    "unit": sp.budget.unit,
                },
                "steps": sp.steps,
                "seed": sp.seed,
            }
            for name, sp in specs.items()
        },
        "level": tiles.level,
        "tiles": [list(p) for p in tiles.positions],
        "device": str(device),
        "norms": {name: crafted[name].norms for name in sources},
        "aucpr": (
            {r: {n: c["aucpr"] for n, c in cols.items()} for r, cols in table.items()}
            if labels is not None
            else None
        ),
        "success": {
            r: {n: c["success_rate"] for n, c in cols.items()} for r, cols in table.items()
        },
        "warnings": warnings,
        "seconds": time.perf_counter() - started,
    }


def tile_set_inputs(
    detector: Any, tiles: Any, *, positives: bool = False
) -> tuple[torch.Tensor, np.ndarray | None, torch.Tensor]:
    """Images, cell labels (cell detectors) and targets of a ``models.train.TileSet``.

    A classifier is attacked against each patch's true label (seed 001's nucleus rule);
    a cell detector against the tile's cell mask. ``positives`` keeps only tumour patches
    (a classifier) or tiles with tumour cells (a cell detector).
    """
    from napari_cpadv.device import to_tensor

    if detector.output == "classes":
        kept, y = tiles.patch_labels()
        keep = y == 1 if positives else np.ones(len(y), bool)
        x = to_tensor(kept.images[keep])
        return x, None, torch.from_numpy(y[keep])
    keep = tiles.tumour_cells > 0 if positives else np.ones(len(tiles), bool)
    masks = tiles.masks[keep].astype(np.uint8)
    return to_tensor(tiles.images[keep]), masks, torch.from_numpy(masks).float()


def _target_objective(detector: Any, target: torch.Tensor) -> Objective:
    if detector.output == "classes":
        return ClassObjective(target)
    return CellObjective(target)


def universal_study(
    detector: Any,
    train: Any,
    held_out: Any,
    spec: AttackSpec,
    *,
    positives: bool = True,
    device: Any = "cpu",
    batch: int = 16,
) -> Work[tuple[torch.Tensor, dict[str, Any]]]:
    """Learn one δ on the ``train`` tiles and score it on the ``held_out`` tiles (two
    ``models.train.TileSet``), against Gaussian noise of the same L2 norm.

    Success is counted on every scored image and, apart, on those the detector gets right
    when clean (a perturbation cannot take credit for the detector's own mistakes).
    Returns δ ``(1, 3, S, S)`` and the report.
    """
    from napari_cpadv.attacks.noise import noise_like

    if spec.attack != "universal":
        raise ValueError(f"a universal study runs the universal attack, not {spec.attack}")
    started = time.perf_counter()
    detector.to(device).eval()
    x, _, target = tile_set_inputs(detector, train, positives=positives)
    xh, labels_h, target_h = tile_set_inputs(detector, held_out, positives=positives)
    if len(x) == 0 or len(xh) == 0:
        raise ValueError(
            f"{len(x)} training and {len(xh)} held-out images"
            + (" with tumour" if positives else "")
            + ": both sets need some"
        )
    if x.shape[1:] != xh.shape[1:]:
        raise ValueError(f"training tiles are {tuple(x.shape[2:])}, held-out {tuple(xh.shape[2:])}")
    x, xh = x.to(device), xh.to(device)
    obj, obj_h = _target_objective(detector, target), _target_objective(detector, target_h)
    res = yield from _universal(detector, x, obj, spec, batch)
    delta = res.delta
    trained = score(detector, x, quantise(x, delta.expand_as(x)), obj)
    dh = quantise(xh, delta.expand_as(xh))
    clean_h = score(detector, xh, torch.zeros_like(xh), obj_h)
    attacked = score(detector, xh, dh, obj_h)
    noise = score(detector, xh, quantise(xh, noise_like(dh, xh, seed=spec.seed)), obj_h)
    right = ~clean_h.success

    def rate(s: torch.Tensor, among: torch.Tensor | None = None) -> float:
        s = s if among is None else s[among]
        return float(s.float().mean()) if len(s) else float("nan")

    report: dict[str, Any] = {
        "detector": detector.name,
        "attack": "universal",
        "budget": {"norm": spec.budget.norm, "value": spec.budget.value, "unit": spec.budget.unit},
        "epochs": spec.epochs,
        "batch": batch,
        "seed": spec.seed,
        "device": str(device),
        "positives_only": positives,
        "norms": norms(delta),
        "losses": res.losses,
        "train": {
            "images": len(x),
            "success_rate": trained.success_rate,
            "clean_error": rate(score(detector, x, torch.zeros_like(x), obj).success),
        },
        "held_out": {
            "images": len(xh),
            "clean_error": rate(clean_h.success),
            "success_rate": attacked.success_rate,
            "success_rate_among_right": rate(attacked.success, right),
            "noise_success_rate": noise.success_rate,
            "noise_success_rate_among_right": rate(noise.success, right),
        },
        "seconds": time.perf_counter() - started,
    }
    if labels_h is not None and labels_h.any():
        report["held_out"]["aucpr"] = {
            "clean": _aucpr(clean_h.logits, labels_h),
            "universal": _aucpr(attacked.logits, labels_h),
        }
    return delta, report
