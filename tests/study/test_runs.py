"""A study built from workbench runs: one case per attacked tile, the original from the
slide and the adversarial copy from the run, truth counted from the slide's nuclei."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from napari_cpadv.annotations.dataset import read_nuclei
from napari_cpadv.models.detector import make
from napari_cpadv.progress import drive
from napari_cpadv.slide import open_slide
from napari_cpadv.slide.delta import open_delta
from napari_cpadv.study.build import build_study
from napari_cpadv.study.model import StudyError
from napari_cpadv.study.pairs import pairs_from_runs
from napari_cpadv.workbench.attack import AttackModel


@pytest.fixture(scope="module")
def run(small_slide, tmp_path_factory):
    torch.manual_seed(0)
    model = AttackModel(  # seed 000's budget per pixel: pairs a reader would not tell apart
        detector="dae", attack="fgsm", budget=0.0282, unit="per_pixel", steps=2, level=1, tile=64
    )
    results = tmp_path_factory.mktemp("results")
    outcome = drive(
        model.work(
            small_slide.path, box=(256, 256, 512, 512), results=results, detector=make("dae")
        )
    )
    return outcome.folder


def test_pairs_from_a_run_are_its_tiles(run, small_slide, tmp_path):
    truth = tmp_path / "slide.truth.json"
    small_slide.write_json(truth)
    pairs = pairs_from_runs([run], truth=truth)
    positions = json.loads((run / "report.json").read_text())["positions"]
    assert len(pairs) == len(positions) > 1  # one case per attacked tile
    slide, adv = open_slide(small_slide.path), open_delta(run / "adversarial.delta.zarr")
    x, y, tumour = read_nuclei(truth)
    for p in pairs:
        r, c = (int(v) for v in p.case.split("-r")[1].split("-c"))
        np.testing.assert_array_equal(p.original, slide.read_region(1, r, c, 64, 64))
        np.testing.assert_array_equal(p.adversarial, adv.read_region(1, r, c, 64, 64))
        ds = slide.downsamples[1]
        inside = (x >= c * ds) & (x < (c + 64) * ds) & (y >= r * ds) & (y < (r + 64) * ds)
        assert p.truth["tumour_cells"] == int((inside & tumour).sum())
        assert p.truth["tumour"] == (p.truth["tumour_cells"] >= 5)
        assert p.attack["attack"] == "fgsm" and str(run) in p.source("adversarial")
    assert any(not np.array_equal(p.original, p.adversarial) for p in pairs)
    build_study(pairs, tmp_path / "study", seed=2, readers=["r1"])
    key = json.loads((tmp_path / "study.key.json").read_text())["tokens"]
    manifest = json.loads((tmp_path / "study" / "manifest.json").read_text())
    t = manifest["tokens"][0]
    shown = tifffile.imread(tmp_path / "study" / t["file"])
    k = key[t["token"]]
    pair = next(p for p in pairs if p.case == k["case"])
    np.testing.assert_array_equal(shown, pair.image(k["condition"]))


def test_cli_builds_from_runs_and_refuses_a_mix(run, tmp_path, capsys):
    from napari_cpadv.cli import main

    assert main(["study", "create", str(run), "--out", str(tmp_path / "s"), "--readers", "a"]) == 0
    n = len(json.loads((run / "report.json").read_text())["positions"])
    assert json.loads(capsys.readouterr().out)["presentations"] == n * 2 * 2
    args = ["study", "create", str(run), str(tmp_path), "--out", str(tmp_path / "t"),
            "--readers", "a"]  # fmt: skip
    assert main(args) == 2
    assert "either one folder" in capsys.readouterr().err
    with pytest.raises(StudyError, match="not a finished run"):
        pairs_from_runs([tmp_path])


def test_a_cpadv_attack_output_is_a_run_a_study_takes(small_slide, tmp_path, capsys):
    """Issue 15: one run layout. `cpadv attack --out` writes what the dock writes, and
    `cpadv study create` takes it; a folder that already holds a run is not overwritten;
    an output of the older layout (SLIDE.delta.zarr beside report.json) is read too."""
    import shutil

    from napari_cpadv.cli import main
    from napari_cpadv.experiments.runs import RunFolder
    from napari_cpadv.models import weights

    torch.manual_seed(0)
    w = str(weights.save(make("dae"), tmp_path / "dae"))
    out = tmp_path / "attack"
    args = ["attack", str(small_slide.path), "--detector", "dae", "--weights", w,
            "--attack", "fgsm", "--budget", "3", "--steps", "2", "--level", "1",
            "--tile", "64", "--region", "300", "300", "100", "100", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    run, report = RunFolder.open(out)
    assert summary["report"] == str(run.report_path) and report["tiles"] == summary["tiles"]
    for name in (RunFolder.RUN, RunFolder.ADVERSARIAL, RunFolder.PERTURBATION,
                 RunFolder.METRICS_CSV, RunFolder.METRICS_JSON):  # fmt: skip
        assert (out / name).exists(), name
    assert run.heatmap("dae", "before").is_dir() and run.heatmap("dae", "after").is_dir()
    assert len(pairs_from_runs([out])) == report["tiles"]
    assert main(args) == 2  # the same --out again: refused, the run kept
    assert "already holds a run" in capsys.readouterr().err and RunFolder.open(out)
    older = tmp_path / "older"
    older.mkdir()
    shutil.copytree(out / RunFolder.ADVERSARIAL, older / "slide.delta.zarr")
    old_report = {**report, "delta": str(tmp_path / "elsewhere" / "slide.delta.zarr")}
    (older / "report.json").write_text(json.dumps(old_report))
    assert len(pairs_from_runs([older])) == report["tiles"]
    (older / "report.json").write_text(json.dumps({"slide": "x"}))
    with pytest.raises(StudyError, match="is not a run report"):
        pairs_from_runs([older])
