"""Annotation files as QuPath (0.4/0.5 GeoJSON export) and ASAP / Camelyon16-17 write them:
points, lines, exclusions, round trips, unfamiliar and hostile content."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_cpadv._annotation_layers import (
    annotation_layers,
    annotations_from_points,
    annotations_from_shapes,
)
from napari_cpadv.annotations import read_annotations, write_annotations
from napari_cpadv.annotations.asap import read_asap
from napari_cpadv.annotations.geojson import read_geojson
from napari_cpadv.annotations.model import exclusions_as_holes
from napari_cpadv.annotations.raster import Grid, rasterize
from napari_cpadv.cli import main
from napari_cpadv.errors import FormatError
from napari_cpadv.geometry import points_in_ring


def _feature(geometry, **props):
    fid = props.pop("id", None)
    f = {"type": "Feature", "geometry": geometry, "properties": props}
    if fid:
        f["id"] = fid
    return f


def _square(x, y, s):
    return [[[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]]


# A QuPath export with cell points, counts, lines, locked and unclassified objects
QUPATH = {
    "type": "FeatureCollection",
    "features": [
        _feature(
            {"type": "Polygon", "coordinates": _square(100, 100, 400)},
            id="a1",
            objectType="annotation",
            classification={"name": "Tumor", "color": [200, 0, 0]},
            isLocked=True,
            name="region 1",
        ),
        _feature(  # unclassified, unnamed: nothing is invented for it
            {"type": "Polygon", "coordinates": _square(700, 100, 100)},
            id="a2",
            objectType="annotation",
        ),
        _feature(  # QuPath's Points tool: tumour cells counted
            {"type": "MultiPoint", "coordinates": [[150, 150], [160, 170], [300.5, 210.25]]},
            id="p1",
            objectType="annotation",
            classification={"name": "Tumor", "color": [200, 0, 0]},
        ),
        _feature(
            {"type": "Point", "coordinates": [720, 130]},
            id="p2",
            objectType="annotation",
            classification={"name": "Immune cells", "color": [160, 90, 160]},
            color=[255, 0, 255],  # older QuPath's top-level object colour
        ),
        _feature(
            {"type": "LineString", "coordinates": [[10, 10], [90, 40], [95, 300]]},
            id="l1",
            objectType="annotation",
            name="margin",
        ),
        _feature(
            {
                "type": "MultiLineString",
                "coordinates": [[[0, 500], [50, 520]], [[60, 530], [99, 560]]],
            },
            id="l2",
            objectType="annotation",
            classification={"name": "Stroma", "color": [0, 150, 0]},
        ),
        _feature(
            {"type": "Polygon", "coordinates": _square(200, 200, 8)},
            id="c1",
            objectType="cell",
            classification={"name": "Tumor", "color": [200, 0, 0]},
            measurements={"Nucleus: Area": 12.5, "Cell: Max caliper": None},
        ),
        _feature(
            {"type": "GeometryCollection", "geometries": []},
            id="g1",
            objectType="annotation",
        ),
    ],
}


@pytest.fixture
def qupath(tmp_path):
    p = tmp_path / "export.geojson"
    p.write_text(json.dumps(QUPATH))
    return p


def test_a_qupath_export_with_points_and_lines_opens(qupath):
    with pytest.warns(UserWarning, match=r"skipped 1 feature.*GeometryCollection"):
        anns = read_geojson(qupath)
    assert [(a.id, a.geometry) for a in anns] == [
        ("a1", "polygon"),
        ("a2", "polygon"),
        ("p1", "points"),
        ("p2", "points"),
        ("l1", "line"),
        ("l2", "line"),
        ("l2", "line"),
        ("c1", "polygon"),
    ]
    a2 = anns[1]
    assert (a2.cls, a2.color, a2.name) == ("", None, "")
    np.testing.assert_array_equal(anns[2].exterior, [[150, 150], [160, 170], [300.5, 210.25]])
    assert anns[0].properties["isLocked"] is True
    assert anns[3].properties["color"] == [255, 0, 255]
    assert anns[7].kind == "detection" and np.isnan(anns[7].measurements["Cell: Max caliper"])
    # in napari: areas and lines in one Shapes layer (lines as paths), points as Points
    [(shapes, skw, sk), (points, pkw, pk)] = annotation_layers(anns, name="x", mpp=(0.5, 0.5))
    assert (sk, pk) == ("shapes", "points")
    assert skw["shape_type"] == ["polygon", "polygon", "path", "path", "path", "polygon"]
    assert len(points) == 4 and pkw["properties"]["class"] == ["Tumor"] * 3 + ["Immune cells"]
    assert pkw["face_color"][:3] == ["#C80000"] * 3
    # and back from the layers to the same objects
    back = annotations_from_shapes(shapes, skw) + annotations_from_points(points, pkw)
    assert sorted((a.id, a.geometry, a.cls) for a in back) == sorted(
        (a.id, a.geometry, a.cls) for a in anns
    )


def test_geojson_to_xml_to_geojson_keeps_what_xml_can_carry(qupath, tmp_path):
    with pytest.warns(UserWarning):
        anns = read_geojson(qupath)
    xml = write_annotations(anns, tmp_path / "a.xml")
    again = read_annotations(xml)
    key = lambda a: (a.geometry, a.cls, a.name, a.color, a.exterior.tolist())  # noqa: E731
    assert [key(a) for a in again] == [key(a) for a in anns]
    geo = write_annotations(again, tmp_path / "b.geojson")
    doc = json.loads(geo.read_text())
    types = [f["geometry"]["type"] for f in doc["features"]]
    assert types == ["Polygon", "Polygon", "MultiPoint", "Point", "LineString",
                     "MultiLineString", "Polygon"]  # fmt: skip
    assert "classification" not in doc["features"][1]["properties"]  # still unclassified
    assert "name" not in doc["features"][1]["properties"]  # still unnamed


def test_geojson_round_trip_keeps_qupath_properties(qupath, tmp_path):
    with pytest.warns(UserWarning):
        anns = read_geojson(qupath)
    doc = json.loads(write_annotations(anns, tmp_path / "again.geojson").read_text())
    by_id = {f["id"]: f for f in doc["features"]}
    want = {f["id"]: f for f in QUPATH["features"] if f["id"] != "g1"}
    assert by_id.keys() == want.keys()
    for fid, f in want.items():
        got = by_id[fid]
        expected = dict(f["properties"])
        if "measurements" in expected:
            expected["measurements"] = {"Nucleus: Area": 12.5, "Cell: Max caliper": None}
        assert got["properties"] == expected, fid
        assert got["geometry"]["type"] == f["geometry"]["type"]


ASAP = """<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Spline" PartOfGroup="metastases" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="0" X="0" Y="0" /><Coordinate Order="1" X="100" Y="0" />
        <Coordinate Order="2" X="100" Y="100" /><Coordinate Order="3" X="0" Y="100" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Polygon" PartOfGroup="normal" Color="#64FE2E">
      <Coordinates>
        <Coordinate Order="0" X="80" Y="40" /><Coordinate Order="1" X="140" Y="40" />
        <Coordinate Order="2" X="140" Y="60" /><Coordinate Order="3" X="80" Y="60" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Dot 1" Type="Dot" PartOfGroup="cells" Color="#0000FF">
      <Coordinates><Coordinate Order="0" X="10" Y="10" /></Coordinates>
    </Annotation>
    <Annotation Name="Set" Type="PointSet" PartOfGroup="cells">
      <Coordinates><Coordinate Order="0" X="20" Y="10" />
      <Coordinate Order="1" X="30" Y="12" /></Coordinates>
    </Annotation>
    <Annotation Name="Ruler" Type="Measurement" PartOfGroup="None" Color="#000000">
      <Coordinates><Coordinate Order="0" X="0" Y="200" />
      <Coordinate Order="1" X="50" Y="200" /></Coordinates>
    </Annotation>
    <Annotation Name="Odd" Type="Ellipse" PartOfGroup="None" Color="#000000">
      <Coordinates><Coordinate Order="0" X="0" Y="0" /></Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups>
    <Group Name="metastases" PartOfGroup="None" Color="#ff0000"><Attributes /></Group>
    <Group Name="normal" PartOfGroup="None" Color="#00ff00"><Attributes /></Group>
    <Group Name="cells" PartOfGroup="None" Color="#0000ff"><Attributes /></Group>
  </AnnotationGroups>
