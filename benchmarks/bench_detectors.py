"""Issue 4: detectors over slides.

1. Heatmap throughput against reading the same tiles (with the same margins) and nothing
   else: how close inference stays to I/O, per detector, 512-pixel blocks at level 2.
2. One LCA iteration against the two convolutions it is made of (analysis Φᵀr as a
   strided conv2d, synthesis Φa as matmul + fold), and against conv_transpose2d.
3. ``cpadv heatmap`` on dask.distributed with 1 and 2 worker processes.
4. On CUDA only: tiles per second for each detector at 512 x 512.

Same process, interleaved repeats, medians. Run: ``python benchmarks/bench_detectors.py``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from napari_cpadv.inference.batch import Job, batch_heatmaps
from napari_cpadv.inference.heatmap import cell_shape, run_windows, windows
from napari_cpadv.models.detector import make
from napari_cpadv.models.weights import resolve, shipped
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

WORK = Path(__file__).parent / "_work"
SLIDE = Path(__file__).resolve().parents[1] / "build" / "weights-data" / "slide21.tif"


def _median(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
        t_io.append(_median(io, 1))
        t_inf.append(_median(infer, 1))
    pixels = sum(w.rows * w.cols for w in todo) * c * c
    return {
        "detector": name,
        "blocks": len(todo),
        "io_mpx_s": pixels / statistics.median(t_io) / 1e6,
        "heatmap_mpx_s": pixels / statistics.median(t_inf) / 1e6,
        "heatmap_over_io_time": statistics.median(t_inf) / statistics.median(t_io),
    }


def bench_lca_iteration(
    *, atoms: int = 512, size: int = 24, side: int = 512, repeats: int = 5
) -> dict:
    det = make("sparse", atoms=atoms, size=size)
    lca = det.lca
    x = torch.rand(1, 3, side, side)
    b = lca.analysis(x)
    a = F.relu(b - 0.5)
    u = b.clone()
    eta = lca.step()

    def iteration() -> None:
        with torch.no_grad():
            lca.threshold(u + eta * (b - lca.analysis(lca.synthesis(a)) + a - u))

    def two_convs() -> None:
        with torch.no_grad():
            lca.analysis(lca.synthesis(a))

    def conv_transpose() -> None:
        with torch.no_grad():
            F.conv_transpose2d(a, lca.dictionary, stride=lca.stride, padding=lca.padding)

    def analysis() -> None:
        with torch.no_grad():
            lca.analysis(x)

    iteration(), two_convs(), conv_transpose()
    res = {
        k: _median(f, repeats)
        for k, f in [
            ("iteration_s", iteration),
            ("two_convs_s", two_convs),
            ("conv_transpose_s", conv_transpose),
            ("analysis_s", analysis),
        ]
    }
    res["iteration_over_two_convs"] = res["iteration_s"] / res["two_convs_s"]
    res["fold_synthesis_speedup_vs_conv_transpose"] = res["conv_transpose_s"] / (
        res["two_convs_s"] - res["analysis_s"]
    )
    res.update(atoms=atoms, size=size, side=side)
    return res


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
        "heatmap_vs_io": [bench_heatmap_vs_io(n) for n in ("dae", "sparse")],
        "lca_iteration": bench_lca_iteration(),
        "distributed": bench_distributed(),
        "gpu_tiles_per_s": bench_gpu(),
    }
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
