"""``cpadv reproduce real`` (issue 28, item 7): both papers' attacks on the real field's
held-out stripes through the committed *-he weights, resumed, beside the painted slides'
numbers of the same folder, and refused when the committed files are missing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from napari_cpadv.cli import main
from napari_cpadv.reproduce import real

from ..conftest import REPO

HE = REPO / "sample_data" / "weights"
STEPS = ["real/data", "real/fig10", "real/fig4", "real/study"]


def _record(name: str) -> dict:
    return json.loads((HE / f"{name}-he.json").read_text())["training"]["spatial"]


@pytest.mark.slow
def test_reproduce_real_attacks_only_the_held_out_stripes_and_resumes(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["reproduce", "real", "--tiny", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ran"] == STEPS and not summary["kept"]
    results = json.loads((out / "results.json").read_text())
    data = results["results"]["real/data"]

    # the cell detectors' tiles lie in the stripe dae-he and sparse-he never trained on
    c0, c1 = _record("dae")["held_out_columns"]
    assert _record("sparse")["held_out_columns"] == [c0, c1]
    tiles = np.load(out / "real/data/tiles.npz")
    side = data["tiles"]["side"]
    assert all(c0 <= c and c + side <= c1 for _, c in tiles["positions"])
    assert tiles["x"].shape == (2, side, side, 3) and tiles["labels"].any()
    # the classifier's patches in its own stripe, labelled by seed 001's rule
    q0, q1 = _record("resnet18")["held_out_columns"]
    patches = np.load(out / "real/data/patches.npz")
    assert all(q0 <= c and c + 112 <= q1 for _, c in patches["positions"])
    assert set(patches["labels"]) == {0, 1} and len(patches["labels"]) == 8

    fig10 = results["results"]["real/fig10"]
    assert fig10["detectors"] == ["dae", "sparse"] and fig10["sources"] == ["dae", "sparse"]
    assert 0 < fig10["null_aucpr"] < 1
    assert set(fig10["visibility"]) == set(fig10["aucpr"]) - {"clean"}
    for seen in fig10["visibility"].values():
        assert 0 < seen["ssim"] <= 1
    fig4 = results["results"]["real/fig4"]
    assert {"l2", "linf"} <= set(fig4) and fig4["patches"] == 8
    section = results["papers"]["real"]
    assert section["columns"] == ["synthetic", "real"] and "not a claim" in section["note"]
    rows = {r["item"]: r for r in section["rows"]}
    assert rows["Fig. 10 AUC-PR of dae under clean"]["published"] == "not in this folder"
    html = (out / "report.html").read_text()
    assert "<th>synthetic</th><th>real</th>" in html

    # §2.3's cases on real tissue: the pairs a blinded study is built from
    study = results["results"]["real/study"]
    pairs = sorted((out / "real/study/pairs").glob("*_original.png"))
    assert len(pairs) == study["cases"] <= study["positives"] == int(patches["labels"].sum())
    assert json.loads((out / "real/study/pairs/truth.json").read_text()) == {
        p.name.split("_")[0]: True for p in pairs
    }
    assert "real/study/pairs --preset seed001" in study["build"]

    assert main(argv) == 0  # again: every step kept
    again = json.loads(capsys.readouterr().out)
    assert again["kept"] == STEPS and again["ran"] == []


@pytest.mark.slow
def test_real_rows_stand_beside_the_painted_slides_rows_of_the_same_folder(tmp_path, capsys):
    """`cpadv reproduce seed001 real`: seed 001's Fig. 4 on painted patches and on the real
    stripe, one row each budget, synthetic beside real."""
    out = str(tmp_path / "r")
    argv = ["reproduce", "seed001", "real", "--tiny", "--out", out, "--device", "cpu"]
    assert main([*argv, "--only", "seed001/fig4", "real/fig4"]) == 0
    capsys.readouterr()
    results = json.loads((tmp_path / "r/results.json").read_text())
    assert list(results["papers"]) == ["seed001", "real"]
    rows = {r["item"]: r for r in results["papers"]["real"]["rows"]}
    both = rows["Fig. 4 L2 0.25 (RMS δ (grey levels)): success"]
    synth = results["results"]["seed001/fig4"]["l2"]["rows"][0]
    assert both["published"] == synth["success"] and isinstance(both["run"], float)
    assert both["difference"] == pytest.approx(both["run"] - both["published"])


def test_real_steps_run_in_the_order_of_their_table(tmp_path):
    from napari_cpadv.reproduce.data import Source
    from napari_cpadv.reproduce.steps import Steps

    paper = real.Real(Steps(tmp_path), Source(None), real.TINY, seed=0, device="cpu")
    names = [name for name, _, _ in paper.parts()]
    assert names == list(real.Real.AFTER)


def test_missing_real_weights_are_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    files = dict(real.field_files())
    copy = tmp_path / "sparse-he.safetensors"
    files["sparse"] = copy  # absent: as in a checkout where `make weights-he` never ran
    monkeypatch.setattr(real, "field_files", lambda: files)
    out = tmp_path / "r"
    assert main(["reproduce", "real", "--tiny", "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(copy) in line and "make weights-he" in line
    assert not (out / "real/data").exists()


def test_weights_held_out_on_different_stripes_cannot_transfer(tmp_path, capsys, monkeypatch):
    """A sparse-he of another stripe (here: another fold kept) is refused by name."""
    files = dict(real.field_files())
    moved = tmp_path / "sparse-he.safetensors"
    shutil.copy(files["sparse"], moved)
    config = json.loads(files["sparse"].with_suffix(".json").read_text())
    config["training"]["spatial"]["held_out_columns"] = [0, 248]
    moved.with_suffix(".json").write_text(json.dumps(config))
    files["sparse"] = moved
    monkeypatch.setattr(real, "field_files", lambda: files)
    assert main(["reproduce", "real", "--tiny", "--out", str(tmp_path / "r")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "held out on different stripes" in line
