"""Slides: one lazy dask array per pyramid level, backed by :mod:`napari_cpadv.slide.store`."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_cpadv.errors import SlideError
from napari_cpadv.slide.pixels import LevelArray
from napari_cpadv.slide.prefetch import Prefetch
from napari_cpadv.slide.store import (
    DEFAULT_CACHE_BYTES,
    LevelGeometry,
    OpenSlideStore,
    TileCache,
    TileSource,
    default_executor,
    fill,
)
from napari_cpadv.slide.tiff import tiff_damage

if TYPE_CHECKING:
    import dask.array as da

_caches: weakref.WeakValueDictionary[tuple[str, int, int], TileCache] = (
    weakref.WeakValueDictionary()
)
_caches_lock = threading.Lock()
_shared_executor: Executor | None = None

VALIDATE_TILES = 64
"""At most this many tiles of the coarsest level are decoded by :meth:`Slide.validate`."""
SCREEN_RESOLUTIONS_DPI = (72.0, 96.0)
"""Resolutions TIFF writers record by default (screen dpi), never a microscope's."""


def memory_limit() -> int:
    """Bytes one operation may hold for a whole level: half the machine's memory, or
    ``CPADV_MAX_MEMORY`` (bytes) when set."""
    env = os.environ.get("CPADV_MAX_MEMORY")
    if env:
        return int(float(env))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


