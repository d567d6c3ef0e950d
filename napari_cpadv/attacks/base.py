"""What every attack is: the ``Attack`` protocol, the ``AttackSpec`` that parameterises a
run, and ``Scored``, the one result every attack returns.

An attack lives in one module of this package that defines a class following ``Attack``
and an instance of it named ``ATTACK``; :mod:`napari_cpadv.attacks.registry` finds it
there, and the command line, the Attack dock and the docs list it from the registry.
Attacks know a detector only by the ``Detector`` protocol's attributes (``output``,
``gradient_free``, ``latent``), never by its name.

Every δ an attack returns has been scored after rounding to 8 bits (``quantise``), as it
is when the adversarial image is saved; ``Scored`` also keeps the float δ's norms and
success (the papers' setting).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch

from napari_cpadv.attacks.engine import AttackResult
from napari_cpadv.attacks.objectives import Objective, logits_of, reported_success, subset
from napari_cpadv.attacks.projections import Budget, norms
from napari_cpadv.progress import SCALE, Progress, Work, within

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector


@dataclass(frozen=True)
class AttackSpec:
    """What to run: attack, budget, steps, level, tile side, seed; ``step_size`` (``None``:
    each attack's default; code units for the latent attack), ``restarts`` (PGD, from random
    starts after the first), ``constraint`` (PGD: ``exact`` projections or seed 001's own
    ``seed001`` rules, see :mod:`napari_cpadv.attacks.pgd`) and, for ``universal``, its
    epochs."""

    attack: str
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
        from napari_cpadv.attacks.budgets import meaning
        from napari_cpadv.attacks.registry import registry

        if self.constraint not in ("exact", "seed001"):
            raise ValueError(f"unknown constraint {self.constraint!r}: 'exact' or 'seed001'")
        if self.attack not in registry():
            raise ValueError(
                f"unknown attack {self.attack!r}; choose one of {', '.join(registry())}"
            )
        if self.steps < 0 or self.epochs < 1 or self.restarts < 1:
            raise ValueError(
                f"steps {self.steps}, epochs {self.epochs}, restarts {self.restarts}: "
                "steps must be >= 0, epochs and restarts >= 1"
            )
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"a step size must be > 0, got {self.step_size}")
        unreachable = meaning(self.budget, self.tile).unreachable
        if unreachable:
            raise ValueError(f"budget {self.budget.value:g} ({self.budget.unit}): {unreachable}")

    @property
    def runner(self) -> Attack:
        """The registered attack that runs this spec."""
        from napari_cpadv.attacks.registry import registry

        return registry()[self.attack]

    @property
    def iterations(self) -> int:
        """The iterations the attack runs (steps, or epochs of a universal δ; 0 for noise)."""
        return self.runner.iterations(self)

    def doubled(self) -> AttackSpec:
        """The same attack with twice the iterations (the convergence check)."""
        return self.runner.doubled(self)

    def loop(self, default_step: float) -> dict[str, Any]:
        """The options of an iterative attack's loop: steps, step size (``default_step``
        unless the spec gives one), budget and seed."""
        size = default_step if self.step_size is None else self.step_size
        return {"steps": self.steps, "step_size": size, "budget": self.budget, "seed": self.seed}


@dataclass(frozen=True)
class Scored(AttackResult):
    """An ``AttackResult`` that keeps the detector's ``logits`` on ``x + δ``, so that what
    is scored next (AUC-PR) needs no second pass of the detector. ``norms_float`` and
    ``success_float`` are those of the float δ before 8-bit rounding (the papers'
    setting), when the attack made one."""

    logits: torch.Tensor
    norms_float: dict[str, list[float]] | None = None
    success_float: torch.Tensor | None = None


def quantise(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """δ after ``x + δ`` is rounded to 8 bits (what a saved adversarial image holds)."""
    return (x + delta).clamp(0, 1).mul(255).round().div(255) - x


def saved_visibility(x: torch.Tensor, delta: torch.Tensor) -> dict[str, float | None]:
    """How visible δ is in the saved adversarial images: PSNR and SSIM
    (``metrics.image.visibility``) between the 8-bit originals and ``x + δ`` rounded to 8
    bits, for a batch ``x`` ``(N, 3, H, W)`` in [0, 1]."""
    from napari_cpadv.metrics.image import visibility

    def eight_bit(t: torch.Tensor) -> np.ndarray:
        return t.mul(255).round().permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8)

    x = x.cpu()
    return visibility(eight_bit(x), eight_bit(x + quantise(x, delta.cpu())))


def score(
    detector: Detector,
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


def rounding_warnings(scored: Scored, budget: Budget, tol: float = 0.1) -> list[str]:
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


class Attack(Protocol):
    """One attack: its description, what it accepts, and ``craft``.

    Attributes
    ----------
    name, summary
        The registry key, and a line for help texts and tooltips (with its seed).
    per_tile
        Each tile gets its own δ (``universal`` learns one δ for all).
    gradient
        It needs the detector's gradient to the image (a ``gradient_free`` detector, the
        sparse coder, has none).
    norms
        The budget norms it accepts.
    single_step_check
        "One step against many" is a meaningful sanity check (iterative pixel attacks).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    per_tile: ClassVar[bool]
    gradient: ClassVar[bool]
    norms: ClassVar[tuple[str, ...]]
    single_step_check: ClassVar[bool]

    def check(self, detector: Detector, spec: AttackSpec) -> None:
        """Raise ``ValueError`` when ``spec`` cannot run on ``detector``."""
        ...

    def iterations(self, spec: AttackSpec) -> int: ...

    def doubled(self, spec: AttackSpec) -> AttackSpec: ...

    def craft(
        self,
        detector: Detector,
        x: torch.Tensor,
        objective: Objective,
        spec: AttackSpec,
        *,
        batch: int,
    ) -> Work[Scored]:
        """Attack ``x`` ``(N, 3, S, S)`` in [0, 1] on its device, in batches of ``batch``,
        never mutating it; yield ``Progress`` at least once per step; return δ rounded to
        8 bits and scored (``Scored``)."""
        ...


