"""Tile sets streamed from slides: seed 000's tiles (and seed 001's patches) indexed once
and read on demand through the plugin's store, instead of written out as PNG files first.

``index_slides`` walks each slide's tissue tiles once (the same tiles, cell labels and
nucleus counts as ``cpadv tiles``: ``dataset.tissue_tile_records``) and keeps only their
positions and labels; ``SlideTiles`` then reads their pixels when a training loop asks.
It is an array-like of shape ``(N, S, S, 3)`` uint8 (``len``, ``shape``, NumPy-style
indexing by an integer, a slice, an index array or a mask, with trailing indices applied
to the tiles read) and a map-style dataset for torch's ``DataLoader``: each worker process
opens its own slides on first use (an OpenSlide handle does not cross a fork).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_cpadv.progress import Progress, Work


@dataclass(frozen=True)
class SlideData:
    """A slide to take tiles from, its annotations and (synthetic slides) its truth JSON."""

    slide: str
    annotations: str | None = None
    truth: str | None = None


class SlideTiles:
    """The pixels of indexed tiles, read from their slides on demand.

    ``keys`` ``(N, 3)``: the slide (an index into ``slides``), then the tile's level row
    and column; every tile is ``size`` x ``size`` pixels of ``level``.
    """

    def __init__(self, slides: Sequence[str], keys: np.ndarray, *, level: int, size: int) -> None:
        self.slides = tuple(str(s) for s in slides)
        self.keys = np.asarray(keys, dtype=np.int64).reshape(-1, 3)
        self.level, self.size = level, size
        self._open: dict[int, Any] = {}
        self._pid = os.getpid()

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.keys), self.size, self.size, 3)

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_open"] = {}  # slides are opened again where the object lands
        return state

    def _slide(self, k: int) -> Any:
        from napari_cpadv.slide import open_slide

        if self._pid != os.getpid():  # a forked DataLoader worker: its own handles
            self._open, self._pid = {}, os.getpid()
        if k not in self._open:
            self._open[k] = open_slide(self.slides[k])
        return self._open[k]

    def read(self, i: int) -> np.ndarray:
        """Tile ``i``'s pixels ``(S, S, 3)`` uint8."""
        k, row, col = (int(v) for v in self.keys[i])
        return self._slide(k).read_region(self.level, row, col, self.size, self.size)

    def __getitem__(self, index: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(index, tuple):
            index, rest = index[0], index[1:]
        if isinstance(index, int | np.integer):
            tile = self.read(int(index))
            return tile[rest] if rest else tile
        chosen = np.arange(len(self))[index]
        tiles = (
            np.stack([self.read(int(i)) for i in chosen])
            if len(chosen)
            else np.zeros((0, self.size, self.size, 3), np.uint8)
        )
        return tiles[(slice(None), *rest)] if rest else tiles

    def select(self, keep: Any) -> SlideTiles:
        """The tiles ``keep`` (indices or a mask), still unread."""
        return SlideTiles(self.slides, self.keys[keep], level=self.level, size=self.size)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)


def index_slides(sources: Sequence[SlideData], *, level: int, size: int) -> Work[dict[str, Any]]:
    """Index every tissue tile of ``sources`` at ``level``: its cell labels and nucleus
    counts in memory, its pixels left in the slide (``SlideTiles``)."""
    from napari_cpadv.annotations.dataset import tissue_tile_records
    from napari_cpadv.slide import open_slide

    keys, masks, fraction, nuclei, tumour, names = [], [], [], [], [], []
    for k, src in enumerate(sources):
        slide = open_slide(src.slide)
        slide.check_level(level)
        for t in tissue_tile_records(
            slide, src.annotations, level=level, size=size, truth=src.truth
        ):
            keys.append((k, t.tile.row, t.tile.col))
            masks.append(t.label.astype(bool))
            fraction.append(t.tumour_cells)
            nuclei.append(t.counts[0])
            tumour.append(t.counts[1])
            names.append(f"{os.path.basename(src.slide)}/{t.tile.row}_{t.tile.col}")
        yield Progress(k + 1, len(sources), {"slide": src.slide, "tiles": len(keys)})
    if not keys:
        raise ValueError(f"no tissue tile of {size} pixels at level {level} in these slides")
    return {
        "images": SlideTiles([s.slide for s in sources], np.asarray(keys), level=level, size=size),
        "masks": np.stack(masks),
        "tumour_cells": np.asarray(fraction),
        "nuclei": np.asarray(nuclei),
        "tumour_nuclei": np.asarray(tumour),
        "names": tuple(names),
    }
