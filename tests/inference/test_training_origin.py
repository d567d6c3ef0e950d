"""What a detector learnt from (issue 28, item 6): recorded when it is trained, and a
warning when a slide is far from it: synthetic weights on real tissue, or cells at another
size in micrometres (the old check compared level numbers, which say nothing across
slides of other resolutions: level 2 of the real field is twice as coarse as the
training's level 2)."""

from __future__ import annotations

import json

import pytest

from napari_cpadv.annotations import Annotation, write_annotations
from napari_cpadv.annotations.dataset import ORIGIN, write_tile_dataset
from napari_cpadv.inference.detect import resolution_warning
from napari_cpadv.models import weights as W
from napari_cpadv.models.fit import Schedule, fit
from napari_cpadv.models.origin import combine, training_origin, words
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide

from ..conftest import REPO, SAMPLE

REAL = REPO / "sample_data" / "hgsc_nest.tif"


def test_the_shipped_weights_warn_on_real_tissue_and_on_cells_of_another_size():
    real, painted = open_slide(REAL), open_slide(SAMPLE)
    assert resolution_warning("dae", None, painted, 2) is None
    on_real = resolution_warning("dae", None, real, 1)  # 1.0 µm per pixel: the right size
    assert "synthetic (painted) slides, and this is real tissue" in on_real
    assert "weights 'dae-he' learnt from real H&E" in on_real  # what to pick instead
    assert "µm per pixel" not in on_real
    assert resolution_warning("dae", "dae-he", real, 1) is None  # the shipped name
    coarse = resolution_warning("dae", None, real, 2)  # 2.0 µm per pixel against 0.97
    assert "level 2 of this slide is 2.00 µm per pixel" in coarse
    assert "2.1 times smaller" in coarse
    fine = resolution_warning("dae", None, painted, 0)
    assert "4.0 times larger" in fine and "real tissue" not in fine
    assert "real tissue" in resolution_warning("resnet18", None, real, 0, "classes")
    assert resolution_warning("resnet18", None, painted, 0, "classes") is None


@pytest.mark.slow
def test_a_tile_folder_records_its_slide_and_training_records_it(tmp_path, small_slide):
    real, painted = open_slide(REAL), open_slide(small_slide.path)
    tumours = [Annotation([(600, 600), (900, 600), (900, 900), (600, 900)], cls="Tumor")]
    xml = write_annotations(tumours, tmp_path / "t.xml")
    write_tile_dataset(real, xml, level=1, size=64, out=tmp_path / "real")
    write_tile_dataset(painted, xml, level=1, size=64, out=tmp_path / "painted")
    got = json.loads((tmp_path / "real" / ORIGIN).read_text())
    assert got == {"slide": str(REAL), "level": 1, "tissue": "real", "um_per_pixel": 1.0}
    assert json.loads((tmp_path / "painted" / ORIGIN).read_text())["tissue"] == "synthetic"

    schedule = Schedule(autoencoder=1, head=1)
    _, record = drive(fit("dae", [tmp_path / "real"], schedule=schedule))
    assert record["training"]["tissue"] == "real" and record["training"]["um_per_pixel"] == 1.0
    W.save(_, tmp_path / "real.safetensors", **record)
    assert "learnt from real tissue, and this slide is painted" in resolution_warning(
        "dae", str(tmp_path / "real.safetensors"), painted, 1
    )
    _, mixed = drive(fit("dae", [tmp_path / "real", tmp_path / "painted"], schedule=schedule))
    assert mixed["training"]["tissue"] == "mixed" and mixed["training"]["um_per_pixel"] is None


@pytest.mark.parametrize(
    ("origins", "expected"),
    [
        ([{"tissue": "real", "um_per_pixel": 0.5}] * 2, {"tissue": "real", "um_per_pixel": 0.5}),
        ([{"tissue": "real", "um_per_pixel": 0.5}, None], {"tissue": None, "um_per_pixel": None}),
        ([], {"tissue": None, "um_per_pixel": None}),
    ],
)
def test_origins_combine_only_what_every_source_says(origins, expected):
    assert combine(origins) == expected


def test_weights_trained_before_the_record_are_known_by_make_weights_recipe():
    old = {"training": {"data": ["build/weights-data/tiles11"], "level": 2}}
    assert training_origin(old) == {"tissue": "synthetic", "um_per_pixel": 0.972}
    assert training_origin({"training": {"data": ["/elsewhere"], "level": 2}})["tissue"] is None
    assert words(training_origin(old)) == "synthetic (painted) slides at 0.97 µm per pixel"


def test_cpadv_says_what_the_weights_learnt_from_and_warns_on_real_tissue(capsys):
    from napari_cpadv.cli import main

    geojson = REAL.with_suffix(".geojson")
    argv = ["evaluate", str(REAL), str(geojson), "--detector", "dae", "--level", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    scores = json.loads(captured.out)
    assert scores["trained_on"] == "synthetic (painted) slides at 0.97 µm per pixel"
    assert 0 < scores["null_aucpr"] < scores["aucpr"] < 1
    far = [line for line in captured.err.splitlines() if "real tissue" in line]
    assert len(far) == 1 and far[0].startswith(f"cpadv evaluate: warning: {REAL}: dae's weights")
    assert main([*argv[:-1], "0"]) == 0  # level 0: 0.5 µm per pixel against 0.97
    assert "1.9 times larger" in capsys.readouterr().err
