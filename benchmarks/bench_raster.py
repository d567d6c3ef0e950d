"""Rasterising 1,000 tumour polygons of a Camelyon16-sized slide (issue 3).

Ours (``napari_cpadv.annotations.raster``: one vectorised scanline fill per polygon with a
bounding-box cull) against ``skimage.draw.polygon`` called per polygon, on the same grids:
the whole of level 5, and the cell grid of level 2 for one 512 x 512 tile. Same process,
interleaved repeats, medians.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
from skimage.draw import polygon as sk_polygon

from napari_cpadv.annotations.model import Annotation
from napari_cpadv.annotations.raster import Grid, cell_fraction, rasterize

LEVEL0 = (100_000, 200_000)  # rows, cols


def polygons(n: int = 1000, seed: int = 0) -> list[Annotation]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(0, LEVEL0[1]), rng.uniform(0, LEVEL0[0])
        r = rng.uniform(150, 3000)
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        rad = r * (1 + 0.3 * np.sin(3 * t + rng.uniform(0, 6)) + 0.1 * rng.normal(size=64))
        out.append(Annotation(np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)))
    return out


def skimage_mask(anns: list[Annotation], grid: Grid) -> np.ndarray:
    out = np.zeros((grid.rows, grid.cols), np.uint8)
    for a in anns:
        rows = a.exterior[:, 1] / grid.ds[0] - grid.row0 - 0.5
        cols = a.exterior[:, 0] / grid.ds[1] - grid.col0 - 0.5
        rr, cc = sk_polygon(rows, cols, out.shape)
        out[rr, cc] = 1
    return out


def timed(fn, repeats: int = 5) -> tuple[float, np.ndarray]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    anns = polygons()
    level5 = Grid.of_level(LEVEL0, (LEVEL0[0] // 32, LEVEL0[1] // 32))
    ds2 = Grid.of_level(LEVEL0, (LEVEL0[0] // 4, LEVEL0[1] // 4))
    # the 512 x 512 level-2 tile under the centre of the first polygon
    cx, cy = anns[0].exterior.mean(axis=0)
    tile = ds2.window(int(cy / 4) - 256, int(cx / 4) - 256, 512, 512)
    results = {}
    for name, grid, post in (
        ("level 5 mask (3125 x 6250)", level5, lambda m: m),
        ("level 2 cell grid, one 512 tile", tile, cell_fraction),
    ):
        t_ours, m_ours = timed(lambda g=grid, p=post: p(rasterize(anns, g)))
        t_sk, m_sk = timed(lambda g=grid, p=post: p(skimage_mask(anns, g)))
        results[name] = {
            "ours_ms": round(1e3 * t_ours, 2),
            "skimage_ms": round(1e3 * t_sk, 2),
            "ratio_ours_over_skimage": round(t_ours / t_sk, 3),
            "agreement": float((np.asarray(m_ours) == np.asarray(m_sk)).mean()),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
