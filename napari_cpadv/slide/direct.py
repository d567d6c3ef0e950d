"""Tiles decoded straight from a tiled TIFF page, where OpenSlide's own levels are the
file's pages one for one: exact where OpenSlide resamples, strict where a damaged JPEG tile
would otherwise show garbage, and without OpenSlide's painting pass."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_cpadv.slide.pixels import LevelGeometry, fill


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
        from napari_cpadv.slide.tiff import tifffile_messages

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
            fill(tile, self.background)
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