@dataclass(frozen=True)
class Batch:
    """One batch of tiles a per-tile attack works on: the detector, the tiles ``x``, their
    objective, the spec, and ``first``, the batch's first index in the whole set."""

    detector: Detector
    x: torch.Tensor
    objective: Objective
    spec: AttackSpec
    first: int


class TileAttack:
    """The common part of the attacks that give each tile its own δ: the checks, and
    ``craft`` running ``attack_batch`` over batches under one monotone progress bar."""

    name: ClassVar[str]
    summary: ClassVar[str]
    per_tile: ClassVar[bool] = True
    gradient: ClassVar[bool] = True
    norms: ClassVar[tuple[str, ...]] = ("l0", "l1", "l2", "linf", "none")
    single_step_check: ClassVar[bool] = False
    needs_latent: ClassVar[bool] = False

    def check(self, detector: Detector, spec: AttackSpec) -> None:
        if self.needs_latent and not getattr(detector, "latent", False):
            raise ValueError(
                f"the {self.name} attack needs a detector with a sparse code "
                f"({getattr(detector, 'name', 'this detector')} has none)"
            )
        if self.gradient and getattr(detector, "gradient_free", False):
            raise ValueError(
                f"{getattr(detector, 'name', 'this detector')}'s encoding is an iterative "
                "solver with no gradient to the image (seed 000 §2.8.1): attack it with the "
                "latent attack"
            )
        if spec.budget.norm not in self.norms:
            raise ValueError(
                f"the {self.name} attack takes a budget in {' or '.join(self.norms)}, "
                f"not {spec.budget.norm}"
            )

    def iterations(self, spec: AttackSpec) -> int:
        return spec.steps

    def doubled(self, spec: AttackSpec) -> AttackSpec:
        return replace(spec, steps=2 * spec.steps)

    def attack_batch(self, job: Batch) -> Work[torch.Tensor]:
        """The float δ of one batch of tiles."""
        raise NotImplementedError

    def craft(
        self,
        detector: Detector,
        x: torch.Tensor,
        objective: Objective,
        spec: AttackSpec,
        *,
        batch: int = 4,
    ) -> Work[Scored]:
        self.check(detector, spec)
        if batch < 1:
            raise ValueError(f"a batch must hold at least one tile, got {batch}")
        n, parts = len(x), []
        for i in range(0, n, batch):
            idx = torch.arange(i, min(i + batch, n))
            part = self.attack_batch(Batch(detector, x[idx], subset(objective, idx), spec, i))
            parts.append((yield from within(part, i / n, min(i + batch, n) / n)))
            done = min(i + batch, n)  # on within's scale, so that the bar never steps back
            yield Progress(round(SCALE * done / n), SCALE, {"tiles": done})
        delta = torch.cat(parts)
        steps = self.iterations(spec)
        return score(detector, x, quantise(x, delta), objective, spec.seed, steps, unrounded=delta)
