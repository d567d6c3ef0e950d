from __future__ import annotations

import json

import numpy as np
import pytest

from napari_cpadv.annotations import read_annotations, write_annotations
from napari_cpadv.annotations.asap import read_asap, write_asap
from napari_cpadv.annotations.geojson import read_geojson, write_geojson
from napari_cpadv.annotations.model import Annotation, exclusions_as_holes
from napari_cpadv.annotations.raster import Grid, rasterize
from napari_cpadv.errors import FormatError

CAMELYON_XML = """<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="_0" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="2" X="60.5" Y="60" />
        <Coordinate Order="0" X="10" Y="10.25" />
        <Coordinate Order="3" X="10" Y="60" />
        <Coordinate Order="1" X="60.5" Y="10.25" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Polygon" PartOfGroup="_2" Color="#64FE2E">
      <Coordinates>
        <Coordinate Order="0" X="20" Y="20" />
        <Coordinate Order="1" X="40" Y="20" />
        <Coordinate Order="2" X="40" Y="40" />
        <Coordinate Order="3" X="20" Y="40" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Dot 1" Type="Dot" PartOfGroup="None" Color="#000000">
      <Coordinates><Coordinate Order="0" X="1" Y="1" /></Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups>
    <Group Name="_0" PartOfGroup="None" Color="#ff0000"><Attributes /></Group>
    <Group Name="_2" PartOfGroup="None" Color="#00ff00"><Attributes /></Group>
  </AnnotationGroups>
</ASAP_Annotations>
"""


@pytest.fixture
def camelyon_xml(tmp_path):
    p = tmp_path / "tumor_001.xml"
    p.write_text(CAMELYON_XML)
    return p


def test_asap_read_sorts_by_order_and_keeps_groups(camelyon_xml):
    anns = read_asap(camelyon_xml)
    assert [a.cls for a in anns] == ["_0", "_2", ""]  # PartOfGroup="None": no group
    assert [a.geometry for a in anns] == ["polygon", "polygon", "points"]
    np.testing.assert_array_equal(
        anns[0].exterior, [[10, 10.25], [60.5, 10.25], [60.5, 60], [10, 60]]
    )
    assert anns[0].is_tumour and anns[1].is_exclusion
    assert anns[0].color == "#F4FA58"


def test_asap_round_trip_is_lossless(camelyon_xml, tmp_path):
    anns = read_asap(camelyon_xml)
    out = write_asap(anns, tmp_path / "again.xml")
    again = read_asap(out)
    assert [(a.cls, a.name, a.color) for a in again] == [(a.cls, a.name, a.color) for a in anns]
    assert all(a.same_geometry(b, atol=0) for a, b in zip(anns, again, strict=True))
    assert '<Coordinate Order="0"' in out.read_text()
    assert not list(tmp_path.glob(".*.part"))


def test_geojson_round_trip_is_lossless(tmp_path):
    a = Annotation(
        [(0, 0), (100, 0), (100, 50), (0, 50)],
        holes=[[(10, 10), (20, 10), (20, 20)]],
        cls="Tumor",
        color="#C81E1E",
        kind="detection",
        name="region",
        measurements={"mean_probability": 0.8125, "level": 2.0},
    )
    b1 = Annotation([(200, 200), (300, 200), (250, 300)], cls="Stroma", color="#00FF00", id="abc")
    b2 = Annotation([(400, 400), (500, 400), (450, 500)], cls="Stroma", color="#00FF00", id="abc")
    path = write_geojson([a, b1, b2], tmp_path / "x.geojson")
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    multi = doc["features"][1]
    assert multi["geometry"]["type"] == "MultiPolygon" and multi["id"] == "abc"
    first = doc["features"][0]
    assert first["properties"]["classification"] == {"name": "Tumor", "color": [200, 30, 30]}
    assert first["geometry"]["coordinates"][0][0] == first["geometry"]["coordinates"][0][-1]
    again = read_geojson(path)
    assert len(again) == 3
    for x, y in zip([a, b1, b2], again, strict=True):
        assert x.same_geometry(y, atol=0)
        assert (x.cls, x.color, x.kind, x.name, dict(x.measurements), x.id) == (
            y.cls,
            y.color,
            y.kind,
            y.name,
            dict(y.measurements),
            y.id,
        )
    again_path = write_geojson(again, tmp_path / "y.geojson")
    assert json.loads(again_path.read_text()) == doc


def test_geojson_accepts_bare_list_and_legacy_object_type(tmp_path):
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 0]]]},
            "properties": {
                "object_type": "detection",
                "classification": {"name": "Tumor", "colorRGB": -3670016},
            },
        }
    ]
    p = tmp_path / "legacy.geojson"
    p.write_text(json.dumps(feats))
    [a] = read_geojson(p)
    assert a.kind == "detection" and a.cls == "Tumor" and a.color == "#C80000"
    assert len(a.exterior) == 3  # the closing vertex dropped


