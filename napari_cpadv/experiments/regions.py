"""Attack a region of a slide tile by tile and store the result as an adversarial slide;
where an attack runs: what the user drew, clipped to the slide, and the tiles that cover it
(the same plan a run uses and the Attack dock previews).

The region (level-0 ``x, y, width, height``) is covered by tiles of the chosen level on
the level's global tile grid: every pixel of it lies in an attacked tile, however it was
drawn, on the grid or off it. The report gives the attacked tiles in level-0 pixels and
the area they cover, over which the damage is measured. The tiles are attacked in batches
(each tile its own example, as the seeds attack 512x512 tiles and 224x224 patches;
``universal`` learns one δ over all of them), each adversarial tile is rounded to 8 bits
and written into the delta slide as soon as its batch is done, so an interrupted run keeps
every finished batch. The report gives the achieved norms (after rounding) in both units
and the success of every tile.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from napari_cpadv.attacks.base import AttackSpec
from napari_cpadv.attacks.objectives import CELL_KEEP
from napari_cpadv.experiments.chunks import (
    Chunk,
    Job,
    Journal,
    Tally,
    attack_chunk,
    chunks,
    header,
    on_cluster,
)
from napari_cpadv.experiments.tiles import (
    no_tile_reason,
    tile_positions,
    tile_side,
    tiles_level0,
)
from napari_cpadv.geometry import Box
from napari_cpadv.inference.cluster import Cluster
from napari_cpadv.models.detector import Detector
from napari_cpadv.progress import SCALE, Progress, Work, within

# Level-0 pixels: float32 µm of a 100,000-pixel slide are exact to about 0.004 pixels; no
# hand-drawn corner lands this close to a grid line by chance.
GRID_TOLERANCE = 0.01


def clip_regions(
    boxes: list[tuple[float, float, float, float]] | list[Box], slide: Any
) -> list[tuple[int, int, int, int]]:
    """Level-0 boxes ``(r0, c0, r1, c1)`` (floats, as drawn or as the view shows) clipped
    to the slide, as the ``(x, y, w, h)`` regions an attack takes.

    A box reaching off the slide (the view around a whole slide) keeps its part on the
    slide; a box wholly off it is refused, as is an empty one. Rounding goes outward, so
    every drawn pixel is attacked, but a coordinate within ``GRID_TOLERANCE`` of an
    integer counts as that integer: a rectangle drawn on the tile grid in world units (µm,
    which napari's Shapes layer stores as float32) does not gain a tile row and column
    from a float error.
    """
    rows, cols = slide.geometry[0].rows, slide.geometry[0].cols
    out = []
    for b in boxes:
        box = b if isinstance(b, Box) else Box.from_rows_cols(*b)
        if box.empty:
            raise ValueError("the region is empty")
        on_slide = box.outward(GRID_TOLERANCE).clipped(rows, cols)
        if not on_slide.empty:
            out.append(on_slide.xywh)
    if not out:
        raise ValueError(f"{slide.path}: the region lies outside the slide ({cols} x {rows})")
    return out


def planned_tiles(
    slide_path: str | Path,
    level: int,
    tile: int,
    box: tuple[float, float, float, float] | list[tuple[float, float, float, float]],
    detector: Detector,
    *,
    tissue_only: bool = False,
) -> list[list[int]]:
    """The tiles a run at ``level`` with ``tile``-pixel tiles would attack on ``box``,
    each a level-0 ``[x, y, w, h]`` (the Attack dock's preview); ``ValueError`` says why
    there is none."""
    from napari_cpadv.slide import open_slide

    slide = open_slide(slide_path)
    slide.check_level(level)
    side = tile_side(detector, tile)
    regions = clip_regions(box if isinstance(box, list) else [box], slide)
    positions = plan(slide, level, side, regions, tissue_only=tissue_only)
    return tiles_level0(positions, side, float(slide.downsamples[level]))


def attack_region(
    slide_path: str | os.PathLike[str],
    detector: Detector,
    spec: AttackSpec,
    *,
    region: tuple[int, int, int, int] | list[tuple[int, int, int, int]],
    out: str | os.PathLike[str],
    annotations: Any = None,
    device: Any = "cpu",
    batch: int = 4,
    tissue_only: bool = False,
    cluster: Cluster | None = None,
    resume: bool = False,
) -> Work[dict[str, Any]]:
    """Attack ``region`` (level-0 ``x, y, w, h``, or a list of them: their tiles together)
    and write ``out`` (a ``.delta.zarr``).

    With ``annotations`` a cell detector is attacked against their cell labels, else
    against its own clean prediction; ``tissue_only`` skips tiles without tissue (seed
    000's hue rule). With ``cluster`` the tiles are attacked on its workers (on the
    cluster's device, not ``device``); with ``resume`` a stopped run at ``out``
    continues where it stopped (``experiments.chunks``). Returns the report (JSON-ready).
    """
    from napari_cpadv.slide import open_slide

    started = time.perf_counter()
    original = open_slide(slide_path)
    original.check_level(spec.level)
    side = tile_side(detector, spec.tile)
    regions = region if isinstance(region, list) else [region]
    positions = plan(original, spec.level, side, regions, tissue_only=tissue_only)
    job = Job(str(original.path), detector, spec, side, annotations, device, batch)
    report = yield from _attack_chunks(job, original, positions, Path(out), cluster, resume)
    return {
        "slide": str(slide_path),
        "delta": str(out),
        "detector": detector.name,
        "attack": spec.attack,
        "budget": {"norm": spec.budget.norm, "value": spec.budget.value, "unit": spec.budget.unit},
        "level": spec.level,
        "tile": side,
        "tiles": len(positions),
        "positions": [list(p) for p in positions],
        **attacked_area(regions, positions, side, original.downsamples[spec.level]),
        "steps": spec.iterations,
        "seed": spec.seed,
        "device": str(device) if cluster is None else str(cluster.device or "each worker's best"),
        **({"workers": _workers(cluster)} if cluster is not None else {}),
        **report,
        "seconds": time.perf_counter() - started,
    }


def plan(
    original: Any,
    level: int,
    side: int,
    regions: list[tuple[int, int, int, int]],
    *,
    tissue_only: bool = False,
) -> list[tuple[int, int]]:
    """The level positions ``(row, col)`` of the tiles that cover ``regions`` (level-0
    ``x, y, w, h``), only those with tissue when ``tissue_only``; what a run attacks and
    what the Attack dock previews. ``ValueError`` says why there is none."""
    g = original.geometry[level]
    positions = list(
        dict.fromkeys(
            p
            for r in regions
            for p in tile_positions((g.rows, g.cols), original.downsamples[level], r, side)
        )
    )
    if tissue_only:
        from napari_cpadv.slide.tiles import tissue_tiles

        tissue = {
            (t.row, t.col)
            for t in tissue_tiles(original, level=level, size=side, min_fraction=0.0)
            if t.fraction > 0
        }
        kept = [p for p in positions if p in tissue]
        if positions and not kept:
            raise ValueError(f"none of the region's {len(positions)} tiles holds tissue")
        positions = kept
    if not positions:
        raise ValueError(no_tile_reason(regions[0], (g.rows, g.cols), level, side))
    return positions


def _attack_chunks(
    job: Job,
    original: Any,
    positions: list[tuple[int, int]],
    out: Path,
    cluster: Cluster | None,
    resume: bool,
) -> Work[dict[str, Any]]:
    """Attack the chunks not yet done, each written into the delta slide, then recorded in
    the journal, as it finishes; one bar over every tile."""
    from napari_cpadv.slide.delta import create_delta, open_delta
    from napari_cpadv.slide.perturb import apply

    chunked = chunks(positions, job.spec, job.batch)
    head = header(job, chunked)
    journal = Journal(out)
    if resume:
        delta_slide = open_delta(out)
        done = journal.resume(head)
    else:
        delta_slide = create_delta(job.slide, out)  # only now: a refused request writes nothing
        journal.start(head)
        done = {}
    todo = [c for c in chunked if c.index not in done]
    tiles = sum(len(c.positions) for c in chunked)
    finished = kept = sum(len(chunked[k].positions) for k in done)
    results: Iterator[Any]
    if cluster is None:
        results = _here(job, todo, original, (finished, tiles))
    else:
        results = on_cluster(job, todo, cluster)
    try:
        for item in results:
            if isinstance(item, Progress):  # within a chunk attacked here
                yield item
                continue
            chunk, adv, rec = item
            for (r, c), tile in zip(chunk.positions, adv, strict=True):
                apply(delta_slide, job.spec.level, r, c, tile)
            journal.add(rec)  # after its tiles: a stop in between re-attacks this chunk
            done[chunk.index] = rec
            finished += len(chunk.positions)
            yield Progress(round(SCALE * finished / tiles), SCALE, {"tiles": finished})
    except BaseException:  # failed, cancelled or interrupted
        if not resume and not done:  # no tile yet: leave no store
            delta_slide.close()
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    out_report = Tally.of(list(done.values())).report()
    if resume:  # the success and norms are of every tile; the time is this run's alone
        out_report["resumed"] = {"tiles_kept": kept, "seconds": "of the resumed part only"}
    if job.detector.output == "cells":
        out_report["success_rule"] = (
            f"a tile is a success when fewer than {CELL_KEEP:.0%} of the tumour cells the "
            "detector found clean are still found, or, on a tile it called normal, when "
            "its call flips to tumour (>= 1 % of its cells)"
        )
    return out_report


def _here(job: Job, todo: list[Chunk], original: Any, count: tuple[int, int]) -> Iterator[Any]:
    """The chunks attacked one after another in this process, each ``(chunk, tiles,
    record)`` with the bar moving within it (``count``: the tiles done before and in all;
    a cluster's bar moves chunk by chunk)."""
    seen, tiles = count
    for chunk in todo:
        share = (seen / tiles, (seen + len(chunk.positions)) / tiles)
        work = attack_chunk(job, chunk, job.device, original)
        adv, rec = yield from within(work, *share, tiles=seen)  # tiles: finished in all
        seen += len(chunk.positions)
        yield chunk, adv, rec


def _workers(cluster: Cluster) -> str:
    if cluster.scheduler:
        return cluster.scheduler
    return f"LocalCluster of {cluster.workers} x {cluster.threads} thread(s)"


def attacked_area(
    regions: list[tuple[int, int, int, int]],
    positions: list[tuple[int, int]],
    side: int,
    downsample: float,
) -> dict[str, Any]:
    """What a region attack covered, in level-0 pixels: each tile ``[x, y, w, h]``, their
    bounding box ``[x0, y0, x1, y1]``, the rectangles asked for, and a note when the tiles
    reach beyond them (a rectangle off the grid, or smaller than a tile)."""
    boxes = tiles_level0(positions, side, downsample)
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    rx0, ry0 = min(r[0] for r in regions), min(r[1] for r in regions)
    rx1, ry1 = max(r[0] + r[2] for r in regions), max(r[1] + r[3] for r in regions)
    out: dict[str, Any] = {
        "requested": [list(r) for r in regions],
        "tiles_level0": boxes,
        "attacked_box": [x0, y0, x1, y1],
    }
    if (x0, y0, x1, y1) != (rx0, ry0, rx1, ry1):
        out["note"] = (
            f"the rectangle is not whole {side}-pixel tiles of the level: the {len(boxes)} "
            f"tiles that cover it were attacked, level-0 x {x0}..{x1}, y {y0}..{y1} "
            f"(asked for x {rx0}..{rx1}, y {ry0}..{ry1}); the damage is measured over them"
        )
    return out
