"""Deterministic synthetic H&E slides with known tumour polygons and nuclei.

The painter is a pure function of the seed, the slide's shape and its resolution,
evaluated tile by tile at any pyramid level, so a Camelyon16-sized slide
(about 100,000 x 200,000 pixels) is written as a stream of tiles without ever
being held in memory.

What it paints
--------------
* A near-white background that fails seed 000's hue rule.
* Irregular tissue sections (star-shaped blobs) of pink eosin stroma with a soft
  texture, which (with their nuclei) pass the hue rule.
* Nuclei on a jittered lattice of cells ``CELL_UM`` micrometres apart. Normal tissue:
  small (2.4-3.2 µm radius), round, dark, evenly stained, present in about half the
  cells. Tumour: large (3.8-6 µm), crowded (nearly every cell), pleomorphic (elongated,
  varied in size and orientation), pale with coarse dark chromatin clumps and a dark
  rim, in slightly pinker cytoplasm. Tumour and normal tissue differ by morphology,
  not by a flat colour, so a detector has real work to do.
* Tumour regions (returned as polygons, some with holes of normal tissue) and,
  optionally, small unannotated tumour foci, as Camelyon16's label noise.
* Stain variation per seed (haematoxylin and eosin strengths).

Files are generic tiled TIFFs: 512-pixel JPEG tiles, one top-level page per level
(``subfiletype=1`` below level 0; OpenSlide ignores SubIFD pyramids) and the µm per
pixel in the resolution tags.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.files import replacing, write_json
from napari_cpadv.slide._paint import _nuclei, render_tile
from napari_cpadv.slide._scene import (  # noqa: F401 (the scene's names, read here)
    BACKGROUND,
    CELL_UM,
    Polygon,
    _build_scene,
    _Scene,
)

DEFAULT_MPP = 0.243
TILE = 512


@dataclass(frozen=True)
class SyntheticSlide:
    """What :func:`make_slide` painted.

    Attributes
    ----------
    path
        The TIFF written.
    shape
        ``(rows, cols)`` of level 0.
    mpp
        Micrometres per level-0 pixel (``None`` when the file records none; painted at 0.25).
    downsamples
        Integer downsample of each level.
    tissue
        Outlines of the tissue sections.
    tumours
        The annotated tumour regions (ground truth), with holes.
    foci
        Tumour painted but left out of ``tumours`` (label noise).
    nuclei
        Every nucleus: structured array with ``x``, ``y`` (level-0 pixels), ``radius``
        (level-0 pixels, the mean semi-axis) and ``tumour`` (bool).
    """

    path: Path
    shape: tuple[int, int]
    seed: int
    mpp: float | None
    downsamples: tuple[int, ...]
    tissue: tuple[Polygon, ...]
    tumours: tuple[Polygon, ...]
    foci: tuple[Polygon, ...]
    nuclei: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The truth as JSON: polygons and nuclei in level-0 pixels, ``(x, y)``."""
        n = self.nuclei
        return {
            "slide": self.path.name,
            "coordinates": "level-0 pixels, (x, y), origin top-left",
            "shape": list(self.shape),
            "seed": self.seed,
            "mpp": self.mpp,
            "downsamples": list(self.downsamples),
            "tissue": [p.to_json() for p in self.tissue],
            "tumours": [p.to_json() for p in self.tumours],
            "unannotated_foci": [p.to_json() for p in self.foci],
            "nuclei": {
                "x": np.round(n["x"], 1).tolist(),
                "y": np.round(n["y"], 1).tolist(),
                "radius": np.round(n["radius"], 2).tolist(),
                "tumour": n["tumour"].astype(int).tolist(),
            },
        }

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` atomically; returns the path."""
        return write_json(path, self.to_json(), indent=None)


# -- the shipped sample -------------------------------------------------------------------

PAINTED = "napari-cpadv synthetic H&E"  # the start of a painted slide's TIFF description


def is_painted(slide: Any) -> bool:
    """Whether ``slide`` (a ``Slide``) was painted by this module, not scanned tissue."""
    return str(slide.properties.get("tiff.ImageDescription", "")).startswith(PAINTED)


SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
SAMPLE_NAME = "synthetic_he.tif"
SAMPLE_SHAPE = (3000, 4000)
SAMPLE_SEED = 7


def sample_slide_path() -> Path:
    """The shipped sample slide; regenerated into the user cache when the checkout lacks it."""
    shipped = SAMPLE_DATA / SAMPLE_NAME
    if shipped.is_file():
        return shipped
    from platformdirs import user_cache_dir

    cached = Path(user_cache_dir("napari-cpadv")) / SAMPLE_NAME
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        truth = make_slide(cached, shape=SAMPLE_SHAPE, seed=SAMPLE_SEED)
        truth.write_json(cached.with_suffix(".truth.json"))
    return cached


# -- the scene ---------------------------------------------------------------------------


# -- writing -----------------------------------------------------------------------------


def default_downsamples(shape: tuple[int, int]) -> tuple[int, ...]:
    """Powers of two until the level's longer side is at most 1024 pixels."""
    ds = [1]
    while max(shape) / ds[-1] > 1024:
        ds.append(ds[-1] * 2)
    return tuple(ds)


def _level_shape(shape: tuple[int, int], ds: int) -> tuple[int, int]:
    return (max(1, shape[0] // ds), max(1, shape[1] // ds))


_worker_scene: _Scene | None = None


def _init_worker(scene: _Scene) -> None:
    global _worker_scene
    _worker_scene = scene


def _encode_tile(
    job: tuple[tuple[int, int], int, int, int, int], scene: _Scene | None = None
) -> bytes | None:
    """One JPEG tile of the painting: of ``scene``, or in a painting process of the scene
    its initialiser set."""
    import imagecodecs

    level_shape, row0, col0, tile, quality = job
    scene = scene or _worker_scene
    assert scene is not None
    rows = min(tile, level_shape[0] - row0)
    cols = min(tile, level_shape[1] - col0)
    img = render_tile(scene, level_shape, row0, col0, rows, cols)
    if img is None:
        return None
    if (rows, cols) != (tile, tile):
        full = np.empty((tile, tile, 3), np.uint8)
        full[...] = BACKGROUND
        full[:rows, :cols] = img
        img = full
    return bytes(imagecodecs.jpeg8_encode(img, level=quality))


def make_slide(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int],
    seed: int = 0,
    mpp: float | None = DEFAULT_MPP,
    downsamples: Sequence[int] | None = None,
    tile: int = TILE,
    quality: int = 90,
    n_tumours: int | None = None,
    n_foci: int = 1,
    tissue_fraction: float = 0.35,
    workers: int | None = None,
) -> SyntheticSlide:
    """Paint a synthetic H&E slide and write it as a pyramidal tiled TIFF.

    Parameters
    ----------
    path
        The ``.tif`` to write (written to a temporary name, then moved into place).
    shape
        ``(rows, cols)`` of level 0, in pixels.
    seed
        Same seed, same slide (pixels, polygons and nuclei).
    mpp
        Micrometres per level-0 pixel, written to the resolution tags; ``None`` writes
        none (the painting then assumes 0.25 µm per pixel).
    downsamples
        Integer downsample of each level, starting at 1; default powers of two until the
        longer side is at most 1024 pixels. Level sizes are floored, so odd sizes give
        downsamples that are not exact powers of two.
    tile
        Tile size in pixels (a multiple of 16).
    quality
        JPEG quality.
    n_tumours, n_foci
        Annotated tumour regions (default by area) and unannotated foci.
    tissue_fraction
        Rough fraction of the slide covered by tissue.
    workers
        Processes painting tiles; default every core: threads for small slides (under 400
        tiles, where a process's start-up would cost more than it paints; the painter's
        numpy work runs beside the GIL: 2.2 s -> 1.2 s for a 2,048-pixel slide on 2 cores,
        the same bytes), processes for large ones. ``1``: no pool.

    Returns
    -------
    SyntheticSlide
        The polygons and nuclei painted.
    """
    rows, cols = (int(shape[0]), int(shape[1]))
    ds_list = _checked(path, (rows, cols), mpp, tile, downsamples)
    scene = _build_scene(
        (rows, cols),
        seed,
        mpp or 0.25,
        n_tumours=n_tumours,
        n_foci=n_foci,
        tissue_fraction=tissue_fraction,
    )
    out = Path(path)
    levels = [_level_shape((rows, cols), d) for d in ds_list]
    n_tiles = sum(math.ceil(ls[0] / tile) * math.ceil(ls[1] / tile) for ls in levels)
    threads = workers is None and n_tiles < 400
    workers = max(1, os.cpu_count() or 1) if workers is None else workers
    pool: Executor | None = None
    if workers > 1:
        pool = (
            ThreadPoolExecutor(workers)
            if threads
            else ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(scene,))
        )
    try:
        encode = (
            _encode_tile
            if isinstance(pool, ProcessPoolExecutor)
            else partial(_encode_tile, scene=scene)
        )
        _write_pyramid(out, levels, (rows, cols), seed, mpp, tile, quality, pool, encode)
    finally:
        if pool is not None:
            pool.shutdown()
    return SyntheticSlide(
        path=out,
        shape=(rows, cols),
        seed=seed,
        mpp=mpp,
        downsamples=ds_list,
        tissue=tuple(b.polygon for b in scene.tissue),
        tumours=tuple(b.polygon for b in scene.tumours),
        foci=tuple(b.polygon for b in scene.foci),
        nuclei=_nuclei(scene),
    )


def _checked(
    path: str | os.PathLike[str],
    shape: tuple[int, int],
    mpp: float | None,
    tile: int,
    downsamples: Sequence[int] | None,
) -> tuple[int, ...]:
    """The levels' downsamples, once the request is known to make sense."""
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{path}: shape must be positive, got {shape}")
    if mpp is not None and not mpp > 0:
        raise ValueError(f"{path}: mpp must be positive, got {mpp}")
    if tile % 16:
        raise ValueError(f"{path}: tile size must be a multiple of 16, got {tile}")
    ds_list = tuple(int(d) for d in (downsamples or default_downsamples(shape)))
    if ds_list[0] != 1 or any(b <= a for a, b in itertools.pairwise(ds_list)):
        raise ValueError(f"{path}: downsamples must start at 1 and increase, got {ds_list}")
    return ds_list


def _write_pyramid(
    out: Path,
    levels: list[tuple[int, int]],
    shape: tuple[int, int],
    seed: int,
    mpp: float | None,
    tile: int,
    quality: int,
    pool: Executor | None,
    encode: Any,
) -> None:
    """Every level as one top-level page of JPEG tiles (an all-background tile encoded
    once), written to a temporary and moved into place."""
    import imagecodecs
    import tifffile

    rows, cols = shape
    background = bytes(
        imagecodecs.jpeg8_encode(np.full((tile, tile, 3), BACKGROUND, np.uint8), level=quality)
    )
    bigtiff = rows * cols * 3 * 1.4 > 2**31
    with replacing(out) as tmp, tifffile.TiffWriter(tmp, bigtiff=bigtiff) as tw:
        for i, ls in enumerate(levels):
            jobs = [
                (ls, r, c, tile, quality)
                for r in range(0, ls[0], tile)
                for c in range(0, ls[1], tile)
            ]
            encoded: Iterator[bytes | None] = (
                pool.map(encode, jobs, chunksize=16) if pool else map(encode, jobs)
            )
            res: dict[str, Any] = {}
            if mpp is not None:
                res = {
                    "resolution": (1e4 / (mpp * cols / ls[1]), 1e4 / (mpp * rows / ls[0])),
                    "resolutionunit": "CENTIMETER",
                }
            tw.write(
                (b if b is not None else background for b in encoded),
                shape=(ls[0], ls[1], 3),
                dtype=np.uint8,
                tile=(tile, tile),
                compression="jpeg",
                photometric="rgb",
                subfiletype=1 if i else 0,
                description=f"{PAINTED}, seed {seed}" if i == 0 else None,
                software="napari-cpadv",
                metadata=None,
                **res,
            )