</ASAP_Annotations>
"""


def test_asap_dots_point_sets_and_measurements_open_and_survive_both_ways(tmp_path):
    p = tmp_path / "camelyon17.xml"
    p.write_text(ASAP)
    with pytest.warns(UserWarning, match=r"skipped 1 annotation.*Type 'Ellipse'"):
        anns = read_asap(p)
    assert [(a.name, a.geometry, a.cls) for a in anns] == [
        ("Annotation 0", "polygon", "metastases"),
        ("Annotation 1", "polygon", "normal"),
        ("Dot 1", "points", "cells"),
        ("Set", "points", "cells"),
        ("Ruler", "line", ""),
    ]
    assert anns[3].color == "#0000FF"  # from its group
    assert anns[0].is_tumour and anns[1].is_exclusion
    geo = write_annotations(anns, tmp_path / "c.geojson")  # default: every object kept
    back = read_annotations(write_annotations(read_annotations(geo), tmp_path / "back.xml"))
    key = lambda a: (a.name, a.geometry, a.cls, a.color, a.exterior.tolist())  # noqa: E731
    assert [key(a) for a in back] == [key(a) for a in anns]
    text = (tmp_path / "back.xml").read_text()
    assert 'Type="Spline"' in text and 'Type="PointSet"' in text and 'PartOfGroup="normal"' in text
    # rasterising paints areas only and says what it left out
    mask = tmp_path / "m.tif"
    slide = _slide(tmp_path)
    assert main(["mask", str(slide), str(p), "--out", str(mask)]) == 0


def _slide(tmp_path):
    import tifffile

    path = tmp_path / "blank.tif"
    if not path.exists():
        tifffile.imwrite(
            path, np.full((256, 512, 3), 240, np.uint8), tile=(128, 128), photometric="rgb",
            resolution=(1e4 / 0.25, 1e4 / 0.25), resolutionunit="CENTIMETER", metadata=None,
        )  # fmt: skip
    return path


STROMA = """    <Annotation Name="S" Type="Polygon" PartOfGroup="Stroma" Color="#00AA00">
      <Coordinates>
        <Coordinate Order="0" X="300" Y="0" /><Coordinate Order="1" X="400" Y="0" />
        <Coordinate Order="2" X="400" Y="90" />
      </Coordinates>
    </Annotation>
  </Annotations>"""


def test_mask_reports_objects_it_did_not_paint(tmp_path, capsys):
    p = tmp_path / "c17.xml"
    odd = ASAP.index('    <Annotation Name="Odd"')
    p.write_text(ASAP[:odd] + STROMA + ASAP[ASAP.index("  </Annotations>") + 16 :])
    assert main(["mask", str(_slide(tmp_path)), str(p), "--out", str(tmp_path / "m.tif")]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["not_rasterised"] == {"points": 2, "line": 1}
    assert result["classes_not_painted"] == {"Stroma": 1}  # kept, reported, not tumour
    assert "not rasterised (not areas): 1 line, 2 points" in out.err
    assert 0 < result["tumour_pixels"] < 100 * 100  # the metastasis less the normal region


# -- exclusions -------------------------------------------------------------------------

CROSSING = """<?xml version="1.0"?>
<ASAP_Annotations><Annotations>
  <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="_0" Color="#F4FA58"><Coordinates>
    <Coordinate Order="0" X="10.3" Y="12.7" /><Coordinate Order="1" X="150.2" Y="20.1" />
    <Coordinate Order="2" X="140.9" Y="160.4" /><Coordinate Order="3" X="20.6" Y="130.8" />
  </Coordinates></Annotation>
  <Annotation Name="Annotation 1" Type="Polygon" PartOfGroup="_2" Color="#64FE2E"><Coordinates>
    <Coordinate Order="0" X="-30.1" Y="60.2" /><Coordinate Order="1" X="70.3" Y="55.9" />
    <Coordinate Order="2" X="80.4" Y="100.7" /><Coordinate Order="3" X="-20.5" Y="110.1" />
  </Coordinates></Annotation>
  <Annotation Name="Annotation 2" Type="Polygon" PartOfGroup="Exclusion" Color="#64FE2E">
  <Coordinates>
    <Coordinate Order="0" X="100.2" Y="100.3" /><Coordinate Order="1" X="200.1" Y="100.6" />
    <Coordinate Order="2" X="200.4" Y="200.2" /><Coordinate Order="3" X="100.7" Y="200.5" />
  </Coordinates></Annotation>
