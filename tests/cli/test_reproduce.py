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


def _reproduce_then_resume(tmp_path, capsys, scale: str) -> None:
    """Both papers at ``scale`` end to end: every figure, row and step, the study its pairs
    build, then the same command again keeping every step."""
    out = tmp_path / "repro"
    assert main(["reproduce", "all", f"--{scale}", "--out", str(out), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kept"] == [] == summary["pending"] and summary["checks_failed"] >= 0
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
    assert results["command"].startswith(f"cpadv reproduce all --{scale}")
    assert results["scale"] == scale and results["quick"] == (scale == "quick")
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
    assert main(["reproduce", "all", f"--{scale}", "--out", str(out), "--device", "cpu"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ran"] == [] and len(again["kept"]) == sum(map(len, STEPS.values()))
    assert json.loads((out / "results.json").read_text())["results"] == results["results"]


@pytest.mark.slow
def test_reproduce_all_tiny_then_resume(tmp_path, capsys):
    """Every step of both papers at toy sizes (about 45 s here, 14 of them UMAP's first
    compilation): the pipeline, not its numbers."""
    _reproduce_then_resume(tmp_path, capsys, "tiny")
    assert (
        "--tiny"
        in json.loads((tmp_path / "repro/results.json").read_text())["papers"]["seed001"]["note"]
    )


@pytest.mark.reproduce
def test_reproduce_all_quick_then_resume(tmp_path, capsys):
    """The same at --quick's sizes (about 3 minutes here): `make check-reproduce`."""
    _reproduce_then_resume(tmp_path, capsys, "quick")


def test_each_paper_runs_its_steps_in_the_order_of_its_dependency_table(tmp_path):
    """`--only` reads which steps a step needs from `AFTER`: it must list every step, in
    the order they run, each after the steps it reads."""
    from napari_cpadv.reproduce import seed000, seed001
    from napari_cpadv.reproduce.data import Source
    from napari_cpadv.reproduce.steps import Steps, needed

    for module, cls in ((seed000, seed000.Seed000), (seed001, seed001.Seed001)):
        paper = cls(Steps(tmp_path), Source(None), module.TINY, seed=0, device="cpu")
        names = [name for name, _, _ in paper.parts()]
        assert names == list(cls.AFTER)
        for k, name in enumerate(names):
            assert set(cls.AFTER[name]) <= set(names[:k])
    assert needed(["seed001/fig4"], seed001.Seed001.AFTER) == {
        "seed001/fig4",
        "seed001/model",
        "seed001/data",
    }
    with pytest.raises(ValueError, match="no step 'fig4'"):
        needed(["fig4"], seed001.Seed001.AFTER)


@pytest.mark.slow
def test_only_some_steps_run_the_rest_wait_and_the_report_says_so(tmp_path, capsys):
    """`--only STEP`: the step and the steps it reads run, the others are reported as not
    yet run; a later `--only` keeps what finished and runs only what it adds."""
    out = str(tmp_path / "r")
    base = ["reproduce", "seed000", "--tiny", "--out", out, "--device", "cpu"]
    assert main([*base, "--only", "seed000/dae"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ran"] == ["seed000/data", "seed000/dae"] and first["kept"] == []
    assert first["pending"] == ["seed000/sparse", "seed000/fig2_4_5", "seed000/fig10"]
    results = json.loads((tmp_path / "r/results.json").read_text())
    assert set(results["results"]) == {"seed000/data", "seed000/dae"}
    assert results["pending"] == first["pending"]
    rows = " ".join(r["item"] for r in results["papers"]["seed000"]["rows"])
    assert "dae" in rows.lower() and "Fig. 10" not in rows
    html = (tmp_path / "r/report.html").read_text()
    assert html.count("not yet run") == 3
    assert not (tmp_path / "r/seed000/fig10").exists()

    assert main([*base, "--only", "seed000/fig10"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["kept"] == ["seed000/data", "seed000/dae"]
    assert second["ran"] == ["seed000/sparse", "seed000/fig10"]
    assert second["pending"] == ["seed000/fig2_4_5"]

    assert main(base) == 0  # the whole paper: only what is missing runs
    third = json.loads(capsys.readouterr().out)
    assert third["ran"] == ["seed000/fig2_4_5"] and third["pending"] == []
    assert "not yet run" not in (tmp_path / "r/report.html").read_text()

    err = _refused([*base, "--only", "seed001/fig4"], capsys)  # a step of the other paper
    assert "no step 'seed001/fig4'" in err and "seed000/fig10" in err
    assert _refused([*base, "--quick", "--only", "seed000/dae"], capsys)


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


def _pannuke_folder(root, n_pos: int = 40, n_neg: int = 34):
    """PanNuke's layout with painted breast patches: positives hold 6 neoplastic nuclei
    (dark, large), negatives only inflammatory ones (small); a colon patch is left out."""
    rng = np.random.default_rng(0)
    n = n_pos + n_neg + 1
    images = np.full((n, 256, 256, 3), (230.0, 190.0, 215.0)) + rng.normal(0, 6, (n, 256, 256, 3))
    masks = np.zeros((n, 256, 256, 6), np.float32)
    yy, xx = np.mgrid[:256, :256]
    for i in range(n):
        tumour = i < n_pos
        for k in range(6):
            cy, cx = rng.integers(40, 216, size=2)
            r = 14 if tumour else 6
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            images[i][disc] = (90, 40, 120) if tumour else (120, 80, 160)
            masks[i, ..., 0 if tumour else 1][disc] = k + 1
    types = np.array(["Breast"] * (n - 1) + ["Colon"])
    fold = root / "Fold 1" / "images" / "fold1"
    fold.mkdir(parents=True)
    np.save(fold / "images.npy", np.clip(images, 0, 255))
    np.save(fold / "types.npy", types)
    (root / "Fold 1" / "masks" / "fold1").mkdir(parents=True)
    np.save(root / "Fold 1" / "masks" / "fold1" / "masks.npy", masks)


def test_seed001_data_step_reads_a_pannuke_folder(tmp_path):
    """The step `cpadv reproduce seed001 --data PANNUKE` runs first: PanNuke's breast
    patches, labelled by seed 001's rule, the counts asked for chosen among them."""
    from napari_cpadv.progress import drive
    from napari_cpadv.reproduce.data import Source
    from napari_cpadv.reproduce.seed001 import QUICK, Seed001
    from napari_cpadv.reproduce.steps import Steps

    _pannuke_folder(tmp_path / "pannuke")
    steps = Steps(tmp_path / "r")
    plan = Seed001(steps, Source([str(tmp_path / "pannuke")]), QUICK, seed=0, device="cpu")
    data = drive(plan.data_step())
    assert data["positive"] == 36 and data["negative"] == 30  # --quick's counts, chosen
    assert data["source"] == f"PanNuke at {tmp_path / 'pannuke'}"
    patches, labels = plan.patches().patch_labels()
    assert patches.images.shape[1:] == (224, 224, 3) and int(labels.sum()) == 36
    assert (patches.tumour_nuclei[labels == 1] == 6).all()
    assert (patches.tumour_nuclei[labels == 0] == 0).all()


@pytest.mark.slow
def test_table1a_stopped_resumes_its_folds_on_a_cluster(tmp_path, two_workers, monkeypatch):
    """`cpadv reproduce` stopped during Table 1a, then run again with --workers: the folds
    finished before the stop are kept (steps/seed001/table1a.parts.jsonl), the others are
    trained on the workers, and the finished step's record replaces the parts file."""
    import dataclasses

    from napari_cpadv.experiments import crossval
    from napari_cpadv.progress import drive
    from napari_cpadv.reproduce.data import Source
    from napari_cpadv.reproduce.seed001 import QUICK, Seed001
    from napari_cpadv.reproduce.steps import Steps

    _pannuke_folder(tmp_path / "pannuke")
    sizes = dataclasses.replace(QUICK, runs=2, folds=2, width=4, epochs=1)
    source = Source([str(tmp_path / "pannuke")])
    first = Seed001(Steps(tmp_path / "r"), source, sizes, seed=0, device="cpu")
    drive(first.data_step())
    parts = first.steps.parts("seed001/table1a")
    work = first.crossval_step()
    for _ in work:
        if parts.is_file() and len(parts.read_text().splitlines()) == 2:  # header, a fold
            work.close()
    assert not first.steps.record("seed001/table1a").exists()
    assert not first.steps.folder("seed001/table1a").exists()  # nothing half-written

    here = []
    real = crossval.train_fold
    monkeypatch.setattr(crossval, "train_fold", lambda *a: here.append(1) or real(*a))
    again = Seed001(Steps(tmp_path / "r"), source, sizes, seed=0, device="cpu", cluster=two_workers)
    drive(again.data_step())
    assert again.steps.kept == ["seed001/data"]
    table = drive(again.crossval_step())
    assert here == []  # the three folds left were trained on the workers
    assert [(f["run"], f["fold"]) for f in table["per_fold"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert not parts.exists() and again.steps.record("seed001/table1a").is_file()
    alone = Seed001(Steps(tmp_path / "alone"), source, sizes, seed=0, device="cpu")
    drive(alone.data_step())
    assert drive(alone.crossval_step()) == table  # one uninterrupted run in this process


@pytest.mark.slow
def test_reproduce_seed000_on_a_camelyon16_folder(tmp_path, capsys, slide_factory):
    """Camelyon16's layout with painted slides: tumour slides with ASAP annotations, a
    normal slide, and tumor_110 held out."""
    from napari_cpadv.annotations import Annotation, write_annotations

    root = tmp_path / "camelyon16"
    for sub in ("training/tumor", "training/normal", "lesion_annotations"):
        (root / sub).mkdir(parents=True)
    for k, name in enumerate(("tumor_001", "tumor_110", "normal_001")):
        truth = slide_factory(name, shape=(2048, 2048), seed=40 + k, downsamples=(1, 2, 4))
        kind = "normal" if name.startswith("normal") else "tumor"
        (root / "training" / kind / f"{name}.tif").symlink_to(truth.path)
        if kind == "tumor":
            anns = [Annotation(p.exterior, p.holes, cls="Tumor") for p in truth.tumours]
            write_annotations(anns, root / "lesion_annotations" / f"{name}.xml")
    out = tmp_path / "r"
    assert main(["reproduce", "seed000", "--tiny", "--out", str(out), "--data", str(root)]) == 0
    results = json.loads((out / "results.json").read_text())
    data = results["results"]["seed000/data"]
    assert data["holdout_slide"] == str(root / "training/tumor/tumor_110.tif")
    assert sorted(data["train"]) == ["tiles_normal_001", "tiles_tumor_001"]
    assert "synthetic" not in results["papers"]["seed000"]["note"]
    assert results["results"]["seed000/fig10"]["aucpr"]["clean"]["dae"] > 0
    assert (out / "figures" / "seed000_fig10.png").is_file()


def test_seed001_uses_the_resnet18_weights_it_is_given(tmp_path):
    """`--weights resnet18=W`: the model step loads W instead of training, records it, and
    Fig. 2b, which needs a training trajectory, says why it is skipped."""
    from napari_cpadv.models import weights as W
    from napari_cpadv.models.detector import make
    from napari_cpadv.progress import drive
    from napari_cpadv.reproduce.data import Source
    from napari_cpadv.reproduce.seed001 import QUICK, Seed001
    from napari_cpadv.reproduce.steps import Steps

    _pannuke_folder(tmp_path / "pannuke")
    given = tmp_path / "given.safetensors"
    W.save(make("resnet18", width=QUICK.width), given)
    plan = Seed001(
        Steps(tmp_path / "r"),
        Source([str(tmp_path / "pannuke")]),
        QUICK,
        seed=0,
        device="cpu",
        weights={"resnet18": str(given)},
    )
    drive(plan.data_step())
    model = drive(plan.model_step())
    assert model["given_weights"] == str(given) and model["snapshots"] == 0
    assert "given" in drive(plan.landscape_step())["skipped"]


def test_a_patch_count_short_of_what_was_asked_says_so_in_the_report():
    """The full-size synthetic data once stopped at 795 positives of the paper's 1,157 (a
    cap of 40 painted slides) and the report showed the number without a reason."""
    from napari_cpadv.reproduce.data import Source
    from napari_cpadv.reproduce.report import seed001_section

    data = {
        "patches": 1673,
        "positive": 795,
        "negative": 878,
        "asked": {"positive": 1157, "negative": 878},
        "rule": "positive with >= 5 tumour nuclei, negative with none",
        "source": "synthetic (painted with known truth)",
    }
    rows = seed001_section(None, {"seed001/data": data}, "full", Source(None))["rows"]
    positive, negative = rows[0], rows[1]
    assert positive["run"] == 795 and "fewer than the 1157 asked" in positive["reading"]
    assert "fewer" not in negative["reading"]
