"""``geometry.Box``: the one place a level-0 rectangle changes order (napari's rows and
columns, the command line's x, y, w, h), rounds outward and is clipped to a slide."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from napari_cpadv.geometry import Box

coords = st.floats(-1e5, 1e5, allow_nan=False)


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(1, 500), st.integers(1, 500))
def test_the_two_orders_describe_the_same_rectangle(x, y, w, h):
    box = Box.from_xywh(x, y, w, h)
    assert box.xywh == (x, y, w, h)
    assert Box.from_rows_cols(*box.rows_cols) == box
    assert box.rows_cols == (y, x, y + h, x + w)


@given(coords, coords, st.floats(0.01, 5000), st.floats(0.01, 5000))
def test_outward_covers_every_pixel_the_box_touches(x, y, w, h):
    box = Box(x, y, x + w, y + h)
    out = box.outward()
    assert out.x0 <= box.x0 and out.y0 <= box.y0 and out.x1 >= box.x1 and out.y1 >= box.y1
    assert out.x1 - out.x0 < w + 2 and out.y1 - out.y0 < h + 2  # and no more than that
    assert all(float(v).is_integer() for v in (out.x0, out.y0, out.x1, out.y1))


def test_a_float32_error_on_the_grid_gains_no_pixel():
    """A rectangle drawn on the 512-pixel grid in µm, stored as float32 by napari."""
    mpp = np.float32(0.243)
    r0, c0 = np.float32(1024 * mpp) / mpp, np.float32(2048 * mpp) / mpp
    r1, c1 = np.float32(1536 * mpp) / mpp, np.float32(2560 * mpp) / mpp
    box = Box.from_rows_cols(float(r0), float(c0), float(r1), float(c1))
    assert box.outward(0.01).xywh == (2048, 1024, 512, 512)


def test_clipped_keeps_the_part_on_the_slide():
    assert Box(-10, -20, 50, 60).clipped(rows=40, cols=30) == Box(0, 0, 30, 40)
    assert Box(100, 100, 200, 200).clipped(rows=40, cols=30).empty
    assert not Box.from_xywh(29, 39, 5, 5).clipped(40, 30).empty
    assert not Box.from_xywh(30, 0, 5, 5).overlaps(40, 30)