</Annotations></ASAP_Annotations>
"""


@pytest.mark.parametrize("holes", [False, True])
def test_an_exclusion_crossing_a_tumour_edge_gives_the_same_mask_after_conversion(tmp_path, holes):
    xml = tmp_path / "tumor_009.xml"
    xml.write_text(CROSSING)
    geo = tmp_path / "tumor_009.geojson"
    args = ["convert", str(xml), str(geo)] + (["--exclusions-as-holes"] if holes else [])
    assert main(args) == 0
    grid = Grid(180, 220)
    from_xml = rasterize(read_annotations(xml), grid)
    from_geo = rasterize(read_annotations(geo), grid)
    np.testing.assert_array_equal(from_geo, from_xml)
    # and both are the tumour less both exclusions at every pixel centre
    anns = read_annotations(xml)
    r, c = np.mgrid[: grid.rows, : grid.cols]
    px, py = c + 0.5, r + 0.5
    want = points_in_ring(px, py, anns[0].exterior)
    want &= ~points_in_ring(px, py, anns[1].exterior) & ~points_in_ring(px, py, anns[2].exterior)
    np.testing.assert_array_equal(from_xml.astype(bool), want)
    # the first-vertex guess of old put the _2 region (first vertex outside) nowhere
    assert from_xml.sum() < points_in_ring(px, py, anns[0].exterior).sum() - 1000
    if holes:
        [tumour] = read_annotations(geo)
        assert tumour.holes == () and len(tumour.exterior) > 4  # cut, not holed: it crosses


def test_exclusions_as_holes_is_an_area_operation():
    from napari_cpadv.annotations import Annotation

    tumour = Annotation([(0, 0), (100, 0), (100, 100), (0, 100)], cls="Tumor")
    inside = Annotation([(20, 20), (40, 20), (40, 40), (20, 40)], cls="normal")
    across = Annotation([(90, 40), (120, 40), (120, 60), (90, 60)], cls="Exclude")
    apart = Annotation([(300, 300), (310, 300), (310, 310)], cls="_2")
    out = exclusions_as_holes([tumour, inside, across, apart])
    [cut] = [a for a in out if a.cls == "Tumor"]
    assert len(cut.holes) == 1
    import shapely

    assert shapely.Polygon(cut.exterior, cut.holes).area == pytest.approx(10000 - 400 - 200)
    assert [a.cls for a in out if a.is_exclusion] == ["_2"]  # cut nothing: kept as it was


# -- hostile files ----------------------------------------------------------------------


def test_geojson_nested_200000_deep_is_refused(tmp_path):
    p = tmp_path / "deep.geojson"
    p.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(FormatError, match="deep.geojson.*nested too deep"):
        read_geojson(p)
    q = tmp_path / "deepcoords.geojson"
    deep = "[" * 200_000 + "1" + "]" * 200_000
    q.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                 f'"geometry": {{"type": "Polygon", "coordinates": {deep}}}}}]}}')  # fmt: skip
    with pytest.raises(FormatError, match="deepcoords.geojson"):
        read_geojson(q)


@pytest.mark.parametrize(
    ("colour", "reason"),
    [
        ('"red"', "'red', not #RRGGBB"),
        ("[NaN, 0, 0]", "nan is not an integer"),
        ("[1e400, 0, 0]", "inf is not an integer"),
        ('[255, "0", 0]', "'0' is not a number"),
        ("[300, 0, 0]", "300 is not an integer 0-255"),
        ("99999999999", "not a packed RGB"),
    ],
)
def test_hostile_colours_are_refused_naming_the_feature(tmp_path, colour, reason):
    p = tmp_path / "colours.geojson"
    good = json.dumps(_feature({"type": "Point", "coordinates": [1, 2]}))
    bad = (
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, '
        f'"properties": {{"classification": {{"name": "Tumor", "color": {colour}}}}}}}'
    )
    p.write_text(f'{{"type": "FeatureCollection", "features": [{good}, {bad}]}}')
    with pytest.raises(FormatError, match=f"colours.geojson: feature 1 has colour.*{reason}"):
        read_geojson(p)


def test_a_measurement_without_a_value_is_refused_naming_the_feature(tmp_path):
    p = tmp_path / "meas.geojson"
    f = _feature({"type": "Point", "coordinates": [1, 2]}, measurements=[{"name": "Area"}])
    p.write_text(json.dumps([f]))
    with pytest.raises(FormatError, match="meas.geojson: feature 0 measurement 0 has no"):
        read_geojson(p)
    f = _feature({"type": "Point", "coordinates": [1, 2]}, measurements={"Area": "big"})
    p.write_text(json.dumps([f]))
    with pytest.raises(FormatError, match="feature 0 measurement 'Area' is not a number"):
        read_geojson(p)


def test_cli_converting_a_hostile_file_is_one_line_and_exit_2(tmp_path, capsys):
    p = tmp_path / "deep.geojson"
    p.write_text("[" * 200_000 + "]" * 200_000)
    assert main(["convert", str(p), str(tmp_path / "out.xml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deep.geojson" in err[0]
    assert not (tmp_path / "out.xml").exists()


def test_mask_with_nothing_on_the_slide_is_refused_unless_allowed(tmp_path, capsys):
    far = tmp_path / "far.xml"
    far.write_text(CROSSING.replace('X="', 'X="9000').replace('X="9000-', 'X="9000'))
    slide = _slide(tmp_path)
    out = tmp_path / "mask.tif"
    out.write_bytes(b"an earlier mask")
    assert main(["mask", str(slide), str(far), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none of the 1 tumour annotations lies on the slide" in err[0]
    assert out.read_bytes() == b"an earlier mask"  # nothing saved is lost
    assert not list(tmp_path.glob(".*.part"))
    assert main(["mask", str(slide), str(far), "--out", str(out), "--allow-empty"]) == 0
    assert json.loads(capsys.readouterr().out)["tumour_pixels"] == 0


def test_scoring_against_annotations_says_what_it_left_out(tmp_path, capsys):
    from tests.conftest import SAMPLE

    xml = tmp_path / "truth.xml"
    text = SAMPLE.with_suffix(".xml").read_text()
    dot = ('<Annotation Name="count" Type="Dot" PartOfGroup="cells"><Coordinates>'
           '<Coordinate Order="0" X="10" Y="10" /></Coordinates></Annotation>')  # fmt: skip
    xml.write_text(text.replace("</Annotations>", dot + "</Annotations>", 1))
    assert main(["evaluate", str(SAMPLE), str(xml), "--detector", "dae"]) == 0
    err = capsys.readouterr().err
    assert "truth.xml: not rasterised (not areas): 1 points" in err
