"""Attacks on dask.distributed (issue 18, item 3): tiles per second of one region attack in
this process (the reference) and on a LocalCluster of 1 and 2 workers, side by side in one
run, every run writing the same adversarial slide (checked).

Data: `make weights`' held-out slide (build/weights-data/slide21.tif, 8,192 x 8,192); the
shipped DAE; iterative FGSM (L2 25 over the tile) with
``--steps`` steps at level 2 on 256-pixel tiles, two tiles a chunk. A cluster's time
includes starting it and its workers' first imports; its start alone (a LocalCluster
started and closed, no work) is printed too, and every run's rate after its first chunk is
written (the steady state). Prints one JSON object a line.

With ``--table1a``, the same comparison for the reproduction's heaviest step instead:
seed 001's Table 1a cross-validation (``experiments.crossval``, one fold a task, as
``cpadv reproduce --workers N`` runs it) on the patches `make weights` cut from its five
training slides, checked to give the same folds.

    python benchmarks/bench_cluster.py [--tiles 16] [--steps 10]
    python benchmarks/bench_cluster.py --table1a [--runs 2] [--folds 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _timing import run_header

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _slide() -> Path:
    held_out = ROOT / "build" / "weights-data" / "slide21.tif"
    if not held_out.exists():
        sys.exit(f"{held_out}: missing; `make weights` paints it")
    return held_out


def _pyramid(path: Path) -> list[np.ndarray]:
    from napari_cpadv.slide.delta import open_delta

    d = open_delta(path)
    return [d.read_region(k, 0, 0, g.rows, g.cols) for k, g in enumerate(d.geometry)]


def table1a(args: argparse.Namespace) -> None:
    """Table 1a's folds per minute in this process and on LocalClusters."""
    from napari_cpadv.experiments.crossval import cross_validate
    from napari_cpadv.inference.cluster import Cluster
    from napari_cpadv.models.data import load_tiles
    from napari_cpadv.progress import drive

    folders = sorted((ROOT / "build" / "weights-data").glob("patches1?"))
    if not folders:
        sys.exit("build/weights-data/patches1?: missing; `make weights` writes them")
    data = load_tiles([str(f) for f in folders])
    sizes = {"runs": args.runs, "folds": args.folds, "width": 16, "epochs": args.epochs}
    print(json.dumps(run_header(patches=len(data.patch_labels()[1]), **sizes)), flush=True)
    runs = {
        "one process": None,
        "LocalCluster 1 worker x 2 threads": Cluster(workers=1, threads=2),
        "LocalCluster 2 workers x 1 thread": Cluster(workers=2, threads=1),
    }
    reference, base = None, None
    for name, cluster in runs.items():
        t0 = time.perf_counter()
        out = drive(cross_validate(data, **sizes, batch=16, cluster=cluster))
        seconds = time.perf_counter() - t0
        rate = len(out["per_fold"]) * 60 / seconds
        if reference is None:
            reference, base = out["per_fold"], rate
        row = {"run": name, "folds": len(out["per_fold"]), "seconds": seconds,
               "folds_per_min": rate, "ratio_to_one_process": rate / base,
               "same_folds_as_one_process": out["per_fold"] == reference,
               "max_difference": {m: max(abs(a[m] - b[m]) for a, b in
                                         zip(out["per_fold"], reference, strict=True))
                                  for m in ("accuracy", "aucroc")}}  # fmt: skip
        print(json.dumps(row), flush=True)


def main() -> None:
    from napari_cpadv.attacks.base import AttackSpec
    from napari_cpadv.attacks.projections import Budget
    from napari_cpadv.experiments.regions import attack_region
    from napari_cpadv.inference.cluster import Cluster, client
    from napari_cpadv.models.weights import resolve
    from napari_cpadv.progress import drive

    ap = argparse.ArgumentParser()
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--table1a", action="store_true", help="Table 1a's folds instead")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    if args.table1a:
        return table1a(args)
    slide = _slide()
    print(json.dumps(run_header(slide=slide.name, tiles=args.tiles, steps=args.steps)), flush=True)
    spec = AttackSpec("fgsm", Budget("l2", 25.0), 2, steps=args.steps, tile=256)
    side0 = 256 * 4  # a level-2 tile in level-0 pixels
    per_row = 4
    rows = -(-args.tiles // per_row)
    region = (2048, 2048, per_row * side0, rows * side0)
    detector = resolve("dae", None)
    t0 = time.perf_counter()
    with client(Cluster(workers=2)):
        pass
    print(json.dumps({"localcluster_start_close_s": time.perf_counter() - t0}), flush=True)
    runs = {
        "one process": None,
        "LocalCluster 1 worker x 2 threads": Cluster(workers=1, threads=2),
        "LocalCluster 2 workers x 1 thread": Cluster(workers=2, threads=1),
    }
    tmp = Path(tempfile.mkdtemp())
    reference = None
    base = None
    steady_base = None
    try:
        for name, cluster in runs.items():
            out = tmp / f"{len(name)}-{id(cluster)}.delta.zarr"
            t0 = time.perf_counter()
            first: list[tuple[float, int]] = []  # when the first chunk was written, its tiles

            def seen(p: Any, first: list[tuple[float, int]] = first) -> None:
                if not first and p.payload.get("tiles", 0) > 0:
                    first.append((time.perf_counter(), p.payload["tiles"]))

            report = drive(
                attack_region(
                    slide, detector, spec, region=region, out=out, batch=2, cluster=cluster,
                    device="cpu",
                ),
                seen,
            )  # fmt: skip
            end = time.perf_counter()
            seconds = end - t0
            rate = report["tiles"] / seconds
            steady = (report["tiles"] - first[0][1]) / (end - first[0][0])
            pyramid = _pyramid(out)
            if reference is None:
                reference, base = pyramid, rate
            same = all(np.array_equal(a, b) for a, b in zip(pyramid, reference, strict=True))
            if steady_base is None:
                steady_base = steady
            row = {"run": name, "tiles": report["tiles"], "seconds": seconds,
                   "tiles_per_s": rate, "ratio_to_one_process": rate / base,
                   "after_first_chunk_tiles_per_s": steady,
                   "after_first_chunk_ratio": steady / steady_base,
                   "same_slide_as_one_process": same}  # fmt: skip
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
