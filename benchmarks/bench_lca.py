"""Issue 14, items 7 and 8: what the converging LCA at stride 2 costs.

1. Synthesis (Φa, the transposed strided convolution) in polyphase form against
   ``conv_transpose2d`` (torch's own, the reference) and matmul + ``fold`` (the previous
   implementation), 128 and 512 atoms of 24 x 24 x 3, strides 2 and 4, a 256 x 256 tile.
2. Convergence on held-out tissue with the shipped dictionary: iterations and seconds until
   the energy is within 0.5 % of a 2,000-iteration solve, for the shipped solver (momentum,
   η = 1/τ on the normalised dictionary) against Rozell's plain dynamics (the reference);
   and what the shipped tolerance stops at.
3. The shipped sparse detector's heatmap of a 512 x 512 level-0 region (128 x 128 at level
   2, with its margins; ``--side 1024``: 23 minutes) against the DAE's on the same region
   and against reading it.

Same process, medians of repeats. Run: ``python benchmarks/bench_lca.py [PART...] [--side
N]`` after
``make weights`` (it reads the held-out slide ``build/weights-data/slide21.tif``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _timing import median_time

from napari_cpadv.inference.heatmap import cells_of_box, heatmap
from napari_cpadv.models.lca import LCA
from napari_cpadv.models.weights import resolve
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

ROOT = Path(__file__).resolve().parents[1]
SLIDE = ROOT / "build" / "weights-data" / "slide21.tif"


def _synthesis_row(atoms: int, stride: int, side: int, repeats: int) -> dict:
    lca = LCA(atoms=atoms, size=24, stride=stride)
    d = lca.dictionary.detach()
    x = torch.rand(1, 3, side, side)
    with torch.no_grad():
        a = F.relu(lca.analysis(x) - 0.4)
        _, _, h, w = a.shape

        def fold() -> None:
            cols = d.reshape(atoms, -1).t() @ a.reshape(1, atoms, h * w)
            F.fold(cols, (h * stride, w * stride), 24, padding=lca.padding, stride=stride)

        def transpose() -> None:
            F.conv_transpose2d(a, d, stride=stride, padding=lca.padding)

        t = {
            name: median_time(f, repeats, warm=True)
            for name, f in [
                ("polyphase_s", lambda: lca.synthesis(a)),
                ("conv_transpose2d_s", transpose),
                ("fold_s", fold),
                ("analysis_s", lambda: lca.analysis(x)),
            ]
        }
    t.update(
        atoms=atoms,
        stride=stride,
        side=side,
        speedup_vs_conv_transpose2d=t["conv_transpose2d_s"] / t["polyphase_s"],
        speedup_vs_fold=t["fold_s"] / t["polyphase_s"],
    )
    return t


def bench_synthesis(*, side: int = 256, repeats: int = 5) -> list[dict]:
    return [_synthesis_row(a, s, side, repeats) for a in (128, 512) for s in (2, 4)]


def _tissue_tiles(slide, n: int, side: int, seed: int = 0) -> torch.Tensor:
    """``n`` level-2 tiles of ``side`` pixels whose mean colour is tissue (not glass)."""
    rng = np.random.default_rng(seed)
    h, w = slide.geometry[2].rows, slide.geometry[2].cols
    tiles: list[np.ndarray] = []
    while len(tiles) < n:
        r, c = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
        tile = slide.read_region(2, r, c, side, side)
        if tile.mean() < 200:
            tiles.append(tile)
    return torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).float() / 255


def bench_convergence(*, tiles: int = 1, side: int = 128, long: int = 2000) -> dict:
    det = resolve("sparse", None)
    lca = det.lca
    slide = open_slide(SLIDE)
    x = _tissue_tiles(slide, tiles, side)
    stats = (det.data_mean, det.data_std)
    xs = (x - det.data_mean) / det.data_std
    best = lca.encode(x, stats=stats, iterations=long, tol=0)
    e_best = float(lca.energy(xs, best.codes).mean())
    out: dict = {"tiles": tiles, "side": side, "long_solve_iterations": long, "energy_long": e_best}
    for name, momentum in (("shipped", True), ("plain_lca", False)):
        t = time.perf_counter()
        reached = None
        for code in lca.iterate(x, stats=stats, iterations=long, tol=0, momentum=momentum):
            if float(lca.energy(xs, code.codes).mean()) <= 1.005 * e_best:
                reached = code.iterations
                break
        out[name] = {
            "iterations_to_0.5pct": reached,
            "seconds_to_0.5pct": time.perf_counter() - t if reached else None,
        }
    t = time.perf_counter()
    code = lca.encode(x, stats=stats)
    out["shipped_tolerance"] = {
        "tol": lca.tol,
        "iterations": code.iterations,
        "converged": code.converged,
        "seconds": time.perf_counter() - t,
        "energy_over_best": float(lca.energy(xs, code.codes).mean()) / e_best,
        "sparsity": code.sparsity,
    }
    return out


REGION = 1024  # level-0 pixels (256 x 256 at level 2, with margins): about a minute


def bench_region(*, side: int = REGION, repeats: int = 1) -> dict:
    slide = open_slide(SLIDE)
    cy, cx = 4096, 4096
    half = side // 2
    box = (cy - half, cx - half, cy + half, cx + half)
    out: dict = {"region_level0": side, "level": 2}
    for name in ("sparse", "dae"):
        det = resolve(name, None)
        area = cells_of_box(slide, 2, det.cell, box)

        def run(det=det, area=area) -> None:
            drive(heatmap(det, slide, level=2, scope="region", area=area))

        out[f"{name}_s"] = median_time(run, repeats, warm=name == "dae")
    m = resolve("sparse", None).margin

    def read() -> None:
        r0, c0 = (cy - half) // 4 - m, (cx - half) // 4 - m
        slide.read_region(2, r0, c0, side // 4 + 2 * m, side // 4 + 2 * m)

    out["read_s"] = median_time(read, 5, warm=True)
    out["sparse_over_dae"] = out["sparse_s"] / out["dae_s"]
    out["sparse_over_read"] = out["sparse_s"] / out["read_s"]
    return out


def main() -> None:
    """Print the report as JSON, one part a line as each is measured (so a run cut short
    keeps what it measured); the arguments name the parts to run (default: all)."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    head = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
    }
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("parts", nargs="*", help="synthesis, convergence, region (default: all)")
    ap.add_argument("--side", type=int, default=REGION, help="the region's level-0 side")
    args = ap.parse_args()
    print(json.dumps(head), flush=True)
    parts = {
        "synthesis": bench_synthesis,
        "convergence": bench_convergence,
        "region": lambda: bench_region(side=args.side),
    }
    if set(args.parts) - set(parts):
        ap.error(f"parts are {', '.join(parts)}, not {' '.join(args.parts)}")
    for name in args.parts or list(parts):
        print(json.dumps({name: parts[name]()}, default=float), flush=True)


if __name__ == "__main__":
    main()
