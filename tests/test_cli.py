from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

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
    }
    assert info["properties"]["openslide.vendor"] == "generic-tiff"


def test_info_without_mpp(tmp_path, capsys):
    out = tmp_path / "n.tif"
    assert main(["sample", str(out), "--shape", "300", "300", "--no-mpp"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["mpp"] is None


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
