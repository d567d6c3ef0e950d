"""Issue 4: detectors over slides.

1. Heatmap throughput against reading the same tiles (with the same margins) and nothing
   else: how close inference stays to I/O, per detector, 512-pixel blocks at level 2.
2. ``cpadv heatmap`` on dask.distributed with 1 and 2 worker processes.
3. On CUDA only: tiles per second for each detector at 512 x 512.

The LCA's own costs (synthesis, convergence, stride 2) are in ``bench_lca.py``. Same
process, interleaved repeats, medians. Run: ``python benchmarks/bench_detectors.py``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import torch
from _timing import median_time

from napari_cpadv.inference.batch import Job, batch_heatmaps
from napari_cpadv.inference.heatmap import cell_shape, run_windows, windows
from napari_cpadv.models.weights import resolve, shipped
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

WORK = Path(__file__).parent / "_work"
SLIDE = Path(__file__).resolve().parents[1] / "build" / "weights-data" / "slide21.tif"


def bench_heatmap_vs_io(name: str, *, level: int = 2, blocks: int = 6, repeats: int = 3) -> dict:
    slide = open_slide(SLIDE)
    det = resolve(name, None)
    shape = cell_shape(slide, level, det.cell)
    block = 512 // det.cell
    todo = windows(shape, block=block)[:blocks]
    m, c = det.margin, det.cell

    def io() -> None:
        for w in todo:
            slide.read_region(
                level, w.row * c - m, w.col * c - m, w.rows * c + 2 * m, w.cols * c + 2 * m
            )

    def infer() -> None:
        for _ in run_windows(det, slide, level, todo):
            pass

    io(), infer()  # warm the tile cache and torch
    t_io, t_inf = [], []
    for _ in range(repeats):
        t_io.append(median_time(io, 1))
        t_inf.append(median_time(infer, 1))
    pixels = sum(w.rows * w.cols for w in todo) * c * c
    return {
        "detector": name,
        "blocks": len(todo),
        "io_mpx_s": pixels / statistics.median(t_io) / 1e6,
        "heatmap_mpx_s": pixels / statistics.median(t_inf) / 1e6,
        "heatmap_over_io_time": statistics.median(t_inf) / statistics.median(t_io),
    }


def bench_distributed(name: str = "dae", *, level: int = 1) -> dict:
    out = {}
    for workers in (1, 2):
        t = time.perf_counter()
        drive(
            batch_heatmaps(
                [Job(SLIDE, WORK / f"bench_{workers}.zarr")],
                detector=name,
                weights=None,
                level=level,
                scope="tissue",
                workers=workers,
                device="cpu",
            )
        )
        out[f"workers_{workers}_s"] = time.perf_counter() - t
    out["speedup_2_over_1"] = out["workers_1_s"] / out["workers_2_s"]
    out.update(detector=name, level=level)
    return out


def bench_gpu(repeats: int = 10) -> dict:
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    res = {}
    for name in ("dae", "sparse", "resnet18"):
        det = resolve(name, None).cuda()
        side = 224 if name == "resnet18" else 512
        x = torch.rand(16, 3, side, side, device="cuda")
        with torch.no_grad():
            det.tumour_logits(x)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(repeats):
                det.tumour_logits(x)
            torch.cuda.synchronize()
        res[name] = 16 * repeats / (time.perf_counter() - t)
    return res


def main() -> None:
    WORK.mkdir(exist_ok=True)
    shipped("dae")
    torch.set_num_threads(torch.get_num_threads())
    report = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        # the sparse coder runs LCA to convergence: about 15 s a 128-pixel tile here, so
        # one 512-pixel block once (six blocks three times would take over an hour)
        "heatmap_vs_io": [
            bench_heatmap_vs_io("dae"),
            bench_heatmap_vs_io("sparse", blocks=1, repeats=1),
        ],
        "distributed": bench_distributed(),
        "gpu_tiles_per_s": bench_gpu(),
    }
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
