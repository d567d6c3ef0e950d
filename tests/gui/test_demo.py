"""`make demo` headless: the four steps' screenshots, the metrics and the report."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from napari_cpadv.widgets import demo

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_headless_demo_writes_its_pictures_and_metrics(tmp_path):
    # 20 FGSM steps, not the paper's 100 that `make demo` runs, and no sparse heatmap (the
    # converged coder over one tile and its context: about 4 of the test's 4.5 minutes;
    # tests/inference covers its heatmaps): the same docks, run and pictures
    args = ["--headless", "--out", str(tmp_path), "--steps", "20", "--skip-sparse"]
    assert demo.main(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["attack"]["steps"] == 20 and report["heatmaps"] == ["dae"]
    assert [p.rsplit("/", 1)[-1] for p in report["screenshots"]] == [
        "1-slide.png", "2-detect.png", "3-attack.png", "4-side-by-side.png",
    ]  # fmt: skip
    for path in report["screenshots"]:
        image = Image.open(path)
        assert image.size[0] > 300 and len(set(image.convert("L").getdata())) > 10
    rows = {
        m["detector"]: m for m in json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    }
    assert set(rows) == {"dae"}
    assert rows["dae"]["aucpr_after"] < rows["dae"]["aucpr_before"]
    assert rows["dae"]["l2_rms"] == pytest.approx(demo.RMS, rel=0.05)
