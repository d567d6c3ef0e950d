from __future__ import annotations

import numpy as np
import pytest

from napari_cpadv.annotations.model import Annotation
from napari_cpadv.annotations.raster import (
    Grid,
    cell_grid,
    mask_to_annotations,
    rasterize,
)

# An "L": a long vertical bar at small x, a short foot along the top. Swapping x and y
# would put the long bar along the top instead.
ASYM = Annotation([(2, 1), (12, 1), (12, 4), (5, 4), (5, 20), (2, 20)])


def test_pixel_centre_rule():
    sq = Annotation([(10, 10), (20, 10), (20, 20), (10, 20)])
    m = rasterize([sq], Grid(30, 30))
    assert m.sum() == 100 and m[10:20, 10:20].all()


def test_asymmetric_polygon_lands_on_the_right_pixels():
    m = rasterize([ASYM], Grid(25, 15))
    assert m[1:20, 2:5].all()  # rows y 1..19, cols x 2..4: the long bar
    assert m[1:4, 2:12].all()  # the foot along the top
    assert not m[5:, 5:].any()
    assert m.sum() == 3 * 19 + 7 * 3


def test_holes_and_camelyon_exclusions_are_cut_out():
    outer = [(0, 0), (40, 0), (40, 40), (0, 40)]
    inner = [(10, 10), (30, 10), (30, 30), (10, 30)]
    with_hole = rasterize([Annotation(outer, holes=[inner])], Grid(40, 40))
    excl = rasterize([Annotation(outer, cls="_1"), Annotation(inner, cls="_2")], Grid(40, 40))
    # an exclusion listed first is still painted after the tumour (ordered overwrite)
    excl_first = rasterize(
        [Annotation(inner, cls="_2"), Annotation(outer, cls="Tumor")], Grid(40, 40)
    )
    for m in (with_hole, excl, excl_first):
        assert m.sum() == 1600 - 400 and not m[10:30, 10:30].any()


def test_true_downsample_not_powers_of_two():
    # level 0: 1001 x 1537; level 1 floored to 500 x 768: ds = (2.002, 2.0013)
    grid = Grid.of_level((1001, 1537), (500, 768))
    assert grid.ds == pytest.approx((1001 / 500, 1537 / 768))
    far = Annotation([(1400, 900), (1530, 900), (1530, 1000), (1400, 1000)])
    m = rasterize([far], grid)
    rows, cols = np.nonzero(m)
    # with 2**1 the box would land at rows 450.., cols 700..; the true ds moves it
    assert rows.min() == int(np.ceil(900 / grid.ds[0] - 0.5))
    assert cols.min() == int(np.ceil(1400 / grid.ds[1] - 0.5))
    assert rows.max() == int(np.ceil(1000 / grid.ds[0] - 0.5)) - 1


def test_coordinates_beyond_the_slide_are_clipped():
    big = Annotation([(-100, -50), (500, -50), (500, 500), (-100, 500)])
    m = rasterize([big], Grid(20, 30))
    assert m.all() and m.shape == (20, 30)
    window = rasterize([ASYM], Grid(25, 15).window(10, 3, 5, 5))
    np.testing.assert_array_equal(window, rasterize([ASYM], Grid(25, 15))[10:15, 3:8])


def test_cell_grid_fraction_and_label():
    half = Annotation([(0, 0), (6, 0), (6, 8), (0, 8)])  # 6 columns of an 8 x 8 window
    frac, label = cell_grid([half], Grid(8, 8))
    np.testing.assert_allclose(frac, [[1.0, 0.5], [1.0, 0.5]])
    np.testing.assert_array_equal(label, [[1, 1], [1, 1]])
    frac, label = cell_grid([Annotation([(0, 0), (5, 0), (5, 8), (0, 8)])], Grid(8, 8))
    np.testing.assert_array_equal(label, [[1, 0], [1, 0]])  # 4 of 16 pixels is not a tumour cell


def test_mask_to_polygons_round_trip_on_a_coarse_grid():
    outer = Annotation(
        [(0, 0), (160, 0), (160, 160), (0, 160)],
        holes=[[(40, 40), (120, 40), (120, 120), (40, 120)]],
    )
    ds = (4.0, 4.0)
    grid = Grid(50, 50, ds)
    mask = rasterize([outer], grid).astype(float) * 0.9
    mask[45:, 45:] = 0.95  # a tiny separate blob, dropped by min_area
    anns = mask_to_annotations(mask, threshold=0.5, ds=ds, level=2, min_area=500)
    assert len(anns) == 1 and len(anns[0].holes) == 1
    a = anns[0]
    assert a.kind == "detection"
    assert a.measurements["threshold"] == 0.5 and a.measurements["level"] == 2
    assert a.measurements["mean_probability"] == pytest.approx(0.9)
    np.testing.assert_array_equal(rasterize([a], grid, tumour_only=False), rasterize([outer], grid))


@pytest.mark.parametrize("seed", range(6))
def test_fill_equals_the_even_odd_rule_at_every_pixel_centre(seed):
    """Random self-crossing rings with holes, partly beyond the window, against the
    point-in-ring test at each pixel centre (the definition the scanline fill implements)."""
    from napari_cpadv.geometry import fill_polygon, points_in_ring

    rng = np.random.default_rng(seed)
    grid = Grid(37, 53, (1.5, 2.0), row0=3, col0=5)
    rings = [rng.uniform(-20, 140, size=(int(rng.integers(3, 40)), 2)) for _ in range(3)]
    rings[0][:3] = np.round(rings[0][:3])  # some vertices on pixel-centre lines
    out = np.zeros((grid.rows, grid.cols), np.uint8)
    fill_polygon(out, rings, grid, 1)
    r, c = np.mgrid[: grid.rows, : grid.cols]
    px = (grid.col0 + c + 0.5) * grid.ds[1]
    py = (grid.row0 + r + 0.5) * grid.ds[0]
    want = np.zeros(px.shape, bool)
    for ring in rings:
        want ^= points_in_ring(px, py, ring)
    np.testing.assert_array_equal(out.astype(bool), want)


@pytest.mark.slow
def test_fill_memory_is_bounded_by_the_pixels_not_the_vertices():
    """A 20,000-vertex star over 8,000 rows: the old fill held rows x vertices (4.5 GB)."""
    import tracemalloc

    from napari_cpadv.geometry import fill_polygon

    n = 20_000
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = np.where(np.arange(n) % 2, 4000.0, 300.0)  # every edge spans thousands of rows
    ring = np.stack([4000 + radius * np.cos(t), 4000 + radius * np.sin(t)], axis=1)
    grid = Grid(8000, 8000, (1.0, 1.0))
    out = np.zeros((grid.rows, grid.cols), np.uint8)
    tracemalloc.start()
    fill_polygon(out, [ring], grid, 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 400 * 2**20  # 64 MB of toggles, chunks of crossings; not gigabytes
    assert out[4000, 4000] == 1 and out[0, 0] == 0
