"""Streaming benchmarks (issue 2). Every figure is a ratio against a reference run in the same run.

(a) random 512 x 512 reads through ``levels[L]`` against raw ``OpenSlide.read_region``;
(b) the reads of a simulated pan with parallel chunk loading against one chunk at a time;
(c) seconds from ``viewer.open`` to the first drawn frame, against the same pyramid handed
    to napari already decoded in memory (needs a display; run under ``xvfb-run``);
(d) peak resident memory opening and reading scattered regions of a Camelyon16-sized
    synthetic slide, against raw OpenSlide doing the same reads (each in a fresh process);
(e) level-0 tiles a second through ``arrays[0]`` (napari's; on the default tile threads
    and on one) and ``levels[0]`` (dask), a block of whole tiles, cold cache, against the
    decode limit: the same tiles' JPEG data read with ``os.pread`` and decoded by
    imagecodecs on two threads (and one), and the plugin's own direct decoder alone.

Usage: ``python benchmarks/bench_streaming.py [--parts a b c d e] [--skip-camelyon]
[--json OUT]``. Slides are made under ``benchmarks/_work/`` on first use (the
Camelyon16-sized one by ``_camelyon.py``, its two finest levels laid from painted tiles:
about two minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _camelyon import make_camelyon

WORK = Path(__file__).resolve().parent / "_work"
MEDIUM = WORK / "medium.tif"
CAMELYON = WORK / "camelyon.tif"


def _ensure(path: Path, **kwargs) -> Path:
    from napari_cpadv.slide.synthetic import make_slide

    WORK.mkdir(exist_ok=True)
    if not path.exists():
        t = time.perf_counter()
        make_slide(path, **kwargs)
        print(f"made {path.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


def _regions(shape, n, size, rng):
    return [
        (int(rng.integers(0, shape[0] - size)), int(rng.integers(0, shape[1] - size)))
        for _ in range(n)
    ]


def bench_warm_reads(path: Path, *, n: int = 60, rounds: int = 5) -> dict:
    """The same 60 regions read again and again, as a viewer does while a user looks around."""
    import openslide

    from napari_cpadv.slide import open_slide

    rng = np.random.default_rng(7)
    slide = open_slide(path)
    osr = openslide.OpenSlide(path)
    regions = _regions(slide.levels[0].shape, n, 512, rng)
    arr = slide.levels[0]
    ours_t, raw_t = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for r, c in regions:
            arr[r : r + 512, c : c + 512].compute()
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        for r, c in regions:
            np.asarray(osr.read_region((c, r), 0, (512, 512)))
        raw_t.append(time.perf_counter() - t)
    o, r = statistics.median(ours_t[1:]), statistics.median(raw_t[1:])
    return {"ours_ms_per_read": 1e3 * o / n, "openslide_ms_per_read": 1e3 * r / n, "ratio": o / r}


def bench_random_reads(path: Path, *, n: int = 60, repeats: int = 3, direct: bool = True) -> dict:
    import openslide

    from napari_cpadv.slide import open_slide

    out = {}
    for level in (0, 1, 2):
        ours_t, raw_t = [], []
        for rep in range(repeats):
            rng = np.random.default_rng(rep * 10 + level)
            slide = open_slide(path, direct=direct)
            slide.cache.clear()
            osr = openslide.OpenSlide(path)  # a fresh handle: a cold OpenSlide cache too
            regions = _regions(slide.levels[level].shape, n, 512, rng)
            ds = slide.downsamples[level]
            arr = slide.levels[level]

            def ours(arr=arr, regions=regions):
                for r, c in regions:
                    arr[r : r + 512, c : c + 512].compute()

            def raw(osr=osr, regions=regions, ds=ds, level=level):
                for r, c in regions:
                    np.asarray(osr.read_region((round(c * ds), round(r * ds)), level, (512, 512)))

            first, second = (ours, raw) if rep % 2 == 0 else (raw, ours)
            for fn in (first, second):
                t = time.perf_counter()
                fn()
                (ours_t if fn is ours else raw_t).append(time.perf_counter() - t)
            slide.cache.clear()
        o, r = statistics.median(ours_t), statistics.median(raw_t)
        out[f"level {level}"] = {
            "ours_ms_per_read": 1e3 * o / n,
            "openslide_ms_per_read": 1e3 * r / n,
            "ratio": o / r,
        }
    return out


def bench_decode_limit(path: Path, *, rows: int = 8, cols: int = 8, repeats: int = 5) -> dict:
    """(e): tiles a second, medians of ``repeats`` interleaved cold runs."""
    from concurrent.futures import ThreadPoolExecutor

    import imagecodecs
    import tifffile

    from napari_cpadv.slide import open_slide

    slide = open_slide(path)
    g = slide.geometry[0]
    r0 = (g.rows // g.tile_rows - rows) // 2
    c0 = (g.cols // g.tile_cols - cols) // 2
    tiles = [(r0 + i, c0 + j) for i in range(rows) for j in range(cols)]
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        offsets, counts, tables = page.dataoffsets, page.databytecounts, page.jpegtables
        across = -(-g.cols // g.tile_cols)
    fd = os.open(path, os.O_RDONLY)

    def limit(threads: int) -> None:
        def one(t: tuple[int, int]) -> np.ndarray:
            i = t[0] * across + t[1]
            return imagecodecs.jpeg8_decode(os.pread(fd, counts[i], offsets[i]), tables=tables)

        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(one, tiles))

    def direct(fresh: Any) -> None:
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda t: fresh.store.direct.read(0, *t), tiles))

    (ra, ca), th, tw = tiles[0], g.tile_rows, g.tile_cols
    block = (slice(ra * th, (ra + rows) * th), slice(ca * tw, (ca + cols) * tw))

    def ours(fresh: Any) -> None:
        fresh.levels[0][block].compute()

    def napari(fresh: Any) -> None:
        # what the reader hands napari, without its reading ahead (slide.prefetch), which
        # would decode the tiles around the block beside the timed read
        from napari_cpadv.slide.pixels import LevelArray

        np.asarray(LevelArray(fresh.read_region, 0, fresh.geometry[0])[block])

    fns = {"arrays[0] (napari's)": napari, "arrays[0], one tile thread": napari,
           "levels[0] (dask)": ours,
           "direct decoder, 2 threads": direct,
           "limit, 2 threads": lambda _: limit(2),
           "limit, 1 thread": lambda _: limit(1)}  # fmt: skip
    runs: dict[str, list[float]] = {name: [] for name in fns}
    try:
        for rep in range(repeats):
            names = list(fns) if rep % 2 == 0 else list(fns)[::-1]
            for name in names:
                # opened (and probed) outside the timing
                fresh = open_slide(path, workers=1 if "one tile thread" in name else None)
                fresh.cache.clear()
                t = time.perf_counter()
                fns[name](fresh)
                runs[name].append(time.perf_counter() - t)
                fresh.cache.clear()
    finally:
        os.close(fd)
    rate = {name: len(tiles) / statistics.median(ts) for name, ts in runs.items()}
    return {
        "tiles": len(tiles),
        "tiles_per_s": rate,
        "arrays0_over_limit_2_threads": rate["arrays[0] (napari's)"] / rate["limit, 2 threads"],
        "levels0_over_limit_2_threads": rate["levels[0] (dask)"] / rate["limit, 2 threads"],
    }


def bench_pan(
    path: Path, *, view=(1080, 1920), step: int = 768, steps: int = 12, direct: bool = True
) -> dict:
    import dask

    from napari_cpadv.slide import open_slide

    def pan(workers: int | None, scheduler: str) -> float:
        slide = open_slide(path, workers=workers, direct=direct)
        slide.cache.clear()
        arr = slide.levels[0]
        r0 = (arr.shape[0] - view[0]) // 2
        t = time.perf_counter()
        with dask.config.set(scheduler=scheduler):
            for k in range(steps):
                c = min(k * step, arr.shape[1] - view[1])
                arr[r0 : r0 + view[0], c : c + view[1]].compute()
        slide.cache.clear()
        return time.perf_counter() - t

    par, ser = [], []
    for rep in range(3):
        order = [("par", None, "threads"), ("ser", 1, "synchronous")]
        for name, workers, sched in order if rep % 2 == 0 else order[::-1]:
            (par if name == "par" else ser).append(pan(workers, sched))
    p, s = statistics.median(par), statistics.median(ser)
    return {
        "view": list(view),
        "steps": steps,
        "step_px": step,
        "parallel_s": p,
        "one_at_a_time_s": s,
        "speedup": s / p,
    }


FIRST_FRAME = r"""
import sys, time, json
import numpy as np, napari
from qtpy.QtWidgets import QApplication
path, mode = sys.argv[1], sys.argv[2]
viewer = napari.Viewer(show=False)
def pink():
    shot = viewer.screenshot(canvas_only=False, flash=False)[..., :3].reshape(-1, 3).astype(int)
    return ((shot[:, 0] - shot[:, 1] > 30) & (shot[:, 2] - shot[:, 1] > 20)).mean() > 0.05