def test_conversion_preserves_geometry(camelyon_xml, tmp_path):
    anns = read_annotations(camelyon_xml)
    geo = write_annotations(exclusions_as_holes(anns), tmp_path / "t.geojson")
    tumour, dot = read_annotations(geo)
    assert len(tumour.holes) == 1  # the _2 polygon became a hole
    assert dot.geometry == "points" and dot.cls == ""
    back = read_annotations(write_annotations([tumour], tmp_path / "back.xml"))
    grid = Grid(80, 80)
    m0 = rasterize(anns, grid)
    np.testing.assert_array_equal(rasterize([tumour], grid), m0)
    np.testing.assert_array_equal(rasterize(back, grid), m0)
    [again] = back  # the hole comes back a hole of its polygon (HoleOf), not a new object
    assert again.cls == "_0" and again.same_geometry(tumour, atol=0)


@pytest.mark.parametrize(
    "coordinates",
    [
        # decimal commas (a European locale's ASAP), exponents, a tie in Order
        '<Coordinate Order="1" X="1,5" Y="2" /><Coordinate Order="0" X="1e1" Y="+3" />'
        '<Coordinate Order="1" X="7" Y="8" /><Coordinate Order="2" X=" 4 " Y="5.25" />',
        # Order on some vertices only: the others by their place in the file
        '<Coordinate X="9" Y="9" /><Coordinate Order="0" X="1" Y="1" />'
        '<Coordinate X="5" Y="6" /><Coordinate Order="3" X="2" Y="2" />',
        '<Coordinate X="0" Y="0" /><Coordinate X="3" Y="0" /><Coordinate X="0" Y="3" />',
    ],
)
def test_asap_vertices_read_in_one_pass_equal_those_read_one_by_one(tmp_path, coordinates):
    """The column-at-once reading of a long outline and the vertex-by-vertex one agree on
    every file, including those only the latter reads (it names a bad vertex)."""
    import xml.etree.ElementTree as ET

    from napari_cpadv.annotations.asap import _coordinates, _slow_coordinates

    el = ET.fromstring(f"<Annotation><Coordinates>{coordinates}</Coordinates></Annotation>")
    fast, slow = _coordinates(el, tmp_path, "a"), _slow_coordinates(el, tmp_path, "a")
    np.testing.assert_array_equal(fast, slow)
    assert fast.shape == (len(el.findall("Coordinates/Coordinate")), 2)
    bad = ET.fromstring(
        '<Annotation><Coordinates><Coordinate X="1" Y="inf" /></Coordinates></Annotation>'
    )
    with pytest.raises(FormatError, match="coordinate 0 Y is not finite"):
        _coordinates(bad, tmp_path, "a")


BAD_XML = {
    "laughs.xml": """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ASAP_Annotations>&lol3;</ASAP_Annotations>""",
    "external.xml": """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ASAP_Annotations>&xxe;</ASAP_Annotations>""",
    "truncated.xml": CAMELYON_XML[: len(CAMELYON_XML) // 2],
    "wrongroot.xml": '<?xml version="1.0"?><Annotations><Annotation/></Annotations>',
    "badnumber.xml": CAMELYON_XML.replace('X="60.5" Y="60"', 'X="sixty" Y="60"'),
}


@pytest.mark.parametrize("name", sorted(BAD_XML))
def test_bad_xml_raises_quickly_naming_the_file(tmp_path, name):
    p = tmp_path / name
    p.write_text(BAD_XML[name])
    with pytest.raises(FormatError, match=name):  # refused before any entity is expanded
        read_asap(p)


@pytest.mark.parametrize(
    "doc, reason",
    [
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": {"type": "Polygon"}, "properties": {}}
                ],
            },
            "no coordinates",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1]}}
                ],
            },
            "feature 0 is not a list of",
        ),
        ({"type": "Topology"}, "FeatureCollection"),
    ],
)
def test_bad_geojson_raises_naming_the_file(tmp_path, doc, reason):
    p = tmp_path / "bad.geojson"
    p.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=f"bad.geojson.*{reason}"):
        read_geojson(p)


def test_truncated_geojson(tmp_path):
    p = tmp_path / "cut.geojson"
    text = json.dumps({"type": "FeatureCollection", "features": []})
    p.write_text(text[:-5])
    with pytest.raises(FormatError, match="cut.geojson.*not valid JSON"):
        read_geojson(p)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "keep.geojson"
    target.write_text("old")
    import napari_cpadv.annotations._io as io

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError):
        write_geojson([Annotation([(0, 0), (1, 0), (1, 1)])], target)
    assert target.read_text() == "old"
    assert not list(tmp_path.glob(".*.part"))
