"""`make demo` headless: the four steps' screenshots, the metrics and the report."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from napari_cpadv.widgets import demo

from ..conftest import REPO

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_headless_demo_writes_its_pictures_and_metrics(tmp_path):
    """The story runs on real tissue with the real-tissue weights, in the stripe they
    never saw. 10 FGSM steps, not the paper's 100 that `make demo` runs, and no sparse
    heatmap (the coder over one tile and its context is minutes; tests/inference covers
    its heatmaps): the same docks, run and pictures."""
    args = ["--headless", "--out", str(tmp_path), "--steps", "10", "--skip-sparse"]
    assert demo.main(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["attack"]["steps"] == 10 and report["heatmaps"] == ["dae"]
    assert report["sample"] == "real" and report["slide"].endswith("hgsc_nest.tif")
    assert report["weights"] == {"dae": "dae-he", "sparse": "sparse-he"}
    config = json.loads((REPO / "sample_data" / "weights" / "dae-he.json").read_text())
    first, last = config["training"]["spatial"]["held_out_columns"]  # level 1
    _, c0, _, c1 = report["region_level0_rows_cols"]
    assert 2 * first <= c0 and c1 <= 2 * last + 4  # the stripe the weights never saw
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


def test_the_painted_sample_is_the_story_until_real_weights_are_shipped(monkeypatch):
    from napari_cpadv.models import weights

    assert demo.default_story() == "real"
    monkeypatch.setattr(weights, "shipped_names", lambda name: [name])  # a checkout without
    assert demo.default_story() == "synthetic"  # the *-he weights (make weights-he)
    synthetic = demo.STORIES["synthetic"]
    assert synthetic.sample == "synthetic_he.tif" and set(synthetic.weights.values()) == {None}
