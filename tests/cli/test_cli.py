from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_cpadv.cli import main
from napari_cpadv.slide import open_slide


def test_sample_then_info(tmp_path, capsys):
    out = tmp_path / "s.tif"
    assert main(["sample", str(out), "--shape", "700", "900", "--seed", "5"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["shape"] == [700, 900] and written["seed"] == 5
    truth = json.loads((tmp_path / "s.truth.json").read_text())
    assert truth["coordinates"].startswith("level-0 pixels, (x, y)")
    assert truth["tumours"] and len(truth["nuclei"]["x"]) == written["nuclei"]
    assert open_slide(out).levels[0].shape == (700, 900, 3)

    assert main(["info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["vendor"] == "generic-tiff"
    assert info["mpp"] == [0.243, 0.243] or np.allclose(info["mpp"], 0.243)
    assert info["levels"][0] == {
        "width": 900,
        "height": 700,
        "downsample": 1.0,
        "tile_width": 512,
        "tile_height": 512,
        "pixels": "stored",
    }
    assert info["levels_left_out"] == []
    assert info["properties"]["openslide.vendor"] == "generic-tiff"


def test_info_without_mpp(tmp_path, capsys):
    out = tmp_path / "n.tif"
    assert main(["sample", str(out), "--shape", "300", "300", "--no-mpp"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["mpp"] is None


@pytest.mark.slow
def test_bad_input_is_one_line_and_status_2(tmp_path):
    junk = tmp_path / "junk.svs"
    junk.write_text("nope")
    for args in (
        ["info", str(junk)],
        ["info", str(tmp_path / "gone.tif")],
        ["sample", str(tmp_path / "x.png")],
        ["sample", str(tmp_path / "no" / "x.tif")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "napari_cpadv.cli", *args], capture_output=True, text=True
        )
        assert proc.returncode == 2, args
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cpadv ")
        assert args[1].split("/")[-1] in lines[0]


def test_sample_writes_xml_and_geojson_truth(tmp_path, capsys):
    out = tmp_path / "t.tif"
    assert main(["sample", str(out), "--shape", "900", "1200", "--seed", "2"]) == 0
    capsys.readouterr()
    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.annotations.raster import Grid, rasterize

    xml = read_annotations(tmp_path / "t.xml")
    geo = read_annotations(tmp_path / "t.geojson")
    grid = Grid(900, 1200)
    assert rasterize(xml, grid).any()
    np.testing.assert_array_equal(rasterize(xml, grid), rasterize(geo, grid))


def test_convert_mask_and_tiles(tmp_path, capsys):
    import csv

    import openslide
    from PIL import Image

    from napari_cpadv.annotations import read_annotations
    from napari_cpadv.annotations.raster import Grid, rasterize

    slide = tmp_path / "s.tif"
    assert main(["sample", str(slide), "--shape", "1200", "1600", "--seed", "4"]) == 0
    assert main(["convert", str(tmp_path / "s.xml"), str(tmp_path / "c.geojson")]) == 0
    assert main(["convert", str(tmp_path / "c.geojson"), str(tmp_path / "c.xml")]) == 0
    truth = rasterize(read_annotations(tmp_path / "s.xml"), Grid(1200, 1600))
    for name in ("c.geojson", "c.xml"):
        np.testing.assert_array_equal(
            rasterize(read_annotations(tmp_path / name), Grid(1200, 1600)), truth
        )

    assert (
        main(
            [
                "mask",
                str(slide),
                str(tmp_path / "s.geojson"),
                "--level",
                "1",
                "--out",
                str(tmp_path / "m.tif"),
            ]
        )
        == 0
    )
    o = openslide.OpenSlide(tmp_path / "m.tif")
    assert o.dimensions == (800, 600)
    got = np.asarray(o.read_region((0, 0), 0, (800, 600)))[..., 0]
    np.testing.assert_array_equal(
        got, rasterize(read_annotations(tmp_path / "s.xml"), Grid(600, 800, (2.0, 2.0)))
    )

    capsys.readouterr()
    assert (
        main(
            [
                "tiles",
                str(slide),
                "--annotations",
                str(tmp_path / "s.xml"),
                "--level",
                "0",
                "--size",
                "256",
                "--out",
                str(tmp_path / "ds"),
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    with open(tmp_path / "ds" / "index.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == result["tiles"] > 0 and result["tumour_tiles"] > 0
    for row in rows:
        tile = np.asarray(Image.open(tmp_path / "ds" / row["tile"]))
        mask = np.asarray(Image.open(tmp_path / "ds" / row["mask"]))
        assert tile.shape == (256, 256, 3) and mask.shape == (64, 64)
        r, c = int(row["row"]), int(row["col"])
        cells = truth[r : r + 256, c : c + 256].reshape(64, 4, 64, 4).mean(axis=(1, 3)) >= 0.5
        np.testing.assert_array_equal(mask > 0, cells)
        assert (int(row["x0"]), int(row["y0"])) == (c, r)


def test_convert_refuses_bad_input(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<ASAP_Annotations><Annotations>")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_cpadv.cli",
            "convert",
            str(bad),
            str(tmp_path / "o.geojson"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "bad.xml" in proc.stderr and "not well-formed" in proc.stderr
    assert not (tmp_path / "o.geojson").exists()
