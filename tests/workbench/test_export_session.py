"""Exports read back equal, and a session file restores the layers of a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from napari_cpadv._reader import napari_get_session_reader, read_session_file
from napari_cpadv.annotations import read_annotations
from napari_cpadv.errors import FormatError
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide
from napari_cpadv.workbench.attack import AttackModel, run_records
from napari_cpadv.workbench.export import (
    heatmap_annotations,
    write_heatmap_annotations,
    write_heatmap_mask,
    write_metrics,
    write_region_tiff,
)
from napari_cpadv.workbench.session import LayerRecord, read_session, write_session


@pytest.fixture(scope="module")
def outcome(small_slide, tmp_path_factory):
    torch.manual_seed(0)
    model = AttackModel(
        detector="dae", attack="fgsm", budget=2.0, unit="total", steps=2, level=1, tile=64
    )
    results = tmp_path_factory.mktemp("results")
    return drive(
        model.work(
            small_slide.path, box=(384, 256, 512, 384), results=results, detector=make("dae")
        )
    )


def _rings(anns):
    return sorted(
        (
            tuple(np.round(a.exterior, 3).ravel()),
            tuple(tuple(np.round(h, 3).ravel()) for h in a.holes),
        )
        for a in anns
    )


@pytest.mark.parametrize("suffix", [".geojson", ".xml"])
def test_thresholded_heatmap_exports_read_back_equal(outcome, tmp_path, suffix):
    before, _ = outcome.heatmaps["dae"]
    threshold = float(np.nanmedian(before.probabilities()))  # some cells in, some out
    expected = heatmap_annotations(before, threshold=threshold)
    assert expected
    path = write_heatmap_annotations(before, tmp_path / f"h{suffix}", threshold=threshold)
    # ASAP has no holes: written as Camelyon16 `_2` polygons that name the polygon they are
    # holes of, they come back holes of it
    assert _rings(read_annotations(path)) == _rings(expected)


def test_mask_and_region_tiffs_read_back_equal(outcome, small_slide, tmp_path):
    from napari_cpadv.slide.delta import open_delta

    before, _ = outcome.heatmaps["dae"]
    mask_path = write_heatmap_mask(before, tmp_path / "m.tif", mpp=(0.243, 0.243), threshold=0.5)
    expected = (np.nan_to_num(before.probabilities()) >= 0.5).astype(np.uint8)
    np.testing.assert_array_equal(tifffile.imread(mask_path, level=0), expected)
    adv = open_delta(outcome.delta)
    box = outcome.level_box
    path = write_region_tiff(adv, 1, box, tmp_path / "adv.tif")
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        assert page.compression != 1  # compressed, and lossless:
        meta = json.loads(page.description)
        np.testing.assert_array_equal(
            page.asarray(), adv.read_region(1, box[0], box[1], box[2] - box[0], box[3] - box[1])
        )
    assert meta["level"] == 1


def test_annotation_mask_reads_back_equal(small_slide, tmp_path):
    from napari_cpadv.annotations import Annotation
    from napari_cpadv.annotations.raster import rasterize
    from napari_cpadv.geometry import Grid
    from napari_cpadv.workbench.export import write_annotation_mask

    slide = open_slide(small_slide.path)
    anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in small_slide.tumours]
    written = write_annotation_mask(slide, anns, 1, tmp_path / "truth.tif")
    g0, g = slide.geometry[0], slide.geometry[1]
    expected = rasterize(anns, Grid.of_level((g0.rows, g0.cols), (g.rows, g.cols)))
    np.testing.assert_array_equal(tifffile.imread(written.path, level=0), expected)
    assert written.tumour_pixels == int(expected.sum()) > 0
    with pytest.raises(ValueError, match="level 9"):
        write_annotation_mask(slide, anns, 9, tmp_path / "x.tif")


def test_metrics_exports(outcome, tmp_path):
    write_metrics(outcome.metrics, tmp_path / "m.csv")
    write_metrics(outcome.metrics, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["metrics"][0]["detector"] == "dae"
    assert (tmp_path / "m.csv").read_text().splitlines()[0].startswith("detector,attacked")
    with pytest.raises(ValueError, match=".csv or .json"):
        write_metrics(outcome.metrics, tmp_path / "m.txt")


def test_session_file_restores_the_run_layers(outcome, small_slide, tmp_path):
    records = [LayerRecord("slide", "original", str(small_slide.path)), *run_records(outcome)]
    path = write_session(tmp_path / "s.cpadv.json", small_slide.path, records)
    assert napari_get_session_reader(str(path)) is read_session_file
    assert napari_get_session_reader(str(tmp_path / "s.json")) is None
    layers = read_session_file(str(path))
    names = [d[1]["name"] for d in layers]
    assert names == [r.name for r in records]
    kinds = [d[1]["metadata"]["cpadv_provenance"]["kind"] for d in layers]
    assert kinds == ["slide", "adversarial", "perturbation", "heatmap", "heatmap"]
    slide = open_slide(small_slide.path)
    assert layers[1][1]["scale"] == layers[0][1]["scale"]  # the adversarial slide lies on it
    assert len(layers[1][0]) == len(slide.levels)
    delta = layers[2][0]
    assert delta.shape == (outcome.level_box[2] - outcome.level_box[0],) * 1 + delta.shape[1:]
    prov = layers[3][1]["metadata"]["cpadv_provenance"]
    assert prov["detector"] == "dae" and prov["attack"]["budget"] == 2.0 and prov["seed"] == 0
    body = json.loads(path.read_text())
    assert body["slide"]["quick_sha256"] and "torch" in body["versions"]


def test_bad_session_files_are_named(small_slide, tmp_path):
    bad = tmp_path / "bad.cpadv.json"
    bad.write_text('{"format": "napari-cpadv session", "version": 1, "slide": ')
    with pytest.raises(FormatError, match="bad.cpadv.json.*not JSON"):
        read_session(bad)
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(FormatError, match="not a napari-cpadv session"):
        read_session(bad)
    moved = write_session(tmp_path / "gone.cpadv.json", small_slide.path, [])
    body = json.loads(moved.read_text())
    body["slide"]["path"] = str(tmp_path / "nowhere.tif")
    moved.write_text(json.dumps(body))
    with pytest.raises(FormatError, match="missing"):
        read_session(moved)
    with pytest.raises(ValueError, match="ends in"):
        write_session(tmp_path / "x.json", small_slide.path, [])