if mode == "memory":
    from napari_cpadv.slide import open_slide
    data = [np.asarray(level) for level in open_slide(path).levels]
t = time.perf_counter()
if mode == "memory":
    viewer.add_image(data, multiscale=True, rgb=True, scale=(0.243, 0.243))
else:
    viewer.open(path, plugin="napari-cpadv")
viewer.reset_view()
while not pink():
    QApplication.processEvents()
print(json.dumps(time.perf_counter() - t))
"""


def bench_first_frame(path: Path, repeats: int = 3) -> dict | None:
    if not os.environ.get("DISPLAY"):
        return None
    times: dict[str, list[float]] = {"reader": [], "memory": []}
    for rep in range(repeats):
        for mode in ("reader", "memory") if rep % 2 == 0 else ("memory", "reader"):
            proc = subprocess.run(
                [sys.executable, "-c", FIRST_FRAME, str(path), mode],
                capture_output=True,
                text=True,
                check=True,
            )
            times[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    r, m = statistics.median(times["reader"]), statistics.median(times["memory"])
    return {"reader_s": r, "in_memory_s": m, "ratio": r / m}


PEAK = r"""
import sys, json
import numpy as np
path, mode = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
if mode == "ours":
    from napari_cpadv.slide import open_slide
    s = open_slide(path)
    shapes = [a.shape for a in s.levels]
    def read(level, r, c):
        s.levels[level][r:r + 512, c:c + 512].compute()
