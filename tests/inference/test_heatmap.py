"""Tiled heatmaps equal the detector on the whole region; on-demand equals batch; the CLI."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from napari_cpadv.annotations import Annotation, write_annotations
from napari_cpadv.cli import main
from napari_cpadv.inference.batch import Job, batch_heatmaps
from napari_cpadv.inference.heatmap import Window, halve, heatmap, sigmoid
from napari_cpadv.inference.ondemand import OnDemandHeatmap
from napari_cpadv.inference.zarr_io import is_heatmap, read_heatmap
from napari_cpadv.models import weights
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

SPARSE = {"atoms": 16, "size": 8, "stride": 4, "iterations": 20}


@pytest.fixture(scope="module")
def slide(small_slide):
    return open_slide(small_slide.path)


@pytest.fixture(scope="module")
def dae_weights(tmp_path_factory):
    torch.manual_seed(0)
    return weights.save(make("dae"), tmp_path_factory.mktemp("w") / "dae")


def whole(det, slide, level, area):
    """The detector on the whole area at once, with the same margin of context."""
    m, c = det.margin, det.cell
    x = slide.read_region(
        level, area.row * c - m, area.col * c - m, area.rows * c + 2 * m, area.cols * c + 2 * m
    )
    run = getattr(det, "slide_logits", det.tumour_logits)
    with torch.no_grad():
        y = run(torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255)[0].numpy()
    return y[m // c : m // c + area.rows, m // c : m // c + area.cols]


def test_stitched_dae_tiles_equal_the_whole_region(slide):
    det = make("dae").eval()
    area = Window(3, 5, 70, 90)
    hm = drive(heatmap(det, slide, level=0, scope="region", area=area, block=16))
    assert hm.logits.shape == (70, 90) and hm.origin == (3, 5)
    np.testing.assert_allclose(hm.logits, whole(det, slide, 0, area), atol=1e-5)


def test_a_small_region_across_the_block_grid_is_one_forward_pass(slide):
    """A rectangle drawn anywhere: 12 x 12 cells straddling the corner of four 16-cell
    blocks is one block from its own corner (the old code ran and cropped all four)."""
    det = make("dae").eval()
    area = Window(10, 13, 12, 12)
    calls = []
    forward = det.tumour_logits
    det.tumour_logits = lambda x: calls.append(tuple(x.shape)) or forward(x)
    hm = drive(heatmap(det, slide, level=0, scope="region", area=area, block=16))
    m = det.margin
    assert calls == [(1, 3, 12 * det.cell + 2 * m, 12 * det.cell + 2 * m)]
    assert hm.origin == (10, 13) and hm.logits.shape == (12, 12)
    np.testing.assert_allclose(hm.logits, whole(det, slide, 0, area), atol=1e-5)


@pytest.mark.parametrize(
    "hyper", [SPARSE, {"atoms": 16, "size": 8}], ids=["stride 4, 20 iterations", "converged"]
)
@pytest.mark.slow
def test_stitched_sparse_tiles_match_the_whole_region_closely(slide, hyper):
    """Also for the shipped configuration (stride 2, run to its tolerance): converging lets
    the competition travel further, but three atoms of margin still hide every seam."""
    torch.manual_seed(0)
    det = make("sparse", **hyper).eval()
    area = Window(8, 8, 64, 64)
    hm = drive(heatmap(det, slide, level=0, scope="region", area=area, block=16))
    ref = whole(det, slide, 0, area)
    # LCA's competition reaches beyond any margin, but fades within it: < 1 % in probability
    assert np.abs(sigmoid(hm.logits) - sigmoid(ref)).max() < 0.01


def test_classifier_scores_each_patch(slide):
    det = make("resnet18", width=4, patch=64).eval()
    hm = drive(heatmap(det, slide, level=1, scope="slide"))
    g = slide.geometry[1]
    assert hm.logits.shape == (-(-g.rows // 64), -(-g.cols // 64)) and np.isfinite(hm.logits).all()
    x = slide.read_region(1, 64, 128, 64, 64)
    with torch.no_grad():
        one = det.tumour_logits(torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255)
    assert hm.logits[1, 2] == pytest.approx(float(one[0]), abs=1e-5)


def test_tissue_scope_leaves_background_blocks_empty(slide):
    det = make("dae").eval()
    hm = drive(heatmap(det, slide, level=1, scope="tissue", block=32))
    assert np.isnan(hm.logits).any() and np.isfinite(hm.logits).any()


@pytest.mark.slow
def test_on_demand_store_equals_the_batch_run_and_caches(slide, dae_weights, tmp_path):
    det = weights.load(dae_weights)
    out = tmp_path / "odd.heatmap.zarr"
    written = drive(
        batch_heatmaps(
            [Job(slide.path, out)],
            detector="dae",
            weights=dae_weights,
            level=1,
            scope="slide",
            workers=1,
            device="cpu",
        )
    )
    assert written == [out] and is_heatmap(out)
    levels, attrs = read_heatmap(out)
    assert attrs["cell_level0"] == 4 * slide.downsamples[1] and attrs["detector"] == "dae"
    batch = levels[0][...]
    sha = json.loads(weights.paths(dae_weights)[1].read_text())["sha256"]
    lazy = OnDemandHeatmap(det, slide, 1, cache=tmp_path / "cache", weights_sha=sha)
    part = lazy[10:50, 20:90]
    assert lazy.computed == 1  # one 128-cell block covers it
    np.testing.assert_allclose(part, batch[10:50, 20:90], atol=1e-6)
    np.testing.assert_allclose(np.asarray(lazy.levels()[0]), batch, atol=1e-6)
    again = OnDemandHeatmap(det, slide, 1, cache=tmp_path / "cache", weights_sha=sha)
    np.testing.assert_array_equal(again[:, :], lazy[:, :])
    assert again.computed == 0  # everything came from the disk cache
    coarse = np.asarray(again.levels(smallest=64)[1])
    np.testing.assert_allclose(coarse, halve(batch), atol=1e-6)


def test_in_the_background_a_read_answers_at_once_and_queues_the_blocks(
    slide, dae_weights, tmp_path
):
    det = weights.load(dae_weights)
    lazy = OnDemandHeatmap(det, slide, 1, cache=tmp_path / "cache", weights_sha="x")
    lazy.start()
    try:
        first = lazy[10:50, 20:90]  # nothing cached yet: NaN now, computed behind
        assert np.isnan(first).all()
        deadline = time.monotonic() + 120
        while lazy.ready < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lazy.ready == 1 and lazy.waiting == 0 and lazy.error is None
        assert np.isfinite(lazy[10:50, 20:90]).all()
        # a zoomed-out view answers from the cache too, not by running the whole level
        coarse = lazy.levels(smallest=16)[-1][:, :]
        assert np.isfinite(coarse).any() and np.isnan(coarse).any()
    finally:
        lazy.stop()
    assert lazy._thread is None and lazy.waiting == 0  # stop drops what was still queued


def test_cli_evaluate_reports_aucpr_with_the_null_model(small_slide, dae_weights, tmp_path, capsys):
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    xml = write_annotations(anns, tmp_path / "truth.xml")
    code = main(
        [
            "evaluate",
            str(small_slide.path),
            str(xml),
            "--detector",
            "dae",
            "--weights",
            str(dae_weights),
            "--level",
            "0",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["null_aucpr"] < 1 and 0 <= out["aucpr"] <= 1 and out["n_cells"] > 1000
    assert len(out["curve"]["precision"]) == len(out["curve"]["recall"]) > 1


def _evaluate(capsys, *args: str) -> dict:
    assert main(["evaluate", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_evaluate_scores_a_truth_json_and_a_negative_control_by_its_nuclei(
    small_slide, dae_weights, tmp_path, capsys
):
    """A synthetic slide's .truth.json is scored on its tumour regions (it said "AUC-PR
    is undefined"), with the share of tumour and other nuclei called tumour; a field
    without tumour (a negative control) gets those shares, its AUC-PR None."""
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    xml = write_annotations(anns, tmp_path / "truth.xml")
    truth = small_slide.write_json(tmp_path / "odd.truth.json")
    options = ("--detector", "dae", "--weights", str(dae_weights), "--level", "0")
    slide = str(small_slide.path)
    by_xml = _evaluate(capsys, slide, str(xml), "--truth", str(truth), *options)
    by_truth = _evaluate(capsys, slide, str(truth), *options)
    assert by_truth["aucpr"] == pytest.approx(by_xml["aucpr"]) and by_truth["n_positive"] > 0
    called = by_truth["nuclei_called"]
    assert called == by_xml["nuclei_called"]
    t, o = called["tumour"], called["other"]
    assert t["nuclei"] > 0 and o["nuclei"] > 0
    assert t["nuclei"] + o["nuclei"] + called["not_scored"] == len(small_slide.nuclei)

    stroma = json.loads(truth.read_text())
    stroma["tumours"], stroma["nuclei"]["tumour"] = [], [0] * len(stroma["nuclei"]["tumour"])
    (tmp_path / "stroma.truth.json").write_text(json.dumps(stroma))
    control = _evaluate(capsys, slide, str(tmp_path / "stroma.truth.json"), *options)
    assert control["aucpr"] is None and control["n_positive"] == 0
    every = control["nuclei_called"]
    assert every["tumour"] == {"nuclei": 0, "called_tumour": None}
    assert every["other"]["nuclei"] == t["nuclei"] + o["nuclei"]  # the same nuclei, all other
    assert every["other"]["called_tumour"] * every["other"]["nuclei"] == pytest.approx(
        t["called_tumour"] * t["nuclei"] + o["called_tumour"] * o["nuclei"]
    )


def test_cli_refuses_weights_for_another_detector(small_slide, dae_weights, capsys):
    code = main(
        [
            "evaluate",
            str(small_slide.path),
            "x.xml",
            "--detector",
            "sparse",
            "--weights",
            str(dae_weights),
            "--level",
            "0",
        ]
    )
    assert code == 2
    assert "for the 'dae' detector" in capsys.readouterr().err
