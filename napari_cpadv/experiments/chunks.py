"""A region attack's tiles in fixed chunks: attacked in this process or on dask.distributed
workers, written into the delta slide by this process alone, each finished chunk recorded
in the run's journal, so that a stopped run resumes where it stopped.

The chunks are fixed by the plan (``batch`` tiles each, in plan order; one chunk of every
tile for an attack that learns one δ over them all) and each is attacked with the spec's
seed from the original's pixels, so a chunk's result does not depend on which process
attacks it, in which order, or how often: a run on one process, on a cluster, or resumed
writes the same adversarial slide. (``slide.perturb.apply`` is idempotent and order-free
for the same reason.)

The journal (``tiles.jsonl`` inside the delta slide's folder) is one JSON object a line,
appended and fsynced after the chunk's tiles are in the delta slide: first the header
(what the run attacks: the spec, the detector, the tiles, the chunking), then one record
per finished chunk (its index, tiles, success and achieved norms). A resumed run refuses a
journal whose header differs from its own plan, and re-attacks a chunk whose record was
cut off by the stop.

A worker lost mid-run loses only the chunks it was attacking: dask.distributed gives them
to another worker. Only the client writes, so the delta slide never has two writers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.attacks.base import AttackSpec, Scored, rounding_warnings
from napari_cpadv.errors import CpadvError
from napari_cpadv.inference.cluster import Cluster
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import Work, drive

JOURNAL = "tiles.jsonl"


@dataclass(frozen=True)
class Chunk:
    """The ``index``-th chunk of a run: its tiles' level positions ``(row, col)``."""

    index: int
    positions: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Job:
    """What every chunk of a run shares: the original slide, the detector (on any device),
    the spec, the tile side, the annotations (cell labels, or ``None``), the device of a
    run in this process (a cluster's workers use the cluster's) and the batch of the
    attack's inner loop."""

    slide: str
    detector: Detector
    spec: AttackSpec
    side: int
    annotations: Any
    device: Any
    batch: int


def chunks(positions: list[tuple[int, int]], spec: AttackSpec, batch: int) -> list[Chunk]:
    """The run's chunks: ``batch`` tiles each, or all tiles for a non-per-tile attack."""
    step = batch if spec.runner.per_tile else len(positions)
    return [
        Chunk(k, tuple(positions[i : i + step]))
        for k, i in enumerate(range(0, len(positions), step))
    ]


def attack_chunk(
    job: Job, chunk: Chunk, device: Any, original: Any
) -> Work[tuple[np.ndarray, dict[str, Any]]]:
    """Attack one chunk of the ``original`` slide on ``device``: its adversarial tiles
    (``(n, side, side, 3)`` uint8) and its record (success and norms, JSON-ready)."""
    from napari_cpadv.attacks.objectives import objective_for
    from napari_cpadv.experiments.tiles import read_tiles

    detector = job.detector.to(device).eval()
    cells = detector.output == "cells"
    tiles = read_tiles(
        original,
        job.spec.level,
        list(chunk.positions),
        job.side,
        annotations=job.annotations if cells else None,
        cell=detector.cell,
    )
    x = tiles.x.to(device)
    objective = objective_for(detector, x, tiles.labels)
    res = yield from job.spec.runner.craft(detector, x, objective, job.spec, batch=job.batch)
    adv = (x + res.delta).clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu()
    return adv.numpy(), {"chunk": chunk.index, **record(res, job.spec.budget)}