else:
    import openslide
    o = openslide.OpenSlide(path)
    shapes = [(h, w) for (w, h) in o.level_dimensions]
    def read(level, r, c):
        ds = o.level_downsamples[level]
        np.asarray(o.read_region((round(c * ds), round(r * ds)), level, (512, 512)))
for level in (0, 0, 0, 1, 2, 3):
    h, w = shapes[level][:2]
    for _ in range(100):
        read(level, int(rng.integers(0, h - 512)), int(rng.integers(0, w - 512)))
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the parent's peak
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps(int(hwm) / 1024))
"""


def bench_peak_memory(path: Path) -> dict:
    out = {}
    for mode in ("ours", "openslide"):
        proc = subprocess.run(
            [sys.executable, "-c", PEAK, str(path), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        out[f"{mode}_peak_rss_mb"] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["ratio"] = out["ours_peak_rss_mb"] / out["openslide_peak_rss_mb"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--parts", nargs="+", default=list("abcd"), choices=list("abcde"),
        help="the rows to measure (default a-d; e: decoding against its limit)",
    )  # fmt: skip
    parser.add_argument("--skip-camelyon", action="store_true", help="leave out (d)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    parts = set(args.parts) - ({"d"} if args.skip_camelyon else set())
    medium = _ensure(MEDIUM, shape=(12_000, 16_000), seed=21)
    results: dict = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    if "a" in parts:
        results["a_random_reads"] = bench_random_reads(medium)
        results["a_random_reads_openslide_decoding"] = bench_random_reads(medium, direct=False)
        results["a_warm_rereads_level0"] = bench_warm_reads(medium)
    if "b" in parts:
        results["b_pan"] = bench_pan(medium)
        results["b_pan_openslide_decoding"] = bench_pan(medium, direct=False)
    if "c" in parts:
        results["c_first_frame"] = bench_first_frame(
            Path(__file__).resolve().parents[1] / "sample_data" / "synthetic_he.tif"
        )
    if "d" in parts:
        camelyon = make_camelyon(CAMELYON)  # levels 0-1 laid from painted tiles
        results["d_peak_memory"] = bench_peak_memory(camelyon)
    if "e" in parts:
        results["e_decode_limit"] = bench_decode_limit(medium)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
