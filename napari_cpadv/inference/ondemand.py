"""Heatmaps for the viewer, computed when napari asks for a chunk and cached on disk.

``OnDemandHeatmap`` is an array over the whole level's cell grid. Reading any part runs the
detector on the blocks of cells it touches that are not yet in the cache (a zarr array on
disk, one chunk per block), writes them there, and answers from the cache; the next pan,
the next session, or a batch run over the same cache all reuse them. The coarser levels of
the pyramid are NaN-aware 2x means of the finer ones, computed from the same cache.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.inference.heatmap import Window, cell_shape, halve, run_windows, sigmoid
from napari_cpadv.slide.slide import Slide

BLOCK_PIXELS = 512  # level pixels per block side; the chunk of the cache


def cache_key(slide: Slide, detector: Any, level: int, weights_sha: str) -> str:
    """Cache name: the slide file (path, size, mtime), detector, weights and level."""
    st = os.stat(slide.path)
    ident = "|".join(
        map(
            str,
            (
                os.path.realpath(slide.path),
                st.st_size,
                st.st_mtime_ns,
                detector.name,
                weights_sha,
                level,
            ),
        )
    )
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


class OnDemandHeatmap:
    """Tumour probabilities ``(rows, cols)`` float32 over a level's cell grid, lazily.

    Parameters
    ----------
    detector
        A detector module (see ``models.detector``).
    slide, level
        Where to run it.
    cache
        Folder for the on-disk cache; one zarr array per (slide, detector, weights, level).
    weights_sha
        Identifies the weights in the cache key (the SHA-256 from the weights config).
    """

    ndim = 2
    dtype = np.dtype("float32")

    def __init__(
        self,
        detector: Any,
        slide: Slide,
        level: int,
        *,
        cache: str | os.PathLike[str],
        weights_sha: str,
        device: Any = "cpu",
    ) -> None:
        import zarr

        self.detector, self.slide, self.level, self.device = detector, slide, level, device
        self.shape = cell_shape(slide, level, detector.cell)
        self.block = max(1, BLOCK_PIXELS // detector.cell)
        self.chunks = (self.block, self.block)
        self.path = Path(cache) / f"{cache_key(slide, detector, level, weights_sha)}.zarr"
        self._array = zarr.open_array(
            str(self.path),
            mode="a",
            shape=self.shape,
            chunks=self.chunks,
            dtype="float32",
            fill_value=np.nan,
            zarr_format=3,
            attributes={"napari_cpadv": "heatmap-cache", "detector": detector.name, "level": level},
        )
        self._lock = threading.Lock()
        self.computed = 0  # blocks run by this object (the rest came from the cache)

    def _done(self, br: int, bc: int) -> bool:
        return _chunk_exists(self._array, br, bc)

    def ensure(self, area: Window) -> list[Window]:
        """Run the detector on the blocks of ``area`` not yet cached; returns those blocks."""
        from napari_cpadv.inference.heatmap import windows

        with self._lock:
            todo = [
                w
                for w in windows(self.shape, block=self.block, area=area)
                if not self._done(w.row // self.block, w.col // self.block)
            ]
            for w, logits in run_windows(
                self.detector, self.slide, self.level, todo, device=self.device
            ):
                self._array[w.row : w.row + w.rows, w.col : w.col + w.cols] = sigmoid(logits)
                self.computed += 1
        return todo

    def __getitem__(self, key: Any) -> np.ndarray:
        (rows, cols), drop = _slices(key, self.shape)
        if rows.stop > rows.start and cols.stop > cols.start:
            self.ensure(
                Window(rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start)
            )
        out = np.asarray(self._array[rows, cols])
        return out[tuple(0 if d else slice(None) for d in drop)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)

    def levels(self, *, smallest: int = 256) -> list[Any]:
        """Dask arrays finest first: this grid, then NaN-aware 2x means down to ``smallest``."""
        import dask.array as da

        base = da.from_array(
            self, chunks=self.chunks, name=f"cpadv-heatmap-{self.path.stem}", asarray=False
        )
        out = [base]
        while max(out[-1].shape) > smallest:
            out.append(_halve(out[-1]))
        return out


def _halve(a: Any) -> Any:
    import dask.array as da

    r, c = a.shape
    padded = da.pad(a, ((0, r % 2), (0, c % 2)), constant_values=np.nan)
    blocks = padded.map_blocks(
        halve,
        chunks=tuple(tuple(-(-n // 2) for n in ch) for ch in padded.chunks),
        dtype=np.float32,
    )
    return blocks


def _chunk_exists(array: Any, br: int, bc: int) -> bool:
    import zarr.storage

    store = array.store_path.store
    if isinstance(store, zarr.storage.LocalStore):
        root = Path(str(store.root)) / array.store_path.path
        return (root / "c" / str(br) / str(bc)).is_file()
    return not np.isnan(np.asarray(array[br * array.chunks[0], bc * array.chunks[1]]))


def _slices(key: Any, shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[bool, bool]]:
    """Contiguous slices for a key of slices and integers, and which axes were integers."""
    if not isinstance(key, tuple):
        key = (key,)
    key = key + (slice(None),) * (2 - len(key))
    out, drop = [], []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step != 1:
                raise IndexError("OnDemandHeatmap supports contiguous slices only")
            out.append(slice(start, max(start, stop)))
            drop.append(False)
        elif isinstance(k, int | np.integer):
            i = int(k) % n
            out.append(slice(i, i + 1))
            drop.append(True)
        else:
            raise IndexError(f"unsupported index {k!r}")
    return (out[0], out[1]), (drop[0], drop[1])
