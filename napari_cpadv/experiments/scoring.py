"""The score of a δ on tiles (every attack's ``craft`` has rounded it to 8 bits, as a saved
adversarial image holds it): success, cell-level AUC-PR and damage, from one pass of the
detector.

Cell-level AUC-PR is computed on the attacked tiles (each tile seen alone, as it was
attacked) against the cell labels of the annotations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from napari_cpadv.attacks.objectives import Objective, logits_of, reported_success
from napari_cpadv.models.detector import Detector


def logits_aucpr(logits: torch.Tensor, labels: np.ndarray) -> float:
    from napari_cpadv.metrics.scores import aucpr

    return aucpr(np.asarray(labels), logits.float().cpu().numpy()).aucpr


def cell_aucpr(detector: Detector, x: torch.Tensor, labels: np.ndarray) -> float:
    """Cell-level AUC-PR of a cell detector on ``x`` ``(N, 3, S, S)`` against ``labels``."""
    return logits_aucpr(logits_of(detector, x, torch.zeros_like(x)), labels)


def damage_of(clean: float | None, after: float | None, success: float) -> float:
    """AUC-PR drop when there is ground truth, else the success rate."""
    return clean - after if clean is not None and after is not None else success


def scorable(labels: np.ndarray | None, warnings: list[str]) -> np.ndarray | None:
    """``labels`` when AUC-PR can be computed on them (some tumour cells), else ``None``
    with a warning saying why it is missing."""
    if labels is not None and not labels.any():
        warnings.append("no tumour cell in these tiles: AUC-PR is undefined and not reported")
        return None
    return labels


def condition(
    detector: Detector,
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
        out["aucpr"] = logits_aucpr(logits, labels)
    out["damage"] = damage_of(clean, out.get("aucpr"), rate)
    return out
