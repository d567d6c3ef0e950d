"""Tiles decoded ahead of the view (issue 18, item 2): the plan (ahead of the motion first,
then the coarser and finer views, within a budget), one cache with the view's reads, never
competing with a view being read, replaced when the view moves away, at the lowest CPU
priority, and quiet about a damaged tile that only the view itself reports."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from napari_cpadv.errors import SlideError
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.pixels import LevelGeometry
from napari_cpadv.slide.prefetch import Prefetch

# an 8,192 x 16,384 level 0 of 512-pixel tiles (16 x 32) and two coarser levels
GEOMETRY = (
    LevelGeometry(8192, 16384, 512, 512, 1.0),
    LevelGeometry(4096, 8192, 512, 512, 2.0),
    LevelGeometry(2048, 4096, 512, 512, 4.0),
)
TILE = 512 * 512 * 3
VIEW = (1000, 3000, 2000, 4600)  # level-1 pixels, off the tile grid: tiles rows 1-3, cols 5-8


class Recorder:
    """A ``read_tile`` that records what it was asked, optionally slowly or failing."""

    def __init__(self, delay=0.0, fail=()):
        self.read: list[tuple[int, int, int]] = []
        self.delay, self.fail = delay, set(fail)
        self.priority: list[int] = []

    def __call__(self, level, row, col):
        self.priority.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        time.sleep(self.delay)
        if (level, row, col) in self.fail:
            raise SlideError("x.svs", f"cannot read level {level} tile ({row}, {col})")
        self.read.append((level, row, col))


def test_the_plan_looks_ahead_of_the_motion_then_one_level_up_and_down():
    plan = Prefetch(Recorder(), GEOMETRY, 10**9).plan(1, VIEW, (0.0, 300.0))  # moving right
    own = {(1, r, c) for r in range(1, 4) for c in range(5, 9)}
    assert not own & set(plan)  # the view's own tiles are the view's to read
    # first the two columns ahead on the right, the nearest first
    assert {t[2] for t in plan[:5]} == {9} and {t[2] for t in plan[5:10]} == {10}
    same = [t for t in plan if t[0] == 1]
    assert set(same) == {(1, r, c) for r in range(0, 5) for c in range(4, 11)} - own
    assert min(c for _, _, c in same) == 4 and max(c for _, _, c in same) == 10
    # then the coarser view (level 2: rows 500-1000, cols 1500-2300) and the finer one
    after = plan[len(same) :]
    coarse = {(2, r, c) for r in range(0, 2) for c in range(2, 5)}
    fine = {(0, r, c) for r in range(3, 8) for c in range(11, 18)}
    assert set(after[: len(coarse)]) == coarse and set(after[len(coarse) :]) == fine


def test_the_plan_stays_within_its_budget_and_the_level():
    ahead = Prefetch(Recorder(), GEOMETRY, 5 * TILE).plan(1, VIEW, (-50.0, 0.0))  # moving up
    assert len(ahead) == 5 and all(t[0] == 1 and t[1] in (0, 1) for t in ahead)
    corner = Prefetch(Recorder(), GEOMETRY, 10**9).plan(0, (0, 0, 300, 300), (0.0, 0.0))
    assert all(r >= 0 and c >= 0 for _, r, c in corner)
    assert {t for t in corner if t[0] == 0} == {(0, 0, 1), (0, 1, 0), (0, 1, 1)}


def test_tiles_ahead_wait_while_a_view_is_read_then_all_are_read_at_nice_19():
    rec = Recorder()
    ahead = Prefetch(rec, GEOMETRY, 10**9)
    with ahead.on_screen():
        ahead.saw(1, *VIEW)
        time.sleep(0.2)
        assert rec.read == []  # the view on screen first
    assert ahead.idle(10)
    assert rec.read == ahead.plan(1, VIEW, (0.0, 0.0)) and ahead.decoded == len(rec.read)
    assert set(rec.priority) == {19}  # the reading thread yields the cores to drawing
    ahead.close()


def test_a_view_moving_away_cancels_the_tiles_planned_for_the_old_one():
    rec = Recorder(delay=0.05)
    ahead = Prefetch(rec, GEOMETRY, 10**9)
    ahead.saw(1, *VIEW)
    deadline = time.monotonic() + 10
    while not rec.read and time.monotonic() < deadline:
        time.sleep(0.005)
    far = (0, 0, 500, 500)
    ahead.saw(1, *far)
    assert ahead.idle(20)
    first, moved = ahead.plan(1, VIEW, (0.0, 0.0)), ahead.plan(1, far, (-1000.0, -3000.0))
    old = [t for t in rec.read if t not in moved]
    assert 1 <= len(old) <= 3 and old == first[: len(old)]  # only those begun before the move
    assert set(moved) <= set(rec.read)
    ahead.close()


def test_a_whole_level_read_is_no_view_and_plans_nothing():
    rec = Recorder()
    ahead = Prefetch(rec, GEOMETRY, 10**9)
    ahead.saw(2, 0, 0, 2048, 4096)  # napari's thumbnail of the coarsest level
    assert ahead.idle(1) and rec.read == []


def test_a_damaged_tile_ahead_is_skipped_quietly_and_the_rest_is_read():
    plan = Prefetch(Recorder(), GEOMETRY, 10**9).plan(1, VIEW, (0.0, 0.0))
    rec = Recorder(fail={plan[0]})
    ahead = Prefetch(rec, GEOMETRY, 10**9)
    ahead.saw(1, *VIEW)
    assert ahead.idle(10) and rec.read == plan[1:]
    ahead.close()
    ahead.saw(1, 0, 0, 100, 100)  # closed: plans nothing more
    assert ahead.idle(1) and rec.read == plan[1:]


def test_a_pan_in_napari_s_arrays_finds_its_tiles_in_the_shared_cache(small_slide):
    """The views napari reads (off the tile grid) as the user pans right: each new view's
    tiles were decoded ahead into the cache the view reads (no miss after the first view),
    and the pixels are those read without any reading ahead."""
    slide = open_slide(small_slide.path)
    slide.cache.clear()
    level = slide.arrays[0]
    fresh = open_slide(small_slide.path, cache_bytes=0)
    first = level[300:700, 100:500]  # tiles: rows 1-2, columns 0-1 (256-pixel tiles)
    for c0 in (300, 700):  # columns 1-2, then 2-4: two columns ahead once it moves
        assert slide.prefetch.idle(20)
        misses = slide.cache.misses  # the reading ahead's own misses are before this
        view = level[300:700, c0 : c0 + 400]
        assert slide.cache.misses == misses, c0
        np.testing.assert_array_equal(view, fresh.read_region(0, 300, c0, 400, 400))
    np.testing.assert_array_equal(first, fresh.read_region(0, 300, 100, 400, 400))
    assert slide.prefetch.decoded > 0
    slide.close()
    assert slide.prefetch.idle(5)


def test_a_damaged_tile_is_reported_by_the_view_not_by_the_reading_ahead(small_slide):
    slide = open_slide(small_slide.path)
    slide.cache.clear()
    real = slide.store.read_tile
    bad = (0, 1, 2)

    def read_tile(level, row, col):
        if (level, row, col) == bad:
            raise SlideError(slide.path, "cannot read level 0 tile (1, 2): broken JPEG")
        return real(level, row, col)

    object.__setattr__(slide.store, "read_tile", read_tile)
    slide.arrays[0][300:500, 300:500]  # tile (1, 2) is ahead of this view: skipped there
    assert slide.prefetch.idle(20)
    with pytest.raises(SlideError, match=r"tile \(1, 2\)"):
        slide.arrays[0][300:500, 520:700]
    slide.close()
