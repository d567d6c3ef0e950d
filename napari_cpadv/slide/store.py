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
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from napari_cpadv.errors import SlideError
from napari_cpadv.slide.direct import DirectTiles
from napari_cpadv.slide.pixels import (  # noqa: F401 (slide.py and tests read them here)
    DEFAULT_CACHE_BYTES,
    LevelGeometry,
    TileCache,
    TileKey,
    TileSource,
    composite,
    composite_premultiplied,
    default_executor,
    fill,
    level_geometry,
    parse_background,
    read_bgra,
)

if TYPE_CHECKING:
    import openslide


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
            fill(padded, self.background)
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
