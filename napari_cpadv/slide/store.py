"""A read-only zarr v3 store over an OpenSlide handle.

Every pyramid level is a zarr array ``"<level>"`` of shape ``(rows, cols, 3)``,
uint8 RGB, whose chunks are the slide's native tiles (512 x 512 when the file
reports no tiling). Chunks are decoded by OpenSlide on a thread pool, so the
chunks of one view load in parallel, composited on the slide's background
colour, and kept in a bounded cache of decoded tiles that every layer of the
same slide shares. A failed read raises :class:`~napari_cpadv.errors.SlideError`;
it never becomes a blank tile.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from napari_cpadv.errors import SlideError

if TYPE_CHECKING:
    import openslide

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


@dataclass(frozen=True)
class _PageTiles:
    offsets: tuple[int, ...]
    counts: tuple[int, ...]
    tables: bytes | None
    across: int
    tile: tuple[int, int]
    compression: int
    rgb_jpeg: bool
    decode: Any


# An Adobe APP14 segment with transform 0: tells libjpeg that three-component data is RGB,
# not YCbCr. Aperio writes RGB JPEG tiles (photometric RGB) without any marker that says so;
# OpenSlide sets the colour space by hand, simplejpeg has no such option, so it goes in the
# stream.
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


def _decode_jpeg(data: bytes, page: _PageTiles) -> np.ndarray:
    """One JPEG tile with libjpeg's corrupt-data warnings raised as errors, as OpenSlide does.

    simplejpeg's ``strict`` decode is the only maintained binding that stops on libjpeg
    warnings (imagecodecs and Pillow show a damaged tile's garbage without a word).
    """
    import simplejpeg

    if data[:2] != b"\xff\xd8":
        raise ValueError("tile data does not start with a JPEG start-of-image marker")
    head = b"\xff\xd8" + (_ADOBE_RGB if page.rgb_jpeg else b"")
    tables = page.tables[2:-2] if page.tables else b""  # SOI ... EOI: keep what lies between
    return simplejpeg.decode_jpeg(head + tables + data[2:], colorspace="RGB", strict=True)


def _decodable(tifffile: Any, compression: int) -> bool:
    """Whether tifffile (through imagecodecs) has a decoder for the compression, so that a
    tile it fails to decode is damaged, not unsupported."""
    try:
        return tifffile.TIFF.DECOMPRESSORS[compression] is not None
    except KeyError:
        return False


class DirectTiles:
    """The pixels each tiled TIFF page stores, decoded straight from the file.

    For TIFF-based formats whose pages are OpenSlide's levels one for one (generic TIFF,
    Aperio SVS, Philips TIFF), a level is the page's own pixels: tiles are read with
    ``os.pread`` and decoded by their codec (JPEG through simplejpeg, strict; Aperio's
    JPEG 2000, deflate, LZW, zstd, none through tifffile's imagecodecs). This is
    exact where OpenSlide is not: on a level whose downsample is not an integer OpenSlide
    resamples every tile by its own fraction of a pixel. It also skips OpenSlide's painting
    pass, about three times the JPEG decode. A level gets this path only after its first
    tile (at offset 0, where OpenSlide does not resample) decoded both ways matched pixel
    for pixel (``OpenSlideStore._verify_direct``); anything else stays with OpenSlide.
    """

    FORMATS = ("generic-tiff", "aperio", "philips")

    def __init__(
        self,
        path: str,
        geometry: tuple[LevelGeometry, ...],
        background: tuple[int, int, int] = (255, 255, 255),
    ) -> None:
        import tifffile

        self.path = path
        self.background = background
        self.levels: dict[int, _PageTiles] = {}
        self._fd: int | None = None
        from napari_cpadv.slide.slide import tifffile_messages

        try:
            with tifffile_messages(), tifffile.TiffFile(path) as tf:
                pages = [p for p in tf.pages if isinstance(p, tifffile.TiffPage) and p.is_tiled]
                for level, g in enumerate(geometry):
                    match = [
                        p
                        for p in pages
                        if (p.imagelength, p.imagewidth, p.tilelength, p.tilewidth)
                        == (g.rows, g.cols, g.tile_rows, g.tile_cols)
                        and p.samplesperpixel == 3
                        and p.bitspersample == 8
                        and p.planarconfig == 1
                        and p.imagedepth == 1
                        and _decodable(tifffile, int(p.compression))
                    ]
                    if len(match) == 1:
                        p = match[0]
                        self.levels[level] = _PageTiles(
                            tuple(p.dataoffsets),
                            tuple(p.databytecounts),
                            p.jpegtables,
                            -(-g.cols // g.tile_cols),
                            (g.tile_rows, g.tile_cols),
                            int(p.compression),
                            int(p.compression) == 7 and int(p.photometric) == 2,
                            p.decode,
                        )
        except Exception:  # a file tifffile cannot parse: OpenSlide alone reads it
            self.levels = {}
        if self.levels:
            self._fd = os.open(path, os.O_RDONLY)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()

    def read(self, level: int, tile_row: int, tile_col: int) -> np.ndarray | None:
        """The decoded tile ``(tile_rows, tile_cols, 3)``, or ``None`` without a direct path.

        A tile the file leaves out (sparse) is the background colour, as OpenSlide shows it.
        """
        page = self.levels.get(level)
        if page is None or self._fd is None:
            return None
        index = tile_row * page.across + tile_col
        offset, count = page.offsets[index], page.counts[index]
        if count == 0:
            tile = np.empty((*page.tile, 3), np.uint8)  # left out of the file (sparse)
            tile[...] = self.background
            return tile
        data = os.pread(self._fd, count, offset)
        if len(data) != count:
            raise OSError(f"file ends {count - len(data)} bytes early (truncated?)")
        if page.compression == 7:
            return _decode_jpeg(data, page)
        seg = page.decode(data, index, jpegtables=page.tables)[0]
        if seg is None:
            raise ValueError("the tile's codec is not available")
        return np.ascontiguousarray(np.asarray(seg).reshape(seg.shape[-3:]))

    def probe(self, level: int, g: LevelGeometry, *, candidates: int = 256) -> tuple[int, int]:
        """The first stored tile (row-major, among the first ``candidates``) whose level-0
        offset is a whole number of pixels; ``(0, 0)`` when none is."""
        page = self.levels[level]
        for index in range(min(candidates, len(page.counts))):
            tr, tc = divmod(index, page.across)
            y, x = tr * g.tile_rows * g.downsample, tc * g.tile_cols * g.downsample
            if page.counts[index] and float(x).is_integer() and float(y).is_integer():
                return (tr, tc)
        return (0, 0)

    def drop(self, level: int) -> None:
        self.levels.pop(level, None)


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


class OpenSlideStore(Store):
    """Read-only zarr v3 store serving an OpenSlide file's levels tile by tile.

    Parameters
    ----------
    path
        The slide file (used in error messages).
    osr
        An open ``openslide.OpenSlide`` handle (thread-safe).
    cache
        Decoded-tile cache; pass the same one to every store of the same slide.
    executor
        Thread pool the tile reads run on.
    direct
        Decode the JPEG tiles of TIFF-based files directly where they verify against
        OpenSlide (:class:`DirectTiles`); ``False`` reads every tile through OpenSlide.
    """

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        osr: openslide.OpenSlide,
        *,
        cache: TileCache,
        executor: Executor,
        direct: bool = True,
    ) -> None:
        super().__init__(read_only=True)
        self.path = os.fspath(path)
        self._osr = osr
        self._osr_lock = threading.Lock()
        self.cache = cache
        self._executor = executor
        every = level_geometry(osr)
        self.background = parse_background(osr.properties.get("openslide.background-color"))
        self.direct: DirectTiles | None = None
        if direct and osr.properties.get("openslide.vendor") in DirectTiles.FORMATS:
            self.direct = DirectTiles(self.path, every, self.background)
            self._verify_direct(every)
        # A level read through OpenSlide whose downsample is not an integer would come out
        # resampled by a different fraction of a pixel in every tile (OpenSlide maps each
        # level-0 location back onto the level); such levels are left out, and napari's
        # pyramid uses the others. With direct=False every level is OpenSlide's, as it is.
        self.sources = tuple(
            k
            for k, g in enumerate(every)
            if k == 0
            or not direct
            or float(g.downsample).is_integer()
            or (self.direct is not None and k in self.direct.levels)
        )
        self.left_out = tuple(k for k in range(len(every)) if k not in self.sources)
        self.geometry = tuple(every[k] for k in self.sources)
        self._metadata = self._build_metadata()

    def _verify_direct(self, geometry: tuple[LevelGeometry, ...]) -> None:
        """Keep the direct path only on levels whose probe tile matches OpenSlide exactly.

        The probe is the first tile the file stores whose level-0 offset is a whole number
        of pixels (tile (0, 0) at the latest), where OpenSlide reads the stored pixels even
        on a level whose downsample is not an integer. A probe the direct path cannot decode
        is damaged (its codec is there): the direct path stays, and reading that tile
        raises, even where OpenSlide would show the damage.
        """
        assert self.direct is not None
        for level in list(self.direct.levels):
            g = geometry[level]
            tr, tc = self.direct.probe(level, g)
            try:
                fast = self.direct.read(level, tr, tc)
            except Exception:  # the codec is there (_decodable): the tile is damaged
                fast = None
            try:
                slow = self._read_openslide(level, tr, tc, g)
            except Exception:  # OpenSlide's handle is spoilt: reopen it
                self._reopen(self._osr)
                if fast is not None:  # OpenSlide refuses what we decoded: its word wins
                    self.direct.drop(level)
                continue
            if fast is None:  # damaged here, read by OpenSlide (more leniently): we refuse it
                continue
            rows = min(g.tile_rows, g.rows - tr * g.tile_rows)
            cols = min(g.tile_cols, g.cols - tc * g.tile_cols)
            if not np.array_equal(fast[:rows, :cols], slow[:rows, :cols]):
                self.direct.drop(level)

    def stored(self, level: int) -> bool:
        """Whether ``level`` is decoded from the file's own pixels (not painted by OpenSlide)."""
        return self.direct is not None and self.sources[level] in self.direct.levels

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)

    def __str__(self) -> str:
        return f"openslide://{self.path}"

    def close(self) -> None:
        """Release the OpenSlide handle and the direct reader's file descriptor."""
        if self.direct is not None:
            self.direct.close()
        self._osr.close()
        super().close()

    def with_read_only(self, read_only: bool = False) -> OpenSlideStore:
        if not read_only:
            raise ValueError(f"{self.path}: an OpenSlide store is read-only")
        return self

    # -- tiles ---------------------------------------------------------------------------

    def read_tile(self, level: int, tile_row: int, tile_col: int) -> np.ndarray:
        """One whole native tile, ``(tile_rows, tile_cols, 3)`` uint8, padded past the edge.

        Raises
        ------
        SlideError
            When OpenSlide cannot decode the tile.
        """
        # The decoding path is part of the key: on levels OpenSlide resamples, the two
        # paths give different pixels, and openings with and without it share the cache.
        direct = self.stored(level)
        key = (self.path, direct, self.sources[level], tile_row, tile_col)
        tile = self.cache.get(key)
        if tile is not None:
            return tile
        g = self.geometry[level]
        rows = min(g.tile_rows, g.rows - tile_row * g.tile_rows)
        cols = min(g.tile_cols, g.cols - tile_col * g.tile_cols)
        if rows <= 0 or cols <= 0 or tile_row < 0 or tile_col < 0:
            raise SlideError(self.path, f"tile ({tile_row}, {tile_col}) lies outside level {level}")
        try:
            tile = None
            if direct:
                assert self.direct is not None
                tile = self.direct.read(self.sources[level], tile_row, tile_col)
            if tile is None:
                tile = self._read_fresh(level, tile_row, tile_col)
        except Exception as exc:  # OpenSlideError, codec errors, short reads
            raise SlideError(
                self.path, f"cannot read level {level} tile ({tile_row}, {tile_col}): {exc}"
            ) from exc
        if (rows, cols) != (g.tile_rows, g.tile_cols):  # past the edge: background
            padded = np.empty((g.tile_rows, g.tile_cols, 3), np.uint8)
            padded[...] = self.background
            padded[:rows, :cols] = tile[:rows, :cols]
            tile = padded
        self.cache.put(key, tile)
        return tile

    def _read_fresh(self, level: int, tile_row: int, tile_col: int) -> np.ndarray:
        """A tile through OpenSlide, on a handle no other tile's error has spoilt.

        OpenSlide's error state sticks to its handle: after one tile fails, every read of
        that handle fails with the same message (OpenSlide's documentation: the object
        must be closed and reopened). So a failed read is tried once more on a private,
        fresh handle that no other thread reads: a tile that fails there is damaged
        itself, and its error is its own. The shared handle is replaced either way, so the
        tiles after it still read.
        """
        import openslide

        g, source = self.geometry[level], self.sources[level]
        shared = self._osr
        try:
            return self._read_openslide(source, tile_row, tile_col, g, shared)
        except Exception:  # maybe another tile's error: try again where none can reach
            private = openslide.OpenSlide(self.path)
        try:
            tile = self._read_openslide(source, tile_row, tile_col, g, private)
        except Exception:
            private.close()
            self._reopen(shared)
            raise
        self._reopen(shared, private)
        return tile

    def _reopen(
        self, failed: openslide.OpenSlide, fresh: openslide.OpenSlide | None = None
    ) -> openslide.OpenSlide:
        """Replace the shared handle ``failed`` by ``fresh`` (or a new one), once however
        many threads saw it fail; a ``fresh`` handle not needed is closed."""
        import openslide

        with self._osr_lock:
            if self._osr is failed:
                # The old handle is released when the last read holding it returns.
                self._osr = fresh if fresh is not None else openslide.OpenSlide(self.path)
            elif fresh is not None:
                fresh.close()
            return self._osr

    def _read_openslide(
        self,
        level: int,
        tile_row: int,
        tile_col: int,
        g: LevelGeometry,
        osr: openslide.OpenSlide | None = None,
    ) -> np.ndarray:
        """The tile's pixels inside OpenSlide's ``level`` (of geometry ``g``), composited on
        the background."""
        osr = self._osr if osr is None else osr
        row0, col0 = tile_row * g.tile_rows, tile_col * g.tile_cols
        rows = min(g.tile_rows, g.rows - row0)
        cols = min(g.tile_cols, g.cols - col0)
        location = (round(col0 * g.downsample), round(row0 * g.downsample))
        bgra = read_bgra(osr, location, level, (cols, rows))
        if bgra is None:
            rgba = np.asarray(osr.read_region(location, level, (cols, rows)))
            tile = composite(rgba, self.background)
        else:
            tile = composite_premultiplied(bgra, self.background)
        return tile

    # -- zarr metadata -------------------------------------------------------------------

    def _build_metadata(self) -> dict[str, bytes]:
        meta: dict[str, bytes] = {}
        datasets = []
        for level, g in enumerate(self.geometry):
            datasets.append({"path": str(level), "downsample": g.downsample})
            meta[f"{level}/zarr.json"] = _json(
                {
                    "zarr_format": 3,
                    "node_type": "array",
                    "shape": [g.rows, g.cols, 3],
                    "data_type": "uint8",
                    "chunk_grid": {
                        "name": "regular",
                        "configuration": {"chunk_shape": [g.tile_rows, g.tile_cols, 3]},
                    },
                    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                    "fill_value": 0,
                    "codecs": [{"name": "bytes"}],
                    "dimension_names": ["y", "x", "c"],
                    "attributes": {"downsample": g.downsample},
                }
            )
        meta["zarr.json"] = _json(
            {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {"source": self.path, "levels": datasets},
            }
        )
        return meta

    def _parse_chunk_key(self, key: str) -> TileKey | None:
        parts = key.split("/")
        if len(parts) != 5 or parts[1] != "c" or parts[4] != "0":
            return None
        try:
            level, row, col = int(parts[0]), int(parts[2]), int(parts[3])
        except ValueError:
            return None
        if not 0 <= level < len(self.geometry):
            return None
        grid = self.geometry[level].grid
        if not (0 <= row < grid[0] and 0 <= col < grid[1]):
            return None
        return (level, row, col)

    # -- zarr Store API ------------------------------------------------------------------

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        prototype = prototype or default_buffer_prototype()
        if key in self._metadata:
            data = self._metadata[key]
        else:
            tile_key = self._parse_chunk_key(key)
            if tile_key is None:
                return None
            loop = asyncio.get_running_loop()
            tile = await loop.run_in_executor(self._executor, self.read_tile, *tile_key)
            data = tile.tobytes()
        if byte_range is not None:
            data = _slice_bytes(data, byte_range)
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        return key in self._metadata or self._parse_chunk_key(key) is not None

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError(f"{self.path}: an OpenSlide store is read-only")

    async def delete(self, key: str) -> None:
        raise PermissionError(f"{self.path}: an OpenSlide store is read-only")

    async def list(self) -> AsyncIterator[str]:
        for key in self._metadata:
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._metadata:
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        seen = set()
        for key in self._metadata:
            rest = (
                key
                if not prefix
                else key[len(prefix) + 1 :]
                if key.startswith(prefix + "/")
                else None
            )
            if rest is None:
                continue
            head = rest.split("/", 1)[0]
            if head not in seen:
                seen.add(head)
                yield head


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


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _slice_bytes(data: bytes, byte_range: ByteRequest) -> bytes:
    from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix :]
    raise TypeError(f"unexpected byte range {byte_range!r}")


def default_executor(workers: int | None = None) -> ThreadPoolExecutor:
    """The thread pool tile reads run on: ``workers`` threads, or one per core up to 8."""
    n = workers if workers is not None else min(8, max(2, os.cpu_count() or 2))
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="cpadv-tiles")