def chunk_task(job: Job, chunk: Chunk, device: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    """A worker's task: ``attack_chunk`` on the worker's device (``device`` asked)."""
    from napari_cpadv.inference.cluster import worker_device, worker_slide

    work = attack_chunk(job, chunk, worker_device(device), worker_slide(job.slide))
    return drive(work)


def on_cluster(
    job: Job, todo: list[Chunk], cluster: Cluster
) -> Iterator[tuple[Chunk, np.ndarray, dict[str, Any]]]:
    """Each chunk of ``todo`` attacked on ``cluster``, as it finishes (any order)."""
    from contextlib import closing

    from napari_cpadv.inference.cluster import as_done

    job.detector.to("cpu")  # sent to workers that may have no GPU; each moves it to its own
    by_index = {chunk.index: chunk for chunk in todo}
    try:
        with closing(as_done(cluster, job, chunk_task, by_index)) as done:
            for index, (adv, rec) in done:
                yield by_index[index], adv, rec
    finally:
        job.detector.to(job.device)  # where the caller had it, as craft_on leaves its own


def record(res: Scored, budget: Any) -> dict[str, Any]:
    """A chunk's success and achieved norms (on the saved 8-bit image, and on the float δ
    when the attack made one) and its rounding warnings, JSON-ready."""
    out: dict[str, Any] = {
        "success": res.success.cpu().tolist(),
        "norms": {k: list(map(float, v)) for k, v in res.norms.items()},
        "warnings": rounding_warnings(res, budget),
    }
    if res.success_float is not None and res.norms_float is not None:
        out["success_float"] = res.success_float.cpu().tolist()
        out["norms_float"] = {k: list(map(float, v)) for k, v in res.norms_float.items()}
    return out


@dataclass
class Tally:
    """Success and achieved norms of every attacked tile in plan order, from the chunks'
    records, on the saved 8-bit image and on the float δ (the papers' setting)."""

    success: list[bool] = field(default_factory=list)
    norms: dict[str, list[float]] = field(default_factory=dict)
    success_float: list[bool] = field(default_factory=list)
    norms_float: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, records: list[dict[str, Any]]) -> Tally:
        tally = cls()
        for rec in sorted(records, key=lambda r: int(r["chunk"])):
            tally.success += rec["success"]
            for key, values in rec["norms"].items():
                tally.norms.setdefault(key, []).extend(values)
            tally.success_float += rec.get("success_float", [])
            for key, values in rec.get("norms_float", {}).items():
                tally.norms_float.setdefault(key, []).extend(values)
            tally.warnings += [w for w in rec["warnings"] if w not in tally.warnings]
        return tally

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "success_rate": float(np.mean(self.success)),
            "success": self.success,
            "norms": self.norms,
            "warnings": self.warnings,
        }
        if self.success_float:  # δ before it is rounded into the saved image
            out["float"] = {
                "success_rate": float(np.mean(self.success_float)),
                "norms": self.norms_float,
            }
        return out


def header(job: Job, plan: list[Chunk]) -> dict[str, Any]:
    """What a run attacks, as its journal's first line records it (JSON-ready)."""
    spec = json.loads(json.dumps(asdict(job.spec), default=str))
    return {
        "detector": job.detector.name,
        "spec": spec,
        "side": job.side,
        "annotations": job.annotations is not None,
        "chunks": [[list(p) for p in c.positions] for c in plan],
    }


