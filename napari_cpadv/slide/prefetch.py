"""Tiles decoded ahead of the viewer, so that a steady pan or zoom finds them in the cache.

napari reads a multiscale layer one view at a time: the visible rectangle at the level it
draws (``LevelArray.__getitem__``). Each such read tells ``Prefetch`` where the view is and
where it is going (its shift since the last read at that level); it then plans, in this
order,

1. the tiles of the current level ahead of the view in the direction it moves (``AHEAD``
   tiles deep, the nearest first), then the rest of the ring of tiles around it;
2. the view at the next coarser level (what a zoom out draws first);
3. the view at the next finer level (what a zoom in needs);

at most ``budget`` bytes of tiles in all (a quarter of the slide's cache by default, so
that what is ahead never evicts what is on screen), and one background thread decodes them
into the slide's shared tile cache (the same cache and the same tile reads as the view:
one cache, not two). The thread never competes with the tiles on screen: it waits while a
view is being read, and it runs at the lowest CPU priority (``nice`` 19; Linux gives each
thread its own), so that drawing and the view's own decoding take the cores first while the
user is moving. Each new view replaces the plan, which cancels the tiles planned for a
view the user has left. A tile that cannot be read ahead is skipped: it raises its error
when the view itself reads it.

A read of a whole level (napari's thumbnail of the coarsest level, ``np.asarray``) is not
a view and plans nothing.

No library does this for an arbitrary array-like (napari's asynchronous slicing loads the
view off the GUI thread but nothing ahead of it; dask's and zarr's caches keep what was
read), hence this module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from napari_cpadv.slide.pixels import LevelGeometry

AHEAD = 2
"""Tiles beyond the view planned in the direction the view moves (one all around)."""


class Prefetch:
    """The plan of tiles to decode ahead of the view of one slide, and the thread that does.

    Parameters
    ----------
    read_tile
        ``read_tile(level, tile_row, tile_col)``: decodes one tile into the shared cache.
    geometry
        The slide's levels.
    budget
        Bytes of tiles one plan may hold.
    """

    def __init__(self, read_tile: Any, geometry: tuple[LevelGeometry, ...], budget: int) -> None:
        self._read_tile = read_tile
        self._geometry = geometry
        self._budget = budget
        self._cond = threading.Condition()
        self._queue: list[tuple[int, int, int]] = []
        self._on_screen = 0
        self._last: dict[int, tuple[float, float]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self._busy = False
        self.decoded = 0
        """Tiles read ahead so far (cached ones included)."""

    @contextmanager
    def on_screen(self) -> Iterator[None]:
        """A view being read: the tiles ahead wait until it is done."""
        with self._cond:
            self._on_screen += 1
        try:
            yield
        finally:
            with self._cond:
                self._on_screen -= 1
                self._cond.notify_all()

    def saw(self, level: int, r0: int, c0: int, r1: int, c1: int) -> None:
        """The view read rows ``r0:r1``, columns ``c0:c1`` of ``level``: plan anew."""
        g = self._geometry[level]
        if (r0, c0, r1, c1) == (0, 0, g.rows, g.cols):  # a whole level: no view
            return
        centre = ((r0 + r1) / 2, (c0 + c1) / 2)
        last = self._last.get(level, centre)
        self._last[level] = centre
        plan = self.plan(level, (r0, c0, r1, c1), (centre[0] - last[0], centre[1] - last[1]))
        with self._cond:
            if self._closed:
                return
            self._queue = plan
            if plan and self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cpadv-prefetch", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def plan(
        self, level: int, view: tuple[int, int, int, int], motion: tuple[float, float]
    ) -> list[tuple[int, int, int]]:
        """The tiles ``(level, tile_row, tile_col)`` to decode ahead of ``view`` (level
        pixels ``r0, c0, r1, c1``) moving by ``motion`` (level pixels a read), in order,
        within the budget; the view's own tiles are not in it."""
        g = self._geometry[level]
        own = _tiles(g, view)
        ring = _tiles(g, _grown(g, view, motion))

        def order(t: tuple[int, int]) -> tuple[bool, int]:
            # the tiles beyond the view where it moves first, each nearest the view first
            ahead = (
                (motion[0] > 0 and t[0] >= own[1])
                or (motion[0] < 0 and t[0] < own[0])
                or (motion[1] > 0 and t[1] >= own[3])
                or (motion[1] < 0 and t[1] < own[2])
            )
            gap = max(own[0] - t[0], t[0] - own[1] + 1, own[2] - t[1], t[1] - own[3] + 1)
            return (not ahead, gap)

        same = sorted((t for t in _each(ring) if not _inside(t, own)), key=order)
        out = [(level, *t) for t in same]
        for other in (level + 1, level - 1):  # coarser first: a zoom out draws it at once
            if 0 <= other < len(self._geometry):
                scaled = _scaled(g, self._geometry[other], view)
                out += [(other, *t) for t in _each(_tiles(self._geometry[other], scaled))]
        kept, total = [], 0
        for t in out:
            size = self._geometry[t[0]].tile_rows * self._geometry[t[0]].tile_cols * 3
            if total + size > self._budget:
                break
            kept.append(t)
            total += size
        return kept

    def close(self) -> None:
        """Stop reading ahead (the slide is closing)."""
        with self._cond:
            self._closed = True
            self._queue = []
            self._cond.notify_all()

    def idle(self, timeout: float) -> bool:
        """Wait until the plan is done (for tests and benchmarks); ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _run(self) -> None:
        _lowest_priority()
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._closed or (self._queue and not self._on_screen))
                if self._closed:
                    return
                level, row, col = self._queue.pop(0)
                self._busy = True
            with suppress(Exception):  # the view's own read of the tile reports its error
                self._read_tile(level, row, col)
            self.decoded += 1


def _lowest_priority() -> None:
    """This thread at nice 19 (Linux threads have their own); elsewhere unchanged."""
    with suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _tiles(g: LevelGeometry, view: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Tile rows ``[a, b)`` and columns ``[c, d)`` covering ``view``, clipped to the level."""
    rows, cols = g.grid
    r0, c0, r1, c1 = view
    a, c = max(int(r0 // g.tile_rows), 0), max(int(c0 // g.tile_cols), 0)
    b = min(int(-(-r1 // g.tile_rows)), rows)
    d = min(int(-(-c1 // g.tile_cols)), cols)
    return a, max(a, b), c, max(c, d)


def _grown(
    g: LevelGeometry, view: tuple[int, int, int, int], motion: tuple[float, float]
) -> tuple[float, float, float, float]:
    """``view`` with one tile all around and ``AHEAD`` tiles on the side it moves to."""
    r0, c0, r1, c1 = view
    up = AHEAD if motion[0] < 0 else 1
    down = AHEAD if motion[0] > 0 else 1
    left = AHEAD if motion[1] < 0 else 1
    right = AHEAD if motion[1] > 0 else 1
    return (
        r0 - up * g.tile_rows,
        c0 - left * g.tile_cols,
        r1 + down * g.tile_rows,
        c1 + right * g.tile_cols,
    )


def _scaled(
    g: LevelGeometry, other: LevelGeometry, view: tuple[int, int, int, int]
) -> tuple[float, float, float, float]:
    """``view`` (pixels of ``g``'s level) in pixels of ``other``'s level."""
    f = g.downsample / other.downsample
    return tuple(v * f for v in view)  # type: ignore[return-value]


def _each(span: tuple[int, int, int, int]) -> Iterator[tuple[int, int]]:
    a, b, c, d = span
    return ((r, k) for r in range(a, b) for k in range(c, d))


def _inside(t: tuple[int, int], span: tuple[int, int, int, int]) -> bool:
    return span[0] <= t[0] < span[1] and span[2] <= t[1] < span[3]
