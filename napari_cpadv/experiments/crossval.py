"""Seed 001 Table 1a: repeated stratified k-fold cross-validation of the patch classifier.

Each run shuffles the labelled patches into ``folds`` stratified folds (scikit-learn's
``StratifiedKFold``, seeded per run), trains a fresh ResNet-18 on all folds but one with
seed 001's schedule (``models.train.train_resnet``) and scores the fold left out (accuracy
at the softmax's 0.5, AUC-ROC). The paper reports the mean and standard deviation over
five runs of three folds; both the spread of the fifteen folds and that of the five run
means are given, since the paper does not say which of the two it took.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from napari_cpadv.models.data import TileSet, predict_tiles
from napari_cpadv.progress import Work, within


def cross_validate(
    data: TileSet,
    *,
    runs: int = 5,
    folds: int = 3,
    width: int = 64,
    epochs: int = 25,
    batch: int = 16,
    lr: float = 0.01,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Work[dict[str, Any]]:
    """``runs`` x ``folds`` cross-validation of ResNet-18 on seed 001's patch labels.

    Returns every fold's accuracy and AUC-ROC, their mean, the standard deviation over the
    folds and over the run means (``ddof=1``), and the sizes.
    """
    from sklearn.model_selection import StratifiedKFold

    from napari_cpadv.metrics.scores import accuracy, aucroc
    from napari_cpadv.models.detector import make
    from napari_cpadv.models.train import train_resnet

    if runs < 1 or folds < 2:
        raise ValueError(
            f"cross-validation needs at least one run and two folds, got {runs}, {folds}"
        )
    patches, labels = data.patch_labels()
    if min(int(labels.sum()), int((labels == 0).sum())) < folds:
        raise ValueError(
            f"{int(labels.sum())} positive and {int((labels == 0).sum())} negative patches: "
            f"{folds} stratified folds need at least {folds} of each"
        )
    rows: list[dict[str, Any]] = []
    total = runs * folds
    for run in range(runs):
        split = StratifiedKFold(folds, shuffle=True, random_state=seed + run)
        for fold, (train, test) in enumerate(split.split(np.zeros(len(labels)), labels)):
            k = run * folds + fold
            torch.manual_seed(seed + k)
            model = make("resnet18", width=width)
            work = train_resnet(
                model,
                patches.subset(train),
                epochs=epochs,
                batch=batch,
                lr=lr,
                seed=seed + k,
                device=device,
            )
            yield from within(work, k / total, (k + 1) / total, run=run, fold=fold)
            scores = predict_tiles(model, patches.subset(test), device=device)
            rows.append(
                {
                    "run": run,
                    "fold": fold,
                    "train": len(train),
                    "test": len(test),
                    "accuracy": accuracy(labels[test], scores),
                    "aucroc": aucroc(labels[test], scores),
                }
            )
    return summarise(rows, runs=runs, folds=folds, positives=int(labels.sum()), n=len(labels))


def summarise(rows: list[dict[str, Any]], **sizes: int) -> dict[str, Any]:
    """Mean and both standard deviations of each metric over the folds of ``rows``."""
    out: dict[str, Any] = {"per_fold": rows, **sizes}
    for metric in ("accuracy", "aucroc"):
        values = np.array([r[metric] for r in rows], dtype=float)
        per_run = [
            float(np.mean([r[metric] for r in rows if r["run"] == run]))
            for run in sorted({r["run"] for r in rows})
        ]
        out[metric] = {
            "mean": float(values.mean()),
            "std_folds": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "std_runs": float(np.std(per_run, ddof=1)) if len(per_run) > 1 else 0.0,
        }
    return out
