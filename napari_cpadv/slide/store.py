"""The tiles of an OpenSlide file: ``OpenSlideStore``.

Every pyramid level is read tile by tile, ``(rows, cols, 3)`` uint8 RGB in the slide's
native tiles (512 x 512 when the file reports no tiling), decoded directly from the file
or by OpenSlide, composited on the slide's background colour and kept in a bounded cache
of decoded tiles that every view of the same slide shares. A failed read raises
:class:`~napari_cpadv.errors.SlideError`; it never becomes a blank tile. The same tiles as
a zarr v3 store are ``slide.zarr_view.ZarrView`` (zarr is imported only there).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import numpy as np

from napari_cpadv.errors import SlideError
from napari_cpadv.slide.direct import DirectTiles
from napari_cpadv.slide.pixels import (  # noqa: F401 (slide.py and tests read them here)
    DEFAULT_CACHE_BYTES,
    LevelGeometry,
    TileCache,
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


class OpenSlideStore:
    """An OpenSlide file's levels, tile by tile (see the module docstring).

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

    def __init__(
        self,
        path: str | os.PathLike[str],
        osr: openslide.OpenSlide,
        *,
        cache: TileCache,
        executor: Executor,
        direct: bool = True,
    ) -> None:
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

    def __str__(self) -> str:
        return f"openslide://{self.path}"

    def close(self) -> None:
        """Release the OpenSlide handle and the direct reader's file descriptor."""
        if self.direct is not None:
            self.direct.close()
        self._osr.close()

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
