"""Heatmaps for the viewer, computed when napari asks for a chunk and cached on disk.

``OnDemandHeatmap`` is an array over the whole level's cell grid. Reading any part runs the
detector on the blocks of cells it touches that are not yet in the cache (a zarr array on
disk, one chunk per block), writes them there, and answers from the cache; the next pan,
the next session, or a batch run over the same cache all reuse them. The coarser levels of
the pyramid (``levels``) are NaN-aware 2x means of the finer ones, computed from the same
cache.

In the viewer the heatmap runs in the ``background`` (``start``): a read answers at once
from the cache (NaN, drawn transparent, where a block is not computed yet) and queues the
missing blocks for one worker thread, the most recently asked first (where the user is
looking now), which reports each finished block (``ready``) so that the layer is redrawn;
``stop`` drops the queue and ends the thread within one LCA iteration. napari reads
layers on its GUI thread; this keeps every read a cache lookup.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.inference.heatmap import Window, cell_shape, halve, run_windows, sigmoid
from napari_cpadv.models.detector import Detector
from napari_cpadv.slide.slide import Slide

BLOCK_PIXELS = 512  # level pixels per block side; the chunk of the cache


def cache_key(slide: Slide, detector: Detector, level: int, weights_sha: str) -> str:
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
        detector: Detector,
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
        self.ready = 0  # blocks finished in the background (a counter the viewer polls)
        self.error: Exception | None = None  # what stopped the background thread, if anything
        self._queue: list[Window] = []  # blocks asked for and not yet run, newest last
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

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

    def start(self) -> None:
        """Compute from now on in the background: reads answer from the cache at once."""
        if self._thread is None:
            self._stopped = False
            self._thread = threading.Thread(target=self._work, name="cpadv-heatmap", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Drop the queued blocks and end the background thread (within one step)."""
        with self._wake:
            self._stopped = True
            self._queue.clear()
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    @property
    def waiting(self) -> int:
        """Blocks asked for and not computed yet."""
        return len(self._queue)

    def request(self, area: Window) -> None:
        """Queue the blocks of ``area`` that are neither cached nor queued (background)."""
        from napari_cpadv.inference.heatmap import windows

        todo = [
            w
            for w in windows(self.shape, block=self.block, area=area)
            if not self._done(w.row // self.block, w.col // self.block)
        ]
        with self._wake:
            for w in todo:
                if w in self._queue:
                    self._queue.remove(w)
                self._queue.append(w)  # asked again: now the newest
            self._wake.notify_all()

    def _work(self) -> None:
        from napari_cpadv.progress import Cancelled, cancellable

        with cancellable(lambda: self._stopped):
            while True:
                with self._wake:
                    while not self._queue and not self._stopped:
                        self._wake.wait()
                    if self._stopped:
                        return
                    w = self._queue.pop()
                try:
                    self.ensure(w)
                except Cancelled:
                    return
                except Exception as exc:  # shown by the viewer; the thread ends
                    self.error = exc
                    return
                self.ready += 1

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The cells ``rows, cols``: computed first, or queued in the background (NaN
        until they are done)."""
        if rows.stop > rows.start and cols.stop > cols.start:
            area = Window(rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start)
            if self._thread is not None:
                self.request(area)
            else:
                self.ensure(area)
        return np.asarray(self._array[rows, cols])

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, key: Any) -> np.ndarray:
        (rows, cols), drop, steps = _slices(key, self.shape)
        return _pick(self.read(rows, cols), drop, steps)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)

    def levels(self, *, smallest: int = 256) -> list[Any]:
        """Array-likes finest first: this grid, then NaN-aware 2x means down to ``smallest``
        (each read through this grid: computed, or queued in the background). Not dask
        arrays: napari keeps dask chunks in its cache, and a block drawn NaN before it was
        computed would stay NaN."""
        out: list[Any] = [self]
        while max(out[-1].shape) > smallest:
            out.append(Coarse(self, 2 ** len(out)))
        return out


class Coarse:
    """A coarser level of an ``OnDemandHeatmap``: each cell the NaN-aware mean of
    ``factor`` x ``factor`` cells of the grid (``factor`` a power of 2)."""

    ndim = 2
    dtype = np.dtype("float32")

    def __init__(self, base: OnDemandHeatmap, factor: int) -> None:
        self.base, self.factor = base, factor
        self.shape = tuple(-(-n // factor) for n in base.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, key: Any) -> np.ndarray:
        (rows, cols), drop, steps = _slices(key, self.shape)  # type: ignore[arg-type]
        f, (n_r, n_c) = self.factor, self.base.shape
        fine = self.base.read(
            slice(rows.start * f, min(rows.stop * f, n_r)),
            slice(cols.start * f, min(cols.stop * f, n_c)),
        )
        out = fine
        while out.shape[0] > rows.stop - rows.start or out.shape[1] > cols.stop - cols.start:
            out = halve(out)
        return _pick(out[: rows.stop - rows.start, : cols.stop - cols.start], drop, steps)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)


def _pick(values: np.ndarray, drop: tuple[bool, bool], steps: tuple[int, int]) -> np.ndarray:
    """What a key asked for from the contiguous ``values`` read for it."""
    return values[tuple(0 if d else slice(None, None, k) for d, k in zip(drop, steps, strict=True))]


def _chunk_exists(array: Any, br: int, bc: int) -> bool:
    import zarr.storage

    store = array.store_path.store
    if isinstance(store, zarr.storage.LocalStore):
        root = Path(str(store.root)) / array.store_path.path
        return (root / "c" / str(br) / str(bc)).is_file()
    return not np.isnan(np.asarray(array[br * array.chunks[0], bc * array.chunks[1]]))


def _slices(
    key: Any, shape: tuple[int, int]
) -> tuple[tuple[slice, slice], tuple[bool, bool], tuple[int, int]]:
    """Contiguous slices for a key of slices and integers, which axes were integers, and
    the steps to take from what the slices read (napari subsamples for thumbnails)."""
    if not isinstance(key, tuple):
        key = (key,)
    key = key + (slice(None),) * (2 - len(key))
    out, drop, steps = [], [], []
    for k, n in zip(key, shape, strict=True):
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step < 1:
                raise IndexError("OnDemandHeatmap supports forward slices only")
            out.append(slice(start, max(start, stop)))
            drop.append(False)
            steps.append(step)
        elif isinstance(k, int | np.integer):
            i = int(k) % n
            out.append(slice(i, i + 1))
            drop.append(True)
            steps.append(1)
        else:
            raise IndexError(f"unsupported index {k!r}")
    return (out[0], out[1]), (drop[0], drop[1]), (steps[0], steps[1])
