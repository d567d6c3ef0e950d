"""A Camelyon16-sized painted slide for the benchmarks, written in a few minutes.

``make_slide`` paints every tile of every level; at 100,000 x 200,000 pixels that is about
26 minutes on 2 cores, which alone spent half of ``make bench``'s hour (issue 32). The
tables that read this slide (streaming row (d): peak memory; viewer (f'): panning) measure
how tiles are fetched, decoded and cached, not what they show, so here the two finest
levels (94 % of the pixels) are laid from a pool of tiles painted from the same scene, and
the coarser levels (downsample 4 and up) are painted whole as ``make_slide`` paints them.
A level-0 or level-1 tile is tissue where the painted coarsest level shows tissue under
it, and then is one of the pool's tissue tiles (chosen by its position); the rest is the
one background tile, as in ``make_slide``. The pixels of the two finest levels therefore
repeat and do not join at tile edges: a benchmark fixture, not a slide to look at (its
TIFF description says so).

Usage from a benchmark: ``make_camelyon(path)``; ``python benchmarks/_camelyon.py PATH``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from napari_cpadv.files import replacing
from napari_cpadv.slide._paint import render_tile
from napari_cpadv.slide.synthetic import (
    BACKGROUND,
    DEFAULT_MPP,
    PAINTED,
    TILE,
    _build_scene,
    _encode_tile,
    _init_worker,
    _level_shape,
    default_downsamples,
)

SHAPE = (100_000, 200_000)
POOL = 48  # painted tissue tiles per laid level
LAID = 2  # the finest levels laid from the pool (downsamples 1 and 2)


def _coarse_tissue(scene, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The tissue mask of a painted level about 1,000 pixels across, and its downsample."""
    ds = max(shape) / 1000
    ls = (int(shape[0] / ds), int(shape[1] / ds))
    img = render_tile(scene, ls, 0, 0, ls[0], ls[1])
    if img is None:
        return np.zeros(ls, bool), ds
    return np.any(img != np.asarray(BACKGROUND, np.uint8), axis=-1), ds


def _footprint(mask: np.ndarray, mds: float, ds: int, r: int, c: int) -> np.ndarray:
    """The coarse mask under the level-``ds`` tile whose corner is ``(r, c)``."""
    r0, c0 = int(r * ds / mds), int(c * ds / mds)
    r1, c1 = int(np.ceil((r + TILE) * ds / mds)), int(np.ceil((c + TILE) * ds / mds))
    return mask[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)]


def make_camelyon(
    path: Path, *, shape: tuple[int, int] = SHAPE, seed: int = 16, quality: int = 90
) -> Path:
    import imagecodecs
    import tifffile

    if path.exists():
        return path
    t = time.perf_counter()
    scene = _build_scene(shape, seed, DEFAULT_MPP, n_tumours=None, n_foci=1, tissue_fraction=0.15)
    _init_worker(scene)
    mask, mds = _coarse_tissue(scene, shape)
    background = bytes(
        imagecodecs.jpeg8_encode(np.full((TILE, TILE, 3), BACKGROUND, np.uint8), level=quality)
    )
    rows, cols = shape
    downsamples = default_downsamples(shape)
    workers = max(1, os.cpu_count() or 1)
    with (
        ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(scene,)) as painters,
        replacing(path) as tmp,
        tifffile.TiffWriter(tmp, bigtiff=True) as tw,
    ):
        for i, ds in enumerate(downsamples):
            ls = _level_shape(shape, ds)
            corners = [(r, c) for r in range(0, ls[0], TILE) for c in range(0, ls[1], TILE)]
            tiles: Iterator[bytes | None]
            if i < LAID:
                inside = [rc for rc in corners if _footprint(mask, mds, ds, *rc).all()]
                step = max(1, len(inside) // POOL)
                pool = [_encode_tile((ls, r, c, TILE, quality)) for r, c in inside[::step][:POOL]]
                pool = [b for b in pool if b is not None]

                def laid(corners=corners, ds=ds, pool=pool) -> Iterator[bytes | None]:
                    for r, c in corners:
                        if _footprint(mask, mds, ds, r, c).any():
                            yield pool[(r // TILE * 7919 + c // TILE * 104729) % len(pool)]
                        else:
                            yield None

                tiles = laid()
            else:
                jobs = [(ls, r, c, TILE, quality) for r, c in corners]
                tiles = painters.map(_encode_tile, jobs, chunksize=16)
            tw.write(
                (b if b is not None else background for b in tiles),
                shape=(ls[0], ls[1], 3),
                dtype=np.uint8,
                tile=(TILE, TILE),
                compression="jpeg",
                photometric="rgb",
                subfiletype=1 if i else 0,
                description=f"{PAINTED}, seed {seed}; benchmark fixture: levels 0-1 laid "
                "from a pool of painted tiles"
                if i == 0
                else None,
                software="napari-cpadv",
                metadata=None,
                resolution=(1e4 / (DEFAULT_MPP * cols / ls[1]), 1e4 / (DEFAULT_MPP * rows / ls[0])),
                resolutionunit="CENTIMETER",
            )
    print(f"made {path.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


if __name__ == "__main__":
    make_camelyon(Path(sys.argv[1]))
