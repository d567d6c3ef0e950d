"""Adversarial slides: the original slide plus a sparse store of the tiles an attack changed.

A delta slide is a folder ``NAME.delta.zarr`` (zarr v3) beside nothing else: its
attributes name the original file (its path, and the SHA-256 of its content computed once
when the store is made, so a moved or copied original is found again and a different file
of the same size is refused; ``relink`` records where a moved original now is) and list,
per level, the native tiles that differ; one array per level holds those tiles,
losslessly, every chunk with a crc32c checksum. Reading a tile asks the delta first and
falls through to the original, so outside the touched tiles the adversarial slide is the
original bit for bit; a listed tile whose chunk is missing or damaged raises, naming the
store and the tile.

``slide.perturb.apply`` writes an attacked region into it at every level. ``open_delta``
returns an ordinary ``Slide`` (dask levels, ``read_region``), so the viewer, the
detectors and the attacks use it exactly like the original; ``export_tiff`` writes it as
a tiled pyramidal TIFF with lossless (deflate) tiles.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.errors import SlideError
from napari_cpadv.files import replacing
from napari_cpadv.slide.identity import find_original, identity_of
from napari_cpadv.slide.pixels import fill
from napari_cpadv.slide.slide import Slide, open_slide

KIND = "delta-slide"


class DeltaStore:
    """Tiles of the delta where it has them, of the original store elsewhere."""

    def __init__(
        self, base: Any, folder: Path, group: Any, touched: dict[int, set[tuple[int, int]]]
    ):
        self.base, self.path, self.group, self.touched = base, folder, group, touched
        self.applied = int(group.attrs.get("applied", 0))
        self.geometry = base.geometry
        self.background = base.background
        self.cache = base.cache
        self._lock = threading.Lock()

    def read_tile(self, level: int, tile_row: int, tile_col: int) -> np.ndarray:
        """The adversarial tile where the index lists it, else the original's.

        Raises
        ------
        SlideError
            When a listed tile's chunk is missing, fails its checksum or cannot be
            decoded, naming the store, the level and the tile.
        """
        if (tile_row, tile_col) not in self.touched.get(level, ()):
            return self.base.read_tile(level, tile_row, tile_col)
        g = self.geometry[level]
        r0, c0 = tile_row * g.tile_rows, tile_col * g.tile_cols
        where = f"level {level} tile ({tile_row}, {tile_col})"
        array = self.group[str(level)]
        key = array.metadata.encode_chunk_key((tile_row, tile_col, 0))
        if not (self.path / str(level) / key).is_file():
            raise SlideError(self.path, f"{where} is in the tile index but its chunk is missing")
        try:
            part = np.asarray(array[r0 : r0 + g.tile_rows, c0 : c0 + g.tile_cols])
        except Exception as exc:  # a checksum mismatch, a truncated or garbled chunk
            raise SlideError(
                self.path, f"{where} is damaged ({type(exc).__name__}: {exc})"
            ) from None
        out = np.empty((g.tile_rows, g.tile_cols, 3), np.uint8)
        fill(out, self.background)
        out[: part.shape[0], : part.shape[1]] = part
        return out

    def write_tile(self, level: int, tile_row: int, tile_col: int, tile: np.ndarray) -> None:
        g = self.geometry[level]
        r0, c0 = tile_row * g.tile_rows, tile_col * g.tile_cols
        h, w = min(g.tile_rows, g.rows - r0), min(g.tile_cols, g.cols - c0)
        with self._lock:
            self.group[str(level)][r0 : r0 + h, c0 : c0 + w] = tile[:h, :w]
            self.touched.setdefault(level, set()).add((tile_row, tile_col))

    def save_index(self) -> None:
        """Record the touched tiles (after their chunks are written: a crash before this
        leaves the tile in progress out, read from the original)."""
        self.applied += 1
        self.group.attrs.update(
            {
                "touched": {str(k): sorted(map(list, v)) for k, v in self.touched.items()},
                "applied": self.applied,
            }
        )

    def close(self) -> None:
        self.base.close()


def create_delta(original: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Slide:
    """An empty delta over ``original`` (equal to it until ``apply``) at ``folder``."""
    import zarr

    base = open_slide(original)
    out = Path(folder)
    if out.exists():
        shutil.rmtree(out)
    from zarr.codecs import Crc32cCodec, ZstdCodec

    identity = identity_of(base.path)
    try:
        group = zarr.open_group(str(out), mode="w", zarr_format=3)
        for level, g in enumerate(base.geometry):
            group.create_array(
                str(level),
                shape=(g.rows, g.cols, 3),
                chunks=(g.tile_rows, g.tile_cols, 3),
                dtype="uint8",
                fill_value=0,
                # each chunk carries its CRC-32C: a changed byte is an error, not a pixel
                compressors=(ZstdCodec(level=3), Crc32cCodec()),
            )
        group.attrs.update(
            {"napari_cpadv": KIND, "original": identity, "touched": {}, "applied": 0}
        )
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        base.close()
    return open_delta(out, original=base.path)


def open_delta(
    folder: str | os.PathLike[str], *, original: str | os.PathLike[str] | None = None
) -> Slide:
    """The adversarial slide stored at ``folder`` as a ``Slide``.

    ``original`` gives the original slide when it has moved (it is recognised by its
    content's SHA-256).

    Raises
    ------
    SlideError
        When the folder is not a delta slide, its tile index is missing or does not match
        its chunks, or the original is missing or another file.
    """
    import zarr

    p = Path(folder)
    if not (p / "zarr.json").is_file():
        raise SlideError(p, "not a delta slide (no zarr.json: missing or damaged)")
    try:
        group = zarr.open_group(str(p), mode="r+")
        attrs: dict[str, Any] = dict(group.attrs)
    except Exception as exc:  # unreadable metadata: JSON, zarr or file errors alike
        raise SlideError(p, f"not a readable delta slide ({type(exc).__name__}: {exc})") from None
    if attrs.get("napari_cpadv") != KIND:
        raise SlideError(p, "not a napari-cpadv delta slide")
    record = attrs.get("original")
    if not isinstance(record, dict):
        raise SlideError(p, "its record of the original slide is missing")
    path = find_original(p, record, Path(original) if original is not None else None)
    touched = _index(p, group, attrs)
    base = open_slide(path)
    for level in touched:
        if not 0 <= level < len(base.geometry) or str(level) not in group:
            raise SlideError(p, f"its tile index names level {level}, which it does not hold")
    store = DeltaStore(base.store, p, group, touched)
    # its dask levels (``Slide.levels``) read the delta store, under names of their own
    return replace(base, path=p, store=store, _dask_name=None)  # type: ignore[arg-type]


def relink(folder: str | os.PathLike[str], original: str | os.PathLike[str]) -> Path:
    """Record a moved or copied original's new place in the delta slide at ``folder``, after
    checking that its content is the original's (SHA-256). Returns the path recorded."""
    import zarr

    p, path = Path(folder), Path(original)
    open_delta(p, original=path)  # refuses another file, or a damaged delta
    group = zarr.open_group(str(p), mode="r+")
    record: Any = group.attrs["original"]
    group.attrs["original"] = identity_of(path, record["sha256"])  # verified just above
    return path.resolve()


def _index(p: Path, group: Any, attrs: dict[str, Any]) -> dict[int, set[tuple[int, int]]]:
    """The tile index, checked against the chunks on disk.

    A crash between a tile's chunks and the index leaves that tile's chunks out of the
    index (read from the original, as designed); more chunks than one ``apply`` writes
    outside the index, or an index emptied after tiles were applied, is damage.
    """
    raw = attrs.get("touched")
    if not isinstance(raw, dict):
        raise SlideError(p, "its tile index is missing (damaged zarr.json?)")
    try:
        touched = {int(k): {(int(t[0]), int(t[1])) for t in v} for k, v in raw.items()}
    except (TypeError, ValueError, IndexError):
        raise SlideError(p, "its tile index is damaged") from None
    applied = attrs.get("applied", 0)
    if isinstance(applied, int) and applied > 0 and not any(touched.values()):
        raise SlideError(p, f"its tile index is empty, but {applied} region(s) were applied")
    stray = 0
    for level_dir in p.iterdir():
        if not (level_dir.is_dir() and level_dir.name.isdigit()):
            continue
        listed = touched.get(int(level_dir.name), set())
        for chunk in (level_dir / "c").glob("*/*/0"):
            if (int(chunk.parent.parent.name), int(chunk.parent.name)) not in listed:
                stray += 1
    if stray > ORPHANS_ALLOWED:
        raise SlideError(
            p, f"{stray} stored tiles are missing from its tile index (a damaged index?)"
        )
    return touched


ORPHANS_ALLOWED = 256
"""Chunks outside the index one interrupted ``apply`` can leave (its tiles at every level)."""


def export_tiff(slide: Slide, path: str | os.PathLike[str]) -> Path:
    """Write ``slide`` (a delta slide or any slide) as a tiled pyramidal TIFF, deflate tiles."""
    import tifffile

    out = Path(path)
    g0 = slide.geometry[0]
    with (
        replacing(out) as tmp,
        tifffile.TiffWriter(tmp, bigtiff=g0.rows * g0.cols * 3 * 1.2 > 2**31) as tw,
    ):
        for k, g in enumerate(slide.geometry):
            tiles = (
                slide.store.read_tile(k, tr, tc)
                for tr in range(-(-g.rows // g.tile_rows))
                for tc in range(-(-g.cols // g.tile_cols))
            )
            res: dict[str, Any] = {}
            if slide.mpp is not None:
                ds = slide.downsamples[k]
                res = {
                    "resolution": (1e4 / (slide.mpp[0] * ds), 1e4 / (slide.mpp[1] * ds)),
                    "resolutionunit": "CENTIMETER",
                }
            tw.write(
                tiles,
                shape=(g.rows, g.cols, 3),
                dtype=np.uint8,
                tile=(g.tile_rows, g.tile_cols),
                compression="zlib",
                photometric="rgb",
                subfiletype=1 if k else 0,
                software="napari-cpadv",
                metadata=None,
                **res,
            )
    return out


def is_delta(path: str | os.PathLike[str]) -> bool:
    """Cheap test: a folder whose zarr.json names a napari-cpadv delta slide."""
    try:
        meta = json.loads((Path(path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("attributes", {}).get("napari_cpadv") == KIND
