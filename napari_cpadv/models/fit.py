"""Training a detector end to end: the schedule of its phases (``Schedule``, ``PHASES``)
and ``fit``, which runs every phase of ``models.train`` in order on ``cpadv tiles``
folders or on tiles streamed from slides (``Streamed``), then scores held-out tiles."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from napari_cpadv.files import provenance
from napari_cpadv.models.data import TileSet, holdout_metrics, load_tiles, tiles_level
from napari_cpadv.models.lca import solver_summary
from napari_cpadv.models.train import (
    train_dae,
    train_dictionary,
    train_head,
    train_resnet,
)
from napari_cpadv.progress import Work, within


@dataclass(frozen=True)
class Schedule:
    """How long each phase trains (the paper's values by default).

    ``autoencoder`` epochs of the DAE (4), ``dictionary`` epochs of the LCA (1.4),
    ``head`` epochs of a cell head (10), ``resnet`` epochs (25); ``batch`` and ``lr`` of the
    head and DAE (the ResNet keeps seed 001's AdaDelta lr 0.01); ``dictionary_iterations``
    a fixed number of LCA iterations per dictionary-learning step (``None``: the coder's
    own cap and tolerance, i.e. converged codes); ``loader_workers`` processes reading
    streamed tiles ahead of the DAE and ResNet-18 steps.
    """

    autoencoder: int = 4
    dictionary: float = 1.4
    head: int = 10
    resnet: int = 25
    batch: int = 8
    lr: float = 1e-3
    head_lr: float = 1e-3
    dictionary_iterations: int | None = None
    loader_workers: int = 0


# Each detector's training phases in order, with the share of the run's bar each phase
# ends at (an estimate of its cost): the autoencoder, or the dictionary, then the head.
PHASES: dict[str, tuple[tuple[str, float], ...]] = {
    "dae": (("autoencoder", 0.8), ("head", 1.0)),
    "sparse": (("dictionary", 0.5), ("head", 1.0)),
    "resnet18": (("resnet", 1.0),),
}


UNSUPERVISED = ("autoencoder", "dictionary")  # the phases that read no label


def _phase(
    phase: str,
    detector: Any,  # the class the phase trains: PHASES pairs them
    data: TileSet,
    s: Schedule,
    seed: int,
    device: torch.device | str,
    reports: list[dict[str, Any]],
) -> Work[list[float]]:
    """One training phase with the schedule's epochs, batch and rate."""
    common: dict[str, Any] = {"seed": seed, "device": device}
    if phase == "autoencoder":
        return train_dae(
            detector,
            data,
            epochs=s.autoencoder,
            batch=s.batch,
            lr=s.lr,
            workers=s.loader_workers,
            **common,
        )
    if phase == "dictionary":
        return train_dictionary(
            detector,
            data,
            epochs=s.dictionary,
            batch=s.batch,
            iterations=s.dictionary_iterations,
            **common,
        )
    if phase == "head":
        return train_head(
            detector, data, epochs=s.head, batch=s.batch, lr=s.head_lr, reports=reports, **common
        )
    return train_resnet(detector, data, epochs=s.resnet, workers=s.loader_workers, **common)


def fit(
    name: str,
    folders: Sequence[str | os.PathLike[str]] = (),
    *,
    hyper: dict[str, Any] | None = None,
    schedule: Schedule = Schedule(),
    holdout: Sequence[str | os.PathLike[str]] = (),
    seed: int = 0,
    device: torch.device | str = "cpu",
    streamed: Streamed | None = None,
) -> Work[tuple[Any, dict[str, Any]]]:
    """Train detector ``name`` from ``cpadv tiles`` folders (or tiles ``streamed`` from
    slides), every phase in order.

    Returns ``(detector, record)`` where ``record`` holds the losses, where the data came
    from, the seed and, with held-out tiles (``holdout`` folders or ``streamed.holdout``),
    the held-out metrics.
    """
    from napari_cpadv.models.detector import make

    code = provenance()  # the code as training starts
    torch.manual_seed(seed)
    detector = make(name, **(hyper or {}))
    data = streamed.tiles if streamed is not None else load_tiles(folders)
    losses: dict[str, list[float]] = {}
    reports: list[dict[str, Any]] = []
    start = 0.0
    extra = streamed.unlabelled if streamed is not None else None
    for phase, end in PHASES[name]:  # one monotone bar over the phases
        # the autoencoder and the dictionary read pixels only: unlabelled tiles join them
        seen = data.joined(extra) if extra is not None and phase in UNSUPERVISED else data
        work = _phase(phase, detector, seen, schedule, seed, device, reports)
        losses[phase] = yield from within(work, start, end)
        start = end
    record: dict[str, Any] = {
        **_sources(name, folders, streamed),
        "tiles": len(data),
        "seed": seed,
        # how many processes read ahead changes no number: not part of the recipe
        "schedule": {k: v for k, v in schedule.__dict__.items() if k != "loader_workers"},
        "final_loss": {k: v[-1] for k, v in losses.items() if v},
        "code": code,
    }
    if reports:  # the sparse coder: how far LCA went on the codes the head learnt from
        record["lca"] = solver_summary(reports)
    held = streamed.holdout if streamed is not None else (load_tiles(holdout) if holdout else None)
    metrics: dict[str, Any] = {}
    if held is not None:
        where = streamed.holdout_data if streamed is not None else [str(f) for f in holdout]
        metrics = {"holdout": where, **holdout_metrics(detector, held, device=device)}
    detector.to("cpu").eval()
    return detector, {"training": record, "metrics": metrics}


def _sources(
    name: str, folders: Sequence[str | os.PathLike[str]], streamed: Streamed | None
) -> dict[str, Any]:
    """Where the training tiles came from: the data, its level, its tissue (synthetic or
    real) and µm per pixel (what a slide is compared with), and any unlabelled tiles."""
    from napari_cpadv.models.origin import slides_origin, tiles_origin

    if streamed is None:
        return {
            "data": [str(f) for f in folders],
            "level": tiles_level(folders[0]),
            **tiles_origin(folders),
        }
    out = {
        "data": streamed.data,
        "level": streamed.level,
        **slides_origin(streamed.data, streamed.level),
    }
    if streamed.unlabelled is not None:
        out["unlabelled"] = {
            "data": streamed.unlabelled_data,
            "tiles": len(streamed.unlabelled),
            "phases": [p for p, _ in PHASES[name] if p in UNSUPERVISED],
        }
    return out


@dataclass(frozen=True)
class Streamed:
    """Tiles streamed from slides (``models.data.stream_tiles``) for ``fit``, with what to
    record of where they came from: the slides, the level, and held-out tiles."""

    tiles: TileSet
    data: list[str]
    level: int
    holdout: TileSet | None = None
    holdout_data: list[str] | None = None
    unlabelled: TileSet | None = None  # more pixels for the unsupervised phases only
    unlabelled_data: list[str] | None = None
