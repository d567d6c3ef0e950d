"""A slide's pixels as decoded: level geometry, the shared LRU cache of decoded tiles,
OpenSlide's background compositing, and its premultiplied pixels read without PIL."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import openslide

    from napari_cpadv.slide.store import OpenSlideStore

DEFAULT_TILE = 512
DEFAULT_CACHE_BYTES = 192 * 2**20
TileKey = tuple[int, int, int]  # (level, tile_row, tile_col)


@dataclass(frozen=True)
class LevelGeometry:
    """Size and tiling of one pyramid level, in that level's pixels."""

    rows: int
    cols: int
    tile_rows: int
    tile_cols: int
    downsample: float

    @property
    def grid(self) -> tuple[int, int]:
        """Number of tiles down and across."""
        return (-(-self.rows // self.tile_rows), -(-self.cols // self.tile_cols))


class TileCache:
    """A thread-safe LRU cache of decoded RGB tiles, bounded in bytes.

    Parameters
    ----------
    max_bytes
        Upper bound on the bytes of the tiles held; 0 disables caching.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self._tiles: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def get(self, key: Any) -> np.ndarray | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is None:
                self.misses += 1
                return None
            self._tiles.move_to_end(key)
            self.hits += 1
            return tile

    def put(self, key: Any, tile: np.ndarray) -> None:
        if tile.nbytes > self.max_bytes:
            return
        tile.setflags(write=False)
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._tiles[key] = tile
            self._bytes += tile.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._tiles.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self._bytes = 0


def fill(out: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """``out`` ``(h, w, 3)`` uint8 set to ``background`` in every pixel; returns it.

    Written by hand because numpy's broadcast of an RGB triple over ``(h, w, 3)`` runs an
    inner loop three elements long: 160 ms for a 4,096 x 4,096 region, more than decoding
    its 64 JPEG tiles on two threads. A grey is one ``memset``; any colour is one row,
    then row copies.
    """
    if out.size == 0:
        return out
    if background[0] == background[1] == background[2]:
        out.fill(background[0])
        return out
    out[:1] = np.asarray(background, np.uint8)
    out[1:] = out[:1]
    return out


def parse_background(value: str | None) -> tuple[int, int, int]:
    """OpenSlide's ``openslide.background-color`` (``RRGGBB`` hex) as RGB; white if unset."""
    if not value:
        return (255, 255, 255)
    try:
        rgb = int(value, 16)
    except ValueError:
        return (255, 255, 255)
    return ((rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255)


def composite(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Composite OpenSlide's un-premultiplied RGBA on ``background``; returns a new RGB array."""
    rgb = rgba[..., :3]
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha[..., None].astype(np.uint16)
    bg = np.asarray(background, dtype=np.uint16)
    out = (rgb.astype(np.uint16) * a + bg * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def composite_premultiplied(bgra: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """RGB from OpenSlide's native premultiplied BGRA pixels, composited on ``background``."""
    rgb = bgra[..., 2::-1]
    alpha = bgra[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha[..., None].astype(np.uint16)
    bg = np.asarray(background, dtype=np.uint16)
    out = rgb.astype(np.uint16) + (bg * (255 - a) + 127) // 255
    return np.minimum(out, 255).astype(np.uint8)


def read_bgra(
    osr: openslide.OpenSlide, location: tuple[int, int], level: int, size: tuple[int, int]
) -> np.ndarray | None:
    """OpenSlide's premultiplied pixels ``(rows, cols, 4)`` (B, G, R, A), decoded straight into
    a numpy buffer, without the PIL image and un-premultiplying pass of ``read_region``.

    Returns ``None`` when this openslide-python does not expose the C call, so callers can
    fall back to the public API.
    """
    from ctypes import POINTER, c_uint32

    from openslide import lowlevel

    func = getattr(lowlevel, "_read_region", None)
    handle = getattr(osr, "_osr", None)
    if func is None or handle is None:
        return None
    w, h = size
    buf = np.empty((h, w), np.uint32)
    func(handle, buf.ctypes.data_as(POINTER(c_uint32)), location[0], location[1], level, w, h)
    return buf.view(np.uint8).reshape(h, w, 4)


def level_geometry(osr: openslide.OpenSlide) -> tuple[LevelGeometry, ...]:
    """Geometry of every level, with the native tile size where the file reports one."""
    props = osr.properties
    out = []
    for level, ((cols, rows), ds) in enumerate(
        zip(osr.level_dimensions, osr.level_downsamples, strict=True)
    ):
        tw = int(props.get(f"openslide.level[{level}].tile-width", DEFAULT_TILE))
        th = int(props.get(f"openslide.level[{level}].tile-height", DEFAULT_TILE))
        out.append(LevelGeometry(rows, cols, th, tw, float(ds)))
    return tuple(out)


class TileSource:
    """One level of an :class:`OpenSlideStore` as an array-like for ``dask.array.from_array``.

    Indexed with the slices of one chunk (dask's chunks are the store's chunks), it returns
    that tile from the store's shared cache as a read-only view, clipped at the edges. It
    is the store's own chunk reader without the zarr API around it: the same tiles, the
    same cache and errors, about 1 ms less per chunk.
    """

    def __init__(self, store: OpenSlideStore, level: int) -> None:
        self.store = store
        self.level = level
        g = store.geometry[level]
        self.geometry = g
        self.shape = (g.rows, g.cols, 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        g = self.geometry
        rows, cols = key[0], key[1]
        r0, r1 = rows.start or 0, g.rows if rows.stop is None else rows.stop
        c0, c1 = cols.start or 0, g.cols if cols.stop is None else cols.stop
        tr, tc = r0 // g.tile_rows, c0 // g.tile_cols
        if (r1 - 1) // g.tile_rows != tr or (c1 - 1) // g.tile_cols != tc:
            raise IndexError(f"{self.store.path}: {key} spans more than one tile")
        tile = self.store.read_tile(self.level, tr, tc)
        ro, co = tr * g.tile_rows, tc * g.tile_cols
        out = tile[r0 - ro : r1 - ro, c0 - co : c1 - co]
        return out if len(key) < 3 else out[:, :, key[2]]


def default_executor(workers: int | None = None) -> ThreadPoolExecutor:
    """The thread pool tile reads run on: ``workers`` threads, or one per core up to 8."""
    n = workers if workers is not None else min(8, max(2, os.cpu_count() or 2))
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="cpadv-tiles")


class LevelArray:
    """One level of a slide as the array napari reads: ``(rows, cols, 3)`` uint8.

    Indexed with slices (and integers), it returns ``read(level, row, col, height,
    width)``'s pixels (``Slide.read_region``: the tiles decoded in parallel through the
    shared cache straight into one output array), not a dask graph of one task per tile:
    dask's graph, scheduling and assembly cost about 0.5 ms a tile beside 1.3 ms to decode
    it (64 tiles warm: 35-44 ms through dask, 19 ms this way), and napari keeps every chunk
    of a dask array in its own dask cache, a second copy of the tiles the plugin's cache
    already holds. ``Slide.levels`` stays the dask view, for computing over a level.

    With ``prefetch`` (``slide.prefetch.Prefetch``), each read is a view on screen: the
    tiles ahead wait while it is read, and are planned from it once it is.
    """

    def __init__(
        self, read: Any, level: int, geometry: LevelGeometry, prefetch: Any = None
    ) -> None:
        self._read = read
        self._prefetch = prefetch
        self.level = level
        self.shape = (geometry.rows, geometry.cols, 3)
        # zarr's form of a regular chunk grid: napari widens a view to whole chunks and
        # reads again only when the view leaves them. Without it napari read the exact view
        # again at every camera move: in a continuous pan, every frame (6-9 frames a second
        # against napari-wsi's 15-18, whose zarr arrays have it).
        self.chunks = (geometry.tile_rows, geometry.tile_cols, 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3
        self.size = geometry.rows * geometry.cols * 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:at] + (slice(None),) * (4 - len(key)) + key[at + 1 :]
        if len(key) > 3 or any(not isinstance(k, slice) and not _is_int(k) for k in key):
            raise IndexError(f"level {self.level}: only slices and integers index it, not {key}")
        key = key + (slice(None),) * (3 - len(key))
        axes = zip(key[:2], self.shape[:2], strict=True)
        rows, cols = (slice(*_bounds(k, n)) if _is_int(k) else k for k, n in axes)
        (r0, r1, rs), (c0, c1, cs) = rows.indices(self.shape[0]), cols.indices(self.shape[1])
        if rs < 0 or cs < 0:
            raise IndexError(f"level {self.level}: negative steps are not supported")
        if r1 <= r0 or c1 <= c0:
            out = np.empty((max(r1 - r0, 0), max(c1 - c0, 0), 3), np.uint8)
        elif self._prefetch is None:
            out = self._read(self.level, r0, c0, r1 - r0, c1 - c0)
        else:
            with self._prefetch.on_screen():
                out = self._read(self.level, r0, c0, r1 - r0, c1 - c0)
            self._prefetch.saw(self.level, r0, c0, r1, c1)
        out = out[::rs, ::cs, key[2]]
        drop = tuple(0 if _is_int(k) else slice(None) for k in key[:2])
        return out[drop]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)


def _is_int(k: Any) -> bool:
    import operator

    if isinstance(k, bool):
        return False
    try:
        operator.index(k)
    except TypeError:
        return False
    return True


def _bounds(k: Any, n: int) -> tuple[int, int]:
    """The one-element range of integer index ``k`` along an axis of ``n``."""
    import operator

    i = operator.index(k)
    i = i + n if i < 0 else i
    if not 0 <= i < n:
        raise IndexError(f"index {k} is out of bounds for an axis of {n}")
    return i, i + 1
