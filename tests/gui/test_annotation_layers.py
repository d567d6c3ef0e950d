from __future__ import annotations

import numpy as np
import pytest

from napari_cpadv.annotations import read_annotations, write_annotations
from napari_cpadv.annotations.masks import write_mask_tiff
from napari_cpadv.annotations.model import Annotation
from napari_cpadv.annotations.raster import Grid, rasterize

pytestmark = pytest.mark.gui

# The long bar of this "L" runs down (along y, rows) at small x.
ASYM = Annotation([(20, 10), (120, 10), (120, 40), (50, 40), (50, 200), (20, 200)], cls="Tumor")


def test_annotations_open_on_the_slide_in_micrometres(make_napari_viewer, small_slide, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(small_slide.path, plugin="napari-cpadv")
    path = write_annotations([ASYM], tmp_path / "l.geojson")
    [shapes] = viewer.open(path, plugin="napari-cpadv")
    assert type(shapes).__name__ == "Shapes"
    assert tuple(shapes.scale) == pytest.approx((0.243, 0.243))
    verts = shapes.data[0]
    np.testing.assert_allclose(verts[:, 0], ASYM.exterior[:, 1])  # rows are y
    np.testing.assert_allclose(verts[:, 1], ASYM.exterior[:, 0])  # cols are x
    # the vertex at level-0 (x=50, y=200) is at world (200, 50) * mpp
    world = shapes.data_to_world(verts[4])
    np.testing.assert_allclose(world, np.array([200, 50]) * 0.243)
    # and it sits on the same slide pixel: the image layer maps it back to (200, 50)
    image = viewer.layers[0]
    np.testing.assert_allclose(image.world_to_data(world), [200, 50])


def test_shapes_writers_round_trip(make_napari_viewer, tmp_path):
    holey = Annotation(
        [(0, 0), (400, 0), (400, 300), (0, 300)], holes=[[(100, 100), (200, 100), (200, 200)]]
    )
    src = write_annotations([holey, ASYM], tmp_path / "in.xml")
    viewer = make_napari_viewer()
    [shapes] = viewer.open(src, plugin="napari-cpadv")
    assert len(shapes.data) == 2  # two areas, the hole drawn as a hole of the first
    # napari fills around the hole: a point in it is in no shape, one beside it in the first
    assert shapes.get_value([130.0, 170.0])[0] is None  # (row, col) inside the hole
    assert shapes.get_value([250.0, 300.0])[0] == 0  # (row, col) in the ring, clear of ASYM
    for ext in ("geojson", "xml"):
        out = tmp_path / f"out.{ext}"
        viewer.layers.save(str(out), selected=False, plugin="napari-cpadv")
        back = read_annotations(out)
        grid = Grid(320, 420)
        np.testing.assert_array_equal(rasterize(back, grid), rasterize([holey, ASYM], grid))


def test_mask_opens_as_multiscale_labels_and_saves_back(make_napari_viewer, tmp_path):
    mask = np.zeros((1200, 1600), np.uint8)
    mask[100:300, 200:700] = 1
    path = write_mask_tiff(mask, tmp_path / "mask.tif", mpp=(0.25, 0.25), downsample=(4, 4))
    viewer = make_napari_viewer()
    [labels] = viewer.open(path, plugin="napari-cpadv")
    assert type(labels).__name__ == "Labels" and labels.multiscale
    assert tuple(labels.scale) == pytest.approx((1.0, 1.0))  # 0.25 µm x 4
    out = tmp_path / "again.tif"
    viewer.layers.save(str(out), selected=False, plugin="napari-cpadv")
    import openslide

    o = openslide.OpenSlide(out)
    np.testing.assert_array_equal(np.asarray(o.read_region((0, 0), 0, (1600, 1200)))[..., 0], mask)
    assert float(o.properties["openslide.mpp-x"]) == pytest.approx(1.0)


def test_a_qupath_export_with_cell_points_and_lines_opens_and_saves_back(
    make_napari_viewer, small_slide, tmp_path
):
    import json

    from ..annotations.test_other_tools import QUPATH

    src = tmp_path / "qupath.geojson"
    src.write_text(json.dumps(QUPATH))
    viewer = make_napari_viewer()
    viewer.open(small_slide.path, plugin="napari-cpadv")
    with pytest.warns(UserWarning, match="skipped 1 feature"):
        shapes, points = viewer.open(src, plugin="napari-cpadv")
    assert (type(shapes).__name__, type(points).__name__) == ("Shapes", "Points")
    assert list(shapes.shape_type) == ["polygon", "polygon", "path", "path", "path", "polygon"]
    assert len(points.data) == 4 and list(points.features["class"][:3]) == ["Tumor"] * 3
    assert tuple(points.scale) == pytest.approx((0.243, 0.243))
    np.testing.assert_allclose(points.data[2], [210.25, 300.5])  # (row, col) of (x, y)
    for layer, ext in ((points, "geojson"), (points, "xml"), (shapes, "geojson")):
        out = tmp_path / f"{layer.name}.{ext}"
        viewer.layers.selection = {layer}
        viewer.layers.save(str(out), selected=True, plugin="napari-cpadv")
        back = read_annotations(out)
        want = [
            a
            for a in read_annotations_quietly(src)
            if (a.geometry == "points") == (layer is points)
        ]
        key = lambda a: (a.geometry, a.cls, a.exterior.tolist())  # noqa: E731
        assert sorted(map(key, back)) == sorted(map(key, want)), out.name


def read_annotations_quietly(path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_annotations(path)


def test_a_shape_drawn_after_selecting_a_hole_is_a_new_object(make_napari_viewer, tmp_path):
    holey = Annotation(
        [(0, 0), (400, 0), (400, 300), (0, 300)],
        holes=[[(100, 100), (200, 100), (200, 200)]],
        cls="Tumor",
        id="t1",
    )
    src = write_annotations([holey], tmp_path / "in.geojson")
    viewer = make_napari_viewer()
    [shapes] = viewer.open(src, plugin="napari-cpadv")
    shapes.selected_data = {0}  # napari copies its features to what is drawn next
    shapes.add_polygons([np.array([[500.0, 500.0], [500.0, 600.0], [600.0, 600.0]])])
    assert list(shapes.features["id"]) == ["t1", "t1"]  # copied, as napari does
    out = tmp_path / "out.geojson"
    viewer.layers.save(str(out), selected=False, plugin="napari-cpadv")
    back = read_annotations(out)
    assert len(back) == 2 and len(back[0].holes) == 1 and back[1].holes == ()
    assert back[0].id == "t1" and back[1].id != "t1" and back[1].cls == "Tumor"
