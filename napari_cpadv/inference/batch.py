"""Heatmaps of one or many slides on dask.distributed.

The client splits each slide level into groups of blocks (the same blocks as the on-demand
store), submits one task per group, and pastes results into the slide's heatmap as they
complete; each worker keeps its opened slides and its loaded detector between tasks. With
no scheduler address a ``LocalCluster`` of ``workers`` single-threaded processes is
started (torch then uses ``threads`` threads in each) and closed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.inference.cluster import (
    Cluster,
    as_done,
    worker_detector,
    worker_device,
    worker_slide,
)
from napari_cpadv.inference.heatmap import (
    Heatmap,
    Scope,
    Window,
    cell_shape,
    tissue_blocks,
    windows,
)
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Progress, Work


@dataclass(frozen=True)
class Job:
    """One slide to run: where its heatmap goes."""

    slide: Path
    out: Path


@dataclass(frozen=True)
class _Detector:
    """What every group of a run shares: the detector's name, its weights and the level."""

    name: str
    weights: str | None
    level: int


def run_group(
    shared: _Detector,
    item: tuple[str, list[tuple[int, int, int, int]]],
    device: str | None,
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Worker task: tumour logits for a group of blocks ``(row, col, rows, cols)`` of the
    slide ``item[0]``."""
    import torch

    from napari_cpadv.device import batch_size
    from napari_cpadv.inference.heatmap import run_windows

    slide, group = item
    device = worker_device(device)
    det = worker_detector(shared.name, shared.weights, device)
    dev = torch.device(device)
    batch = batch_size(dev, tile=512) if dev.type == "cuda" else 1
    blocks = [Window(*g) for g in group]
    return [
        ((w.row, w.col, w.rows, w.cols), logits)
        for w, logits in run_windows(
            det, worker_slide(slide), shared.level, blocks, device=dev, batch=batch
        )
    ]


def batch_heatmaps(
    jobs: Sequence[Job],
    *,
    detector: str,
    weights: str | os.PathLike[str] | None,
    level: int,
    scope: Scope = "tissue",
    scheduler: str | None = None,
    workers: int = 2,
    threads: int = 1,
    group: int = 4,
    device: str | None = None,
) -> Work[list[Path]]:
    """Run ``detector`` over every job's slide on a dask cluster; write each heatmap pyramid.

    Yields one ``Progress`` per finished group of blocks (over all slides); returns the
    written paths. ``device`` defaults to each worker's best (``device.pick_device``).
    """
    from napari_cpadv.inference.zarr_io import write_heatmap
    from napari_cpadv.models.weights import resolve

    det = resolve(detector, weights)  # fail here, before any cluster starts, on bad weights
    w_arg = None if weights is None else os.fspath(weights)
    dev = None if device is None else str(device)  # None: each worker's best
    # Plan in this process first, before the cluster starts.
    plans = [_plan(job, det, level, scope) for job in jobs]
    items = {
        (n, k): (
            str(plan.job.slide),
            [(w.row, w.col, w.rows, w.cols) for w in plan.blocks[k : k + group]],
        )
        for n, plan in enumerate(plans)
        for k in range(0, len(plan.blocks), group)
    }
    cluster = Cluster(scheduler, workers, threads, dev)
    with closing(as_done(cluster, _Detector(detector, w_arg, level), run_group, items)) as done:
        for count, ((n, _), result) in enumerate(done, start=1):
            plan = plans[n]
            for (r, c, h, w), logits in result:
                plan.out[r : r + h, c : c + w] = logits
            yield Progress(count, len(items), {"slide": str(plan.job.slide)})
    return [
        write_heatmap(
            p.job.out,
            Heatmap(
                p.out,
                level,
                det.cell,
                float(p.slide.downsamples[level]),
                attrs={
                    "detector": detector,
                    "slide": str(p.job.slide),
                    "scope": scope,
                    "weights": w_arg,
                },
            ),
            mpp=p.slide.mpp,
        )
        for p in plans
    ]


@dataclass
class _Plan:
    """One job's slide, its blocks to run and the cell grid they fill."""

    job: Job
    slide: Any
    out: np.ndarray
    blocks: list[Window]


def _plan(job: Job, det: Detector, level: int, scope: Scope) -> _Plan:
    from napari_cpadv.slide import open_slide

    slide = open_slide(job.slide)
    slide.check_level(level)
    shape = cell_shape(slide, level, det.cell)
    block = max(1, 512 // det.cell)
    keep = tissue_blocks(slide, level, cell=det.cell, block=block) if scope == "tissue" else None
    return _Plan(
        job, slide, np.full(shape, np.nan, np.float32), windows(shape, block=block, keep=keep)
    )
