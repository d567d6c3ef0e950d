"""The Plots dock's figures from real reports, saved as PNG and SVG."""

from __future__ import annotations

import pytest
from PIL import Image

from napari_cpadv.workbench.plots import damage_bars, pr_curves, save, success_curve

SCORE = {"aucpr": 0.9, "null_aucpr": 0.1, "precision": [1.0, 0.9, 0.1], "recall": [0.0, 0.8, 1.0]}
SWEEP = {
    "detector": "dae", "attack": "fgsm", "norm": "l2", "unit": "total",
    "budgets": [0.0, 10.0, 25.0], "success_rates": [0.0, 0.5, 1.0],
    "rows": [{"aucpr": a, "noise": {"aucpr": 0.9, "success_rate": 0.0}} for a in (0.9, 0.7, 0.4)],
}  # fmt: skip
TRANSFER = {
    "detectors": ["dae", "sparse"],
    "aucpr": {
        "clean": {"dae": 0.92, "sparse": 0.91},
        "noise (dae)": {"dae": 0.92, "sparse": 0.91},
        "dae": {"dae": 0.6, "sparse": 0.89},
    },
    "success": {},
}


def test_figures_draw_what_they_are_given(tmp_path):
    fig = pr_curves({"dae": {"before": SCORE, "after": {**SCORE, "aucpr": 0.5}}})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["dae before (AUC-PR 0.900)", "dae after (AUC-PR 0.500)"]
    fig = success_curve(SWEEP)
    assert len(fig.axes[0].lines) == 4
    fig = damage_bars(TRANSFER)
    heights = sorted(round(p.get_height(), 2) for p in fig.axes[0].patches)
    assert heights == sorted([0.92, 0.91, 0.92, 0.91, 0.6, 0.89])
    png = save(fig, tmp_path / "f.png")
    assert Image.open(png).size[0] > 100
    svg = save(fig, tmp_path / "f.svg")
    assert svg.read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match=".png or .svg"):
        save(fig, tmp_path / "f.pdf")
