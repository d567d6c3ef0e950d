"""Seed 001 Table 1a: repeated stratified k-fold cross-validation of the patch classifier.

Each run shuffles the labelled patches into ``folds`` stratified folds (scikit-learn's
``StratifiedKFold``, seeded per run), trains a fresh ResNet-18 on all folds but one with
seed 001's schedule (``models.train.train_resnet``) and scores the fold left out (accuracy
at the softmax's 0.5, AUC-ROC). The paper reports the mean and standard deviation over
five runs of three folds; both the spread of the fifteen folds and that of the five run
means are given, since the paper does not say which of the two it took.

The folds are independent trainings (each seeded by its index alone), so they run in this
process one after another or on the workers of a dask cluster, one fold a task: the same
numbers where the workers run torch on as many threads as this process, and otherwise
within float rounding (torch's sums split differently over threads; measured: a fold's
AUC-ROC moved by at most 0.0003, no accuracy changed). A ``Ledger`` keeps the finished
folds so that a stopped run trains only the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from napari_cpadv.experiments.chunks import Ledger
from napari_cpadv.models.data import TileSet, predict_tiles
from napari_cpadv.progress import Progress, Work, drive, within


@dataclass(frozen=True)
class Training:
    """What every fold shares: the patches, their labels and seed 001's schedule."""

    patches: TileSet
    labels: np.ndarray
    width: int = 64
    epochs: int = 25
    batch: int = 16
    lr: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class Fold:
    """The ``index``-th fold of the plan: run ``run``'s fold ``fold`` and its two sides."""

    index: int
    run: int
    fold: int
    train: np.ndarray
    test: np.ndarray


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
    cluster: Any = None,
    ledger: Ledger | None = None,
) -> Work[dict[str, Any]]:
    """``runs`` x ``folds`` cross-validation of ResNet-18 on seed 001's patch labels.

    Returns every fold's accuracy and AUC-ROC, their mean, the standard deviation over the
    folds and over the run means (``ddof=1``), and the sizes. With ``cluster``
    (``inference.cluster.Cluster``) the folds are trained on its workers; the folds
    ``ledger`` holds are kept, and each fold finished is added to it.
    """
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
    shared = Training(patches, labels, width, epochs, batch, lr, seed)
    ledger = ledger if ledger is not None else Ledger()
    plan = _plan(labels, runs, folds, seed)
    todo = [f for f in plan if f.index not in ledger.done]
    if cluster is None:
        for f in todo:
            row = yield from within(
                train_fold(shared, f, device),
                len(ledger.done) / len(plan),
                (len(ledger.done) + 1) / len(plan),
                run=f.run,
                fold=f.fold,
            )
            ledger.add(f.index, row)
    else:
        yield from _on_cluster(cluster, shared, todo, ledger, len(plan))
    rows = [ledger.done[f.index] for f in plan]
    return summarise(rows, runs=runs, folds=folds, positives=int(labels.sum()), n=len(labels))


def _plan(labels: np.ndarray, runs: int, folds: int, seed: int) -> list[Fold]:
    from sklearn.model_selection import StratifiedKFold

    out: list[Fold] = []
    for run in range(runs):
        split = StratifiedKFold(folds, shuffle=True, random_state=seed + run)
        for fold, (train, test) in enumerate(split.split(np.zeros(len(labels)), labels)):
            out.append(Fold(run * folds + fold, run, fold, train, test))
    return out


def train_fold(shared: Training, f: Fold, device: Any) -> Work[dict[str, Any]]:
    """Train a fresh ResNet-18 on ``f``'s training side and score its test side: the row."""
    from napari_cpadv.metrics.scores import accuracy, aucroc
    from napari_cpadv.models.detector import make
    from napari_cpadv.models.train import train_resnet

    k = f.index
    torch.manual_seed(shared.seed + k)
    model = make("resnet18", width=shared.width)
    yield from train_resnet(
        model,
        shared.patches.subset(f.train),
        epochs=shared.epochs,
        batch=shared.batch,
        lr=shared.lr,
        seed=shared.seed + k,
        device=device,
    )
    scores = predict_tiles(model, shared.patches.subset(f.test), device=device)
    truth = shared.labels[f.test]
    return {
        "run": f.run,
        "fold": f.fold,
        "train": len(f.train),
        "test": len(f.test),
        "accuracy": accuracy(truth, scores),
        "aucroc": aucroc(truth, scores),
    }


def _fold_task(shared: Training, f: Fold, device: str | None) -> dict[str, Any]:
    """A worker's task: one fold on the worker's device."""
    from napari_cpadv.inference.cluster import worker_device

    return drive(train_fold(shared, f, worker_device(device)))


def _on_cluster(
    cluster: Any, shared: Training, todo: list[Fold], ledger: Ledger, total: int
) -> Work[None]:
    from contextlib import closing

    from napari_cpadv.inference.cluster import as_done

    with closing(as_done(cluster, shared, _fold_task, {f.index: f for f in todo})) as done:
        for index, row in done:
            ledger.add(index, row)
            yield Progress(len(ledger.done), total, {"run": row["run"], "fold": row["fold"]})


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
