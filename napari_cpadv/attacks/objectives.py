"""What an attack maximises, on dense cell logits or on class logits (never on sigmoid or
softmax outputs). Each objective maps logits to ``(loss, success)`` per example: ``loss``
``(N,)`` to be maximised, ``success`` ``(N,)`` bool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from napari_cpadv.models.detector import Detector

Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class CellObjective:
    """Seed 000's goal on cell heatmaps ``(N, h, w)`` of logits.

    Untargeted (``targeted=False``): push tumour cells of ``reference`` down and normal
    cells up (maximise the binary cross-entropy against it); ``reference`` is the
    ground-truth cell mask, or the clean prediction ``logits > 0`` when there is none.
    Targeted: pull every cell towards ``reference`` (maximise minus the cross-entropy).
    ``success`` is reached when at least ``flip`` of the cells disagree with the reference
    (untargeted) or agree with it (targeted).
    """

    reference: torch.Tensor
    targeted: bool = False
    flip: float = 0.5
    clean: torch.Tensor | None = None
    keep: float = 0.5

    def __call__(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ref = self.reference.to(logits)
        bce = F.binary_cross_entropy_with_logits(logits, ref, reduction="none").flatten(1).mean(1)
        agree = ((logits > 0) == (ref > 0.5)).flatten(1).float().mean(1)
        if self.targeted:
            return -bce, agree >= self.flip
        return bce, (1 - agree) >= self.flip

    def reported_success(self, logits: torch.Tensor) -> torch.Tensor:
        """Success as a pathologist would act on it, per tile ``(N,)`` bool.

        On a tile where the detector found tumour cells clean (``clean``), success is
        fewer than ``keep`` of them (0.5: half) still called tumour; on a tile it called
        normal, success is the tile's call flipping to tumour (at least 1 % of its cells,
        at least one). The half-of-all-cells-flipped rule of the optimisation (``flip``)
        almost never holds on real tiles, so it reports 0 at every budget; this one moves
        with the damage.
        """
        if self.targeted or self.clean is None:
            return self(logits)[1]
        clean = self.clean.to(logits.device).bool().flatten(1)
        adv = (logits > 0).flatten(1)
        found = clean.sum(1)
        kept = (adv & clean).sum(1)
        called = adv.sum(1) >= torch.clamp(torch.ceil(0.01 * adv.shape[1] * torch.ones_like(
            found, dtype=torch.float32)), min=1).long()  # fmt: skip
        return torch.where(found > 0, kept.float() < self.keep * found.float(), called)


@dataclass(frozen=True)
class ClassObjective:
    """Seed 001's goal on class logits ``(N, K)``.

    ``loss="ce"`` maximises the cross-entropy of the true ``labels`` (untargeted) or
    minimises that of ``target`` (targeted); ``loss="margin"`` maximises the best other
    logit minus the true one (or the target's logit minus the best other). ``success``
    needs the wrong class (or the target) ahead by at least ``confidence`` in logits.
    """

    labels: torch.Tensor
    targeted: bool = False
    loss: str = "ce"
    confidence: float = 0.0

    def __call__(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.labels.to(logits.device).long()
        own = logits.gather(1, y[:, None])[:, 0]
        others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
        margin = own - others if self.targeted else others - own
        if self.loss == "margin":
            value = margin
        elif self.loss == "ce":
            ce = F.cross_entropy(logits, y, reduction="none")
            value = -ce if self.targeted else ce
        else:
            raise ValueError(f"unknown loss {self.loss!r}: 'ce' or 'margin'")
        return value, margin > self.confidence


CELL_KEEP = 0.5
"""Cell success: fewer than this share of the tumour cells found clean still found."""


@torch.no_grad()
def logits_of(
    detector: Detector, x: torch.Tensor, delta: torch.Tensor, batch: int = 8
) -> torch.Tensor:
    """The detector's logits on ``clip(x + δ)``, in batches."""
    return torch.cat(
        [
            detector((x[i : i + batch] + delta[i : i + batch]).clamp(0, 1))
            for i in range(0, len(x), batch)
        ]
    )


def objective_for(
    detector: Detector,
    x: torch.Tensor,
    labels: np.ndarray | None = None,
    *,
    keep: float = CELL_KEEP,
    clean: torch.Tensor | None = None,
) -> Objective:
    """Untargeted objective of ``detector`` on ``x``: against the cell ``labels`` when given,
    else against the clean prediction (cells: ``logits > 0``; classes: the argmax). A cell
    objective also keeps the clean prediction, for the success it reports
    (:meth:`CellObjective.reported_success`, with ``keep``). ``clean``: the detector's
    logits on ``x`` when the caller has them (one pass of the detector fewer)."""
    if not 0 < keep <= 1:
        raise ValueError(f"the cell success share must lie in (0, 1], got {keep}")
    if clean is None:
        clean = logits_of(detector, x, torch.zeros_like(x))
    if detector.output == "classes":
        return ClassObjective(clean.argmax(1))
    found = (clean > 0).float()
    if labels is not None:
        reference = torch.from_numpy(np.asarray(labels)).float().to(x.device)
        return CellObjective(reference, clean=found, keep=keep)
    return CellObjective(found, clean=found, keep=keep)


def subset(objective: Objective, idx: torch.Tensor) -> Objective:
    """The objective of the examples ``idx`` of the batch it was made for."""
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


def reported_success(objective: Objective, logits: torch.Tensor) -> torch.Tensor:
    """The success a report gives: a cell objective's pathologist-level rule, else the
    objective's own."""
    if isinstance(objective, CellObjective):
        return objective.reported_success(logits)
    return objective(logits)[1]
