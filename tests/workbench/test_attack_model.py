"""The Attack dock's model: a run folder kept as it goes, heatmaps before and after, metrics."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

from napari_cpadv.annotations import Annotation, read_annotations, write_annotations
from napari_cpadv.experiments.metrics_table import METRIC_COLUMNS, metrics_csv
from napari_cpadv.experiments.tiles import tile_positions
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.delta import open_delta
from napari_cpadv.workbench.attack import AttackModel, results_folder

from ..conftest import TINY


@pytest.fixture(scope="module")
def truth(small_slide, tmp_path_factory):
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    return read_annotations(write_annotations(anns, tmp_path_factory.mktemp("t") / "t.xml"))


def test_attack_run_writes_its_folder_and_measures_every_detector(small_slide, truth, tmp_path):
    torch.manual_seed(0)
    dae, sparse = make("dae").eval(), make("sparse", **TINY["sparse"]).eval()
    model = AttackModel(
        detector="dae", attack="fgsm", budget=3.0, unit="total", steps=3, level=1, tile=64
    )
    box = (384.0, 256.0, 640.0, 512.0)  # level-0 rows, cols around the tumour
    out = drive(
        model.work(
            small_slide.path,
            box=box,
            results=tmp_path / "results",
            annotations=truth,
            detectors={"dae": dae, "sparse": sparse},
            detector=dae,
        )
    )
    run = out.folder
    assert run.parent == tmp_path / "results"
    for name in ("run.json", "report.json", "metrics.csv", "metrics.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "run.json").read_text())["model"]["budget"] == 3.0
    for name in ("dae_before", "dae_after", "sparse_before", "sparse_after"):
        assert (run / "heatmaps" / f"{name}.zarr").is_dir()
    rows = {r["detector"]: r for r in out.metrics}
    assert set(rows) == {"dae", "sparse"} and rows["dae"]["attacked"]
    assert rows["sparse"]["success_rate"] is None
    assert 0 <= rows["dae"]["aucpr_after"] <= 1 and 0 <= rows["dae"]["aucpr_before"] <= 1
    assert rows["dae"]["aucpr_after"] < rows["dae"]["aucpr_before"]
    assert rows["dae"]["psnr_db"] > 25 and 0.5 < rows["dae"]["ssim"] < 1
    assert rows["dae"]["l2_total"] == pytest.approx(3.0 * np.sqrt(out.report["tiles"]), rel=0.05)
    slide, adv = open_slide(small_slide.path), open_delta(out.delta)
    delta = out.perturbation()
    b = out.level_box
    np.testing.assert_array_equal(
        delta,
        adv.read_region(1, b[0], b[1], b[2] - b[0], b[3] - b[1]).astype(np.float32)
        - slide.read_region(1, b[0], b[1], b[2] - b[0], b[3] - b[1]),
    )
    assert delta.shape[2] == 3 and np.abs(delta).max() > 0
    parsed = list(csv.DictReader(io.StringIO((run / "metrics.csv").read_text())))
    assert tuple(parsed[0]) == METRIC_COLUMNS and len(parsed) == 2


def test_bad_requests_fail_before_anything_is_written(small_slide, tmp_path):
    with pytest.raises(ValueError, match=">= 0"):
        AttackModel(budget=-1.0).spec()
    with pytest.raises(ValueError, match="empty"):
        drive(
            AttackModel(level=1, tile=64).work(
                small_slide.path, box=(10, 10, 10, 50), results=tmp_path, detector=make("dae")
            )
        )
    with pytest.raises(ValueError, match="lies outside the slide"):
        drive(
            AttackModel(level=1, tile=64).work(
                small_slide.path,
                box=(5000, 5000, 5020, 5020),
                results=tmp_path,
                detector=make("dae"),
            )
        )
    with pytest.raises(ValueError, match=r"level 2 \(384 x 250\) is smaller than one 512"):
        drive(
            AttackModel(level=2, tile=512).work(
                small_slide.path, box=(0, 0, 20, 20), results=tmp_path, detector=make("dae")
            )
        )
    assert not any(tmp_path.iterdir())  # refused requests leave no run folder


def test_results_folder_sits_next_to_the_slide(tmp_path):
    assert results_folder(tmp_path / "a.tif") == tmp_path / "a.cpadv"
    assert metrics_csv([]).strip() == ",".join(METRIC_COLUMNS)


def test_several_boxes_attack_the_union_of_their_tiles(small_slide, tmp_path):
    torch.manual_seed(0)
    model = AttackModel(detector="dae", attack="noise", budget=1.0, unit="total", level=1, tile=64)
    boxes = [(0.0, 0.0, 128.0, 128.0), (256.0, 512.0, 384.0, 640.0), (0.0, 0.0, 128.0, 128.0)]
    out = drive(model.work(small_slide.path, box=boxes, results=tmp_path, detector=make("dae")))
    slide = open_slide(small_slide.path)
    g, ds = slide.geometry[1], slide.downsamples[1]
    expected = []
    for r0, c0, r1, c1 in boxes:
        for p in tile_positions((g.rows, g.cols), ds, (c0, r0, c1 - c0, r1 - r0), 64):
            if list(p) not in expected:
                expected.append(list(p))
    assert out.report["positions"] == expected and len(expected) < 3 * 4  # the repeat is not
    assert [0, 0] in expected


def test_the_estimate_counts_every_pass_a_run_makes():
    """Issue 31, item 3: the passes an attack spends on a tile, by attack, and the run's
    seconds from one pass timed here (heatmaps before and after, a fixed cost)."""
    from napari_cpadv.models.detector import make
    from napari_cpadv.widgets._estimate import duration
    from napari_cpadv.workbench.attack import (
        FIXED_SECONDS,
        HEATMAP_PASSES,
        estimate_seconds,
        pass_seconds,
        passes_per_tile,
    )

    assert passes_per_tile(AttackModel(attack="fgsm", steps=100)) == 101
    assert passes_per_tile(AttackModel(attack="pgd", steps=10, restarts=3)) == 31
    assert passes_per_tile(AttackModel(attack="noise")) == 1
    assert passes_per_tile(AttackModel(attack="universal", epochs=4)) == 5
    model = AttackModel(attack="fgsm", steps=9)
    got = estimate_seconds(model, tiles=4, step=0.5, scored=2)
    assert got == pytest.approx(4 * (10 + 4 * HEATMAP_PASSES) * 0.5 + FIXED_SECONDS)
    step = pass_seconds(make("dae"), 32)
    assert 0 < step < 5
    assert [duration(s) for s in (40, 200, 7800)] == ["40 s", "3 min", "2 h 10 min"]
