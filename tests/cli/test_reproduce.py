"""``cpadv reproduce``: both papers end to end under --quick (slow), resumed, and refused
input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_cpadv.cli import main

FIGURES = {
    "seed000": ["fig2", "fig4_5", "fig6", "fig7_8", "fig9", "fig10"],
    "seed001": ["fig1_3", "fig2a", "fig2b", "fig4", "fig5"],
}
STEPS = {
    "seed000": ["data", "dae", "sparse", "fig2_4_5", "fig10"],
    "seed001": [
        "data",
        "table1a",
        "model",
        "fig2b",
        "fig4",
        "fig1_3",
        "fig2a",
        "universal",
        "study",
    ],
}


@pytest.mark.slow
def test_reproduce_all_quick_then_resume(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["reproduce", "all", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kept"] == [] and summary["checks_failed"] >= 0
    results = json.loads((out / "results.json").read_text())
    for paper, names in FIGURES.items():
        for name in names:
            for ext in ("png", "svg"):
                assert (out / "figures" / f"{paper}_{name}.{ext}").stat().st_size > 1000
        section = results["papers"][paper]
        assert section["rows"] and section["checks"] and section["note"]
        for row in section["rows"]:
            if isinstance(row["run"], int | float):
                assert math.isfinite(row["run"]), row
            if isinstance(row["published"], int | float):
                assert row["difference"] is not None
        for step in STEPS[paper]:
            assert f"{paper}/{step}" in results["results"]
    assert results["command"].startswith("cpadv reproduce all --quick")
    assert results["versions"]["torch"] and "commit" in results["code"]
    html = (out / "report.html").read_text()
    assert "Table 1a accuracy (mean)" in html and "Fig. 10" in html and "Sanity checks" in html
    pairs = sorted((out / "seed001/study/pairs").glob("*_original.png"))
    assert len(pairs) == results["results"]["seed001/study"]["cases"] > 0
    # §2.3: the pairs build seed 001's blinded study (each pair shown twice)
    study = tmp_path / "study"
    assert (
        main(
            [
                "study",
                "create",
                str(out / "seed001/study/pairs"),
                "--preset",
                "seed001",
                "--out",
                str(study),
                "--readers",
                "r1",
            ]
        )
        == 0
    )
    built = json.loads(capsys.readouterr().out)
    assert built["cases"] == len(pairs) and built["presentations"] == 4 * len(pairs)

    # the same command again: every step kept, nothing run
    assert main(["reproduce", "all", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ran"] == [] and len(again["kept"]) == sum(map(len, STEPS.values()))
    assert json.loads((out / "results.json").read_text())["results"] == results["results"]


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("cpadv reproduce:")
    return err


def test_reproduce_refuses_bad_input(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert "NAME=PATH" in _refused(
        ["reproduce", "seed001", "--out", out, "--weights", "x=y"], capsys
    )
    missing = str(tmp_path / "nowhere.safetensors")
    assert "no such weights file" in _refused(
        ["reproduce", "seed001", "--out", out, "--weights", f"resnet18={missing}"], capsys
    )
    assert "neither a Camelyon16" in _refused(
        ["reproduce", "seed001", "--out", out, "--data", str(tmp_path / "none")], capsys
    )
    afile = tmp_path / "f"
    afile.write_text("")
    assert "is a file" in _refused(["reproduce", "seed001", "--out", str(afile)], capsys)


def test_reproduce_refuses_a_paper_without_its_dataset(tmp_path, capsys):
    pannuke = tmp_path / "pannuke" / "fold1"
    pannuke.mkdir(parents=True)
    for name, array in (
        ("images", np.zeros((1, 256, 256, 3))),
        ("types", np.array(["Breast"])),
        ("masks", np.zeros((1, 256, 256, 6))),
    ):
        np.save(pannuke / f"{name}.npy", array)
    err = _refused(
        ["reproduce", "all", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "pannuke")],
        capsys,
    )
    assert "seed000 needs a Camelyon16 folder" in err
    assert not (tmp_path / "r" / "steps").exists()  # refused before any work