@dataclass(frozen=True, eq=False)
class Slide:
    """An open whole-slide image.

    Attributes
    ----------
    path
        The file.
    levels
        One lazy dask array per level, ``(rows, cols, 3)`` uint8 RGB, one chunk per native tile,
        each chunk read through the store's shared tile cache (:attr:`zarr_group` serves the
        same tiles to zarr).
    downsamples
        Level-0 pixels per level pixel, as OpenSlide reports them (not always powers of two).
    mpp
        ``(x, y)`` micrometres per level-0 pixel, or ``None`` when the file records none.
    properties
        OpenSlide's properties of the file.
    geometry
        Size and native tiling of each level.
    """

    path: Path
    downsamples: tuple[float, ...]
    mpp: tuple[float, float] | None
    properties: Mapping[str, str]
    geometry: tuple[LevelGeometry, ...]
    store: OpenSlideStore = field(repr=False)
    _executor: Executor = field(repr=False)
    _dask_name: str | None = field(default=None, repr=False)

    @cached_property
    def levels(self) -> tuple[da.Array, ...]:
        """One lazy dask array per level (see the class's attributes), made on first use:
        importing dask.array alone costs about 0.5 s, which opening a slide for the viewer
        (``arrays``) does not pay."""
        import dask.array as da

        return tuple(
            da.from_array(
                TileSource(self.store, level),
                chunks=(g.tile_rows, g.tile_cols, 3),
                name=False if self._dask_name is None else f"{self._dask_name}-{level}",
                lock=False,
                asarray=False,
                fancy=False,
                inline_array=self._dask_name is not None,
                meta=np.empty((0, 0, 0), np.uint8),
            )
            for level, g in enumerate(self.geometry)
        )

    @cached_property
    def arrays(self) -> tuple[LevelArray, ...]:
        """One array per level for napari: slices read through :meth:`read_region`, without
        a dask task a tile (see ``pixels.LevelArray``), each read a view that the tiles
        around it are decoded ahead of (:attr:`prefetch`)."""
        return tuple(
            LevelArray(self.read_region, k, g, self.prefetch) for k, g in enumerate(self.geometry)
        )

    @cached_property
    def prefetch(self) -> Prefetch:
        """The tiles read ahead of the views :attr:`arrays` serve (``slide.prefetch``), into
        the shared cache, within a quarter of it."""
        return Prefetch(self.store.read_tile, self.geometry, self.cache.max_bytes // 4)

    @property
    def vendor(self) -> str | None:
        """OpenSlide's name for the file format (``generic-tiff``, ``aperio``, ...)."""
        return self.properties.get("openslide.vendor")

    @property
    def background(self) -> tuple[int, int, int]:
        """RGB colour that transparent and out-of-slide pixels are composited on."""
        return self.store.background

    @property
    def cache(self) -> TileCache:
        """The decoded-tile cache shared by every view of this file."""
        return self.store.cache

    @property
    def zarr_group(self) -> Any:
        """The zarr v3 group over the same store: arrays ``"0"``, ``"1"``, ... (for zarr tools)."""
        import zarr

        from napari_cpadv.slide.zarr_view import ZarrView

        return zarr.open_group(ZarrView(self.store), mode="r")

    def level_scale(self, level: int) -> tuple[float, float] | None:
        """``(row, col)`` micrometres per pixel of ``level``, or ``None`` without mpp."""
        if self.mpp is None:
            return None
        ds = self.downsamples[level]
        return (self.mpp[1] * ds, self.mpp[0] * ds)

    def check_level(self, level: int) -> int:
        """``level`` when the slide has it; ``ValueError`` naming the slide otherwise."""
        if not 0 <= level < len(self.geometry):
            raise ValueError(f"{self.path}: level {level} not in 0..{len(self.geometry) - 1}")
        return level

    def read_region(self, level: int, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Pixels of ``level`` from ``(row, col)`` (its pixels): ``(height, width, 3)`` uint8.

        Pixels beyond the slide are the background colour. Tiles load in parallel
        through the shared cache.

        Raises
        ------
        SlideError
            When a tile cannot be decoded.
        """
        self.check_level(level)
        if height <= 0 or width <= 0:
            raise ValueError(f"{self.path}: region size must be positive, got {height}x{width}")
        g = self.geometry[level]
        out = np.empty((height, width, 3), np.uint8)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, g.rows), min(col + width, g.cols)
        if (r0, c0, r1, c1) != (row, col, row + height, col + width):  # reaches off the slide
            fill(out, self.background)
        if r0 >= r1 or c0 >= c1:
            return out
        tiles = [
            (tr, tc)
            for tr in range(r0 // g.tile_rows, (r1 - 1) // g.tile_rows + 1)
            for tc in range(c0 // g.tile_cols, (c1 - 1) // g.tile_cols + 1)
        ]
        decoded = self._executor.map(lambda t: self.store.read_tile(level, *t), tiles)
        for (tr, tc), tile in zip(tiles, decoded, strict=True):
            tr0, tc0 = tr * g.tile_rows, tc * g.tile_cols
            a0, a1 = max(r0, tr0), min(r1, tr0 + g.tile_rows)
            b0, b1 = max(c0, tc0), min(c1, tc0 + g.tile_cols)
            out[a0 - row : a1 - row, b0 - col : b1 - col] = tile[
                a0 - tr0 : a1 - tr0, b0 - tc0 : b1 - tc0
            ]
        return out

    def validate(self) -> None:
        """Decode the coarsest level (a bounded sample of it) and the last tile of every level.

        A truncated file loses the tiles written last (the coarse levels and the end of
        each level), so this catches truncation and most corruption cheaply, before a
        viewer shows anything. The work is bounded whatever size the file declares: at most
        :data:`VALIDATE_TILES` tiles of the coarsest level (its corners and centre when it
        has more), plus one tile a level.

        Raises
        ------
        SlideError
            When any of those tiles cannot be decoded.
        """
        coarsest = len(self.geometry) - 1
        rows, cols = self.geometry[coarsest].grid
        if rows * cols <= VALIDATE_TILES:
            sample = {(tr, tc) for tr in range(rows) for tc in range(cols)}
        else:
            sample = {(0, 0), (0, cols - 1), (rows - 1, 0), (rows // 2, cols // 2)}
        for tr, tc in sorted(sample):
            self.store.read_tile(coarsest, tr, tc)
        for level, g in enumerate(self.geometry):
            self.store.read_tile(level, g.grid[0] - 1, g.grid[1] - 1)

    def check_in_memory(self, level: int, what: str, *, bytes_per_pixel: float = 3) -> None:
        """Refuse work that holds a whole level in memory when the level is too large.

        Raises
        ------
        SlideError
            When ``rows * cols * bytes_per_pixel`` exceeds :func:`memory_limit`, naming the
            level, its size and what would have needed it.
        """
        g = self.geometry[level]
        need = g.rows * g.cols * bytes_per_pixel
        limit = memory_limit()
        if need > limit:
            raise SlideError(
                self.path,
                f"{what} needs level {level} ({g.cols} x {g.rows} pixels) in memory, "
                f"{need / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB allowed; "
                "use a coarser level",
            )

    def close(self) -> None:
        """Release the OpenSlide handle and file; the levels can no longer be read."""
        if "prefetch" in self.__dict__:
            self.prefetch.close()
        self.store.close()


def open_slide(
    path: str | os.PathLike[str],
    *,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    workers: int | None = None,
    direct: bool = True,
) -> Slide:
    """Open a whole-slide image through OpenSlide.

    Parameters
    ----------
    path
        Any file OpenSlide reads (SVS, generic tiled TIFF, NDPI, MRXS, ...).
    cache_bytes
        Bound on the decoded-tile cache. Slides opened again from the same unchanged file
        share one cache, the first opening setting its size.
    workers
        Threads that decode tiles; by default a pool shared by every slide.
    direct
        Let TIFF-based files' JPEG tiles skip OpenSlide's painting pass where they decode
        to the same pixels (see :class:`~napari_cpadv.slide.direct.DirectTiles`).

    Raises
    ------
    SlideError
        When the file is missing, of a format OpenSlide does not know, or unreadable.
    """
    p = Path(path)
    osr = _openslide(p)
    stat = p.stat()
    ident = (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
    with _caches_lock:
        cache = _caches.get(ident)
        if cache is None:
            cache = TileCache(cache_bytes)
            _caches[ident] = cache
    executor = default_executor(workers) if workers is not None else _default_executor()
    # read before the store's first tiles: a failed read spoils this handle (the store then
    # reads through a fresh one)
    props: dict[str, str] = dict(osr.properties)
    store = OpenSlideStore(p, osr, cache=cache, executor=executor, direct=direct)
    return Slide(
        path=p,
        downsamples=tuple(g.downsample for g in store.geometry),
        mpp=slide_mpp(props),
        properties=props,
        geometry=store.geometry,
        store=store,
        _executor=executor,
        _dask_name=f"cpadv-{ident[0]}-{ident[2]}-{int(direct)}",
    )


def _openslide(p: Path) -> Any:
    """OpenSlide's handle on ``p``; ``SlideError`` says why there is none (missing,
    unreadable, damaged, or a format OpenSlide does not know)."""
    import openslide

    if not p.is_file():
        raise SlideError(p, "no such file" if not p.exists() else "not a file")
    try:
        with p.open("rb"):
            pass
    except PermissionError:
        raise SlideError(p, "permission denied: the file cannot be read") from None
    except OSError as exc:
        raise SlideError(p, f"cannot read the file ({exc.strerror})") from None
    try:
        vendor = openslide.OpenSlide.detect_format(p)
    except Exception as exc:  # detect_format raises on unreadable files in some builds
        raise SlideError(p, f"OpenSlide cannot read the file: {exc}") from exc
    if vendor is None:
        damage = tiff_damage(p)
        if damage is not None:
            raise SlideError(p, f"a damaged TIFF (truncated?): {damage}")
        raise SlideError(p, "not a whole-slide image OpenSlide can read (unsupported format)")
    try:
        return openslide.OpenSlide(p)
    except Exception as exc:
        raise SlideError(p, f"cannot open {vendor} slide: {exc}") from exc


def slide_mpp(props: Mapping[str, Any]) -> tuple[float, float] | None:
    """µm per level-0 pixel ``(x, y)`` from OpenSlide's properties, or ``None``.

    A generic TIFF's resolution tags are a microscope resolution only when they are not
    what TIFF writers put there by default: no unit, or 72 or 96 dots per inch (also when
    written per centimetre) is a screen resolution, and the slide opens in pixels.
    """
    try:
        x = float(props["openslide.mpp-x"])
        y = float(props["openslide.mpp-y"])
    except (KeyError, ValueError):
        return None
    if not (x > 0 and y > 0 and np.isfinite(x) and np.isfinite(y)):
        return None
    if props.get("openslide.vendor") == "generic-tiff":
        unit = props.get("tiff.ResolutionUnit")
        if unit not in ("inch", "centimeter"):
            return None
        per_inch = 25400.0 / x  # pixels per inch
        if any(abs(per_inch - dpi) < 0.01 * dpi for dpi in SCREEN_RESOLUTIONS_DPI):
            return None
    return (x, y)


def _default_executor() -> Executor:
    global _shared_executor
    with _caches_lock:
        if _shared_executor is None:
            _shared_executor = default_executor()
        return _shared_executor