class Journal:
    """The run's record of its finished chunks (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike[str], name: str = JOURNAL) -> None:
        self.path = Path(folder) / name

    def start(self, head: dict[str, Any]) -> None:
        """A new journal holding only ``head``, its folder entry made durable too (else a
        crash right after could lose the file a resumed run needs)."""
        from napari_cpadv.files import fsync_dir

        self._append({"header": head}, mode="w")
        fsync_dir(self.path.parent)

    def resume(self, head: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """The records of the finished chunks, after checking that the journal was
        written for the same plan; ``CpadvError`` says why a run cannot resume."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            raise CpadvError(self.path, "is missing: this run cannot be resumed") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CpadvError(self.path, f"cannot be read ({exc})") from None
        entries = []
        for n, line in enumerate(lines, start=1):
            try:
                entries.append(json.loads(line))
            except ValueError:
                if n == len(lines):  # the record being written when the run stopped
                    break
                raise CpadvError(self.path, f"line {n} is damaged") from None
        if not entries:
            raise CpadvError(self.path, "holds no header: this run cannot be resumed")
        if not isinstance(entries[0], dict) or entries[0].get("header") != head:
            raise CpadvError(
                self.path,
                "was written for another attack (detector, attack, budget, level, tiles or "
                "batch differ): resume with the same settings, or start a new run",
            )
        done = {int(e["chunk"]): e for e in entries[1:]}
        if any(not 0 <= k < len(head["chunks"]) for k in done):
            raise CpadvError(self.path, "records a chunk its plan does not have")
        return done

    def add(self, rec: dict[str, Any]) -> None:
        self._append(rec)

    def _append(self, value: dict[str, Any], mode: str = "a") -> None:
        with open(self.path, mode, encoding="utf-8") as f:
            f.write(json.dumps(value) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class Ledger:
    """The finished items of a resumable piece of work (JSON-ready records by index) and the
    journal each new one is appended to (``None``: kept in memory only)."""

    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    journal: Journal | None = None

    @classmethod
    def opened(cls, journal: Journal, head: dict[str, Any]) -> Ledger:
        """The ledger ``journal`` holds when it was written for ``head`` (which lists the
        items as ``head["chunks"]``); otherwise (missing, damaged, another plan) a new one."""
        try:
            entries = journal.resume(head)
        except CpadvError:
            journal.start(head)
            return cls({}, journal)
        return cls({k: e["record"] for k, e in entries.items() if "record" in e}, journal)

    def add(self, index: int, rec: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.add({"chunk": index, "record": rec})
        self.done[index] = rec


# -- whole attacks on a tile set, one a task (budget sweeps, transfer matrices) ------------


@dataclass(frozen=True)
class Craft:
    """One attack of a tile set to craft on a worker: on ``detector`` (a name of the
    detectors sent), with ``spec``, in batches of ``batch``."""

    detector: str
    spec: AttackSpec
    batch: int


@dataclass(frozen=True)
class _Tiles:
    """What every craft of a run shares (sent to each worker once)."""

    detectors: dict[str, Detector]
    x: Any  # (N, 3, S, S) on the CPU
    labels: Any  # cell labels, or None


def craft_on(
    cluster: Cluster,
    detectors: dict[str, Detector],
    x: Any,
    labels: Any,
    crafts: dict[Any, Craft],
) -> Work[dict[Any, Scored]]:
    """Each of ``crafts`` run on ``cluster``'s workers against ``x`` (the objective built
    there from ``labels``, as ``objective_for`` builds it here); the results by key on
    ``x``'s device, where the detectors are put back; one step of the bar per craft."""
    from contextlib import closing

    from napari_cpadv.inference.cluster import as_done
    from napari_cpadv.progress import Progress

    for d in detectors.values():
        d.to("cpu")  # sent to workers that may have no GPU
    out: dict[Any, Scored] = {}
    try:
        shared = _Tiles(detectors, x.cpu(), labels)
        with closing(as_done(cluster, shared, _craft, crafts)) as done:
            for n, (key, res) in enumerate(done, start=1):
                out[key] = moved(res, x.device)
                yield Progress(n, len(crafts), {"crafted": n})
    finally:
        for d in detectors.values():
            d.to(x.device)
    return out


def _craft(shared: _Tiles, craft: Craft, device: str | None) -> Scored:
    import torch

    from napari_cpadv.attacks.objectives import objective_for
    from napari_cpadv.inference.cluster import worker_device

    dev = worker_device(device)
    detector = shared.detectors[craft.detector].to(dev).eval()
    x = shared.x.to(dev)
    objective = objective_for(detector, x, shared.labels)
    res = drive(craft.spec.runner.craft(detector, x, objective, craft.spec, batch=craft.batch))
    return moved(res, torch.device("cpu"))


def moved(res: Scored, device: Any) -> Scored:
    """``res`` with every tensor on ``device``."""
    import dataclasses

    import torch

    return dataclasses.replace(
        res,
        **{
            f.name: getattr(res, f.name).to(device)
            for f in dataclasses.fields(res)
            if isinstance(getattr(res, f.name), torch.Tensor)
        },
    )
