"""Seed 000 §2.7: cell-level precision-recall; seed 001: patch-level AUC-ROC.

One definition everywhere (DESIGN.md): AUC-PR is the step-wise average precision of
scikit-learn's ``average_precision_score`` over cells; the null model, a detector that
scores every cell alike, reaches the positive fraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PrScore:
    """Cell-level AUC-PR of one heatmap against one mask.

    ``precision``/``recall``/``thresholds`` are scikit-learn's curve, thinned to at most
    ``points`` entries for reporting; ``aucpr`` is computed on the full curve.
    """

    aucpr: float
    null_aucpr: float
    n_cells: int
    n_positive: int
    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {
            "aucpr": self.aucpr,
            "null_aucpr": self.null_aucpr,
            "n_cells": self.n_cells,
            "n_positive": self.n_positive,
            "curve": {
                "precision": [round(float(v), 6) for v in self.precision],
                "recall": [round(float(v), 6) for v in self.recall],
                "thresholds": [round(float(v), 6) for v in self.thresholds],
            },
        }


def _flat(
    labels: np.ndarray, scores: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    keep = np.isfinite(scores)
    if valid is not None:
        keep &= np.asarray(valid, dtype=bool)
    return labels[keep].astype(bool).ravel(), scores[keep].ravel()


def aucpr(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    points: int = 101,
) -> PrScore:
    """AUC-PR of ``scores`` (any monotone score: logits or probabilities) against ``labels``.

    Parameters
    ----------
    labels
        Cell mask, any shape, non-zero for tumour.
    scores
        Same shape; NaN cells (not computed) are left out.
    valid
        Optional boolean mask of the cells to score (tissue, say).
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y, s = _flat(labels, scores, valid)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("AUC-PR is undefined without a single positive cell")
    ap = float(average_precision_score(y, s))
    precision, recall, thresholds = precision_recall_curve(y, s)
    pick = np.unique(np.linspace(0, len(thresholds) - 1, min(points, len(thresholds))).astype(int))
    return PrScore(
        aucpr=ap,
        null_aucpr=n_pos / y.size,
        n_cells=int(y.size),
        n_positive=n_pos,
        precision=precision[pick],
        recall=recall[pick],
        thresholds=thresholds[pick],
    )


def aucroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (seed 001's patch-level score)."""
    from sklearn.metrics import roc_auc_score

    y, s = _flat(labels, scores, None)
    if y.all() or not y.any():
        raise ValueError("AUC-ROC needs both classes")
    return float(roc_auc_score(y, s))


def accuracy(labels: np.ndarray, scores: np.ndarray, *, threshold: float = 0.0) -> float:
    """Fraction right when ``scores > threshold`` (logits: 0) calls tumour."""
    y, s = _flat(labels, scores, None)
    return float(((s > threshold) == y).mean())
