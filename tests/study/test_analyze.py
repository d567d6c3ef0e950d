"""Unblinding and analysis: verification first, then tables that match hand counts and
scipy / scikit-learn, and the exports (long CSV, iMRMC, summary.json, HTML)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.stats import binomtest
from scipy.stats import wilcoxon as scipy_wilcoxon
from sklearn.metrics import cohen_kappa_score

from napari_cpadv.metrics.study import fleiss_kappa
from napari_cpadv.study.analyze import analyze
from napari_cpadv.study.model import StudyError
from napari_cpadv.study.read import ReaderSession, Study
from napari_cpadv.study.report import CSV_COLUMNS
from tests.study.conftest import code, key_of, make_study, secret
from tests.study.test_read import Clock


def _read(study_dir, reader, decide, ms):
    """Answer every case as ``decide(key entry)`` says, spending ``ms(key entry)`` on it."""
    key = json.loads(key_of(study_dir).read_text())["tokens"]
    clock = Clock()
    with ReaderSession(study_dir, reader, code(study_dir, reader), clock=clock) as s:
        while not s.done:
            s.show()
            clock.wait(ms(key[s.showing]))
            s.answer(**decide(key[s.showing]))
    return key


def _truth(k):
    return "yes" if k["truth"] else "no"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    study = make_study(root, questions=["tumour", "altered"], readers=["A", "B", "C"])
    # A: right on originals, "no" on every adversarial copy, and spots every alteration
    _read(
        study,
        "A",
        lambda k: {
            "tumour": _truth(k) if k["condition"] == "original" else "no",
            "altered": "yes" if k["condition"] == "adversarial" else "no",
        },
        lambda k: 1000 if k["condition"] == "original" else 2000 + 100 * k["replicate"],
    )
    # B: right everywhere but one false positive (case0, original, 2nd replicate)
    _read(
        study,
        "B",
        lambda k: {
            "tumour": "yes"
            if (k["case"], k["condition"], k["replicate"]) == ("case0", "original", 2)
            else _truth(k),
            "altered": "no",
        },
        lambda k: 500,
    )
    key = _read(study, "C", lambda k: {"tumour": "yes", "altered": "yes"}, lambda k: 700)
    out = root / "out"
    return study, key, out, analyze(study, key_of(study), out)


def test_tables_match_hand_counts(analysed):
    _, _, _, summary = analysed
    a = summary["readers"]["A"]
    o, adv = a["by_condition"]["original"], a["by_condition"]["adversarial"]
    assert (o["tp"], o["fn"], o["tn"], o["fp"]) == (4, 0, 4, 0)
    assert (adv["tp"], adv["fn"], adv["tn"], adv["fp"]) == (0, 4, 4, 0)
    assert adv["sensitivity"] == 0 and o["sensitivity"] == 1
    assert adv["sensitivity_ci95"][0] == 0 and adv["sensitivity_ci95"][1] == pytest.approx(
        0.4899, abs=1e-4
    )  # Wilson 0/4
    # paired: each case's first replicate, original against adversarial (replicates of one
    # image are not independent pairs)
    p = a["paired"]
    assert p["n"] == 4 and p["replicate"].startswith("first replicate")
    assert (p["both_tumour"], p["original_tumour_adversarial_not"]) == (0, 2)
    assert (p["original_not_adversarial_tumour"], p["both_not"]) == (0, 2)
    assert (p["tp_original"], p["tp_adversarial"], p["positives"]) == (2, 0, 2)
    assert p["mcnemar_exact_p"] == pytest.approx(binomtest(2, 2, 0.5).pvalue) == 0.5
    assert p["cohen_kappa"] == pytest.approx(cohen_kappa_score([0, 1, 0, 1], [0] * 4))
    assert a["replicate_agreement"]["both"] == {"n": 8, "agreement": 1.0, "cohen_kappa": 1.0}
    assert a["time_ms"]["original"]["median"] == 1000
    assert a["time_ms"]["adversarial"]["median"] == 2150
    ref = scipy_wilcoxon([1000] * 4, [2100] * 4)
    assert a["time_paired_wilcoxon"]["p_value"] == pytest.approx(ref.pvalue)
    assert a["altered"]["correct"] == 16
    assert a["altered"]["binomial_p_vs_chance"] == pytest.approx(binomtest(16, 16).pvalue)

    b = summary["readers"]["B"]
    bo = b["by_condition"]["original"]
    assert (bo["tp"], bo["fn"], bo["tn"], bo["fp"]) == (4, 0, 3, 1)
    assert b["paired"]["original_tumour_adversarial_not"] == 0  # its slip was a 2nd replicate
    rep = b["replicate_agreement"]["original"]
    x, y = [0, 1, 0, 1], [1, 1, 0, 1]  # case0..3, replicates 1 and 2
    assert rep["agreement"] == 0.75
    assert rep["cohen_kappa"] == pytest.approx(cohen_kappa_score(x, y))
    assert b["altered"]["correct"] == 8 and b["altered"]["said_altered"]["adversarial"] == 0

    pooled = summary["readers"]["all readers"]
    assert pooled["by_condition"]["adversarial"]["tp"] == 0 + 4 + 4
    assert pooled["presentations"] == 48
    # pooled pairs are each reader's own: no reader's answer overwrites another's
    pp = pooled["paired"]
    assert (pp["n"], pp["readers"]) == (12, 3)
    assert pp["original_tumour_adversarial_not"] == 2  # reader A's, still there
    assert pp["both_tumour"] == 0 + 2 + 4
    assert pp["mcnemar_exact_p"] == pytest.approx(binomtest(2, 2).pvalue)
    assert pooled["replicate_agreement"]["both"]["n"] == 3 * 8


def test_fleiss_kappa_over_three_readers(analysed):
    _study, key, _, summary = analysed
    votes = {"A": {}, "B": {}, "C": {}}
    for t, k in key.items():
        truth = int(bool(k["truth"]))
        orig = k["condition"] == "original"
        votes["A"][t] = truth if orig else 0
        votes["B"][t] = 1 if (k["case"], orig, k["replicate"]) == ("case0", True, 2) else truth
        votes["C"][t] = 1
    table = np.array([[sum(v[t] == c for v in votes.values()) for c in (0, 1)] for t in key])
    assert summary["fleiss"]["readers"] == 3
    assert summary["fleiss"]["both"]["items"] == 16
    assert summary["fleiss"]["both"]["fleiss_kappa"] == pytest.approx(fleiss_kappa(table))


def test_exports(analysed):
    _study, key, out, _ = analysed
    with open(out / "answers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 3 * 16
    mine = [r for r in rows if r["reader_id"] == "A"]
    one = next(r for r in mine if key[r["token"]]["condition"] == "adversarial")
    assert one["condition"] == "adversarial" and one["label"] == "0" and one["altered"] == "1"
    assert one["source_id"] == key[one["token"]]["case"] and one["duration_ms"].startswith("2")
    lines = (out / "study.imrmc").read_text().splitlines()
    data = lines[lines.index("BEGIN DATA:") + 1 :]
    assert "NR: 3" in lines and "N0: 2" in lines and "N1: 2" in lines and "NM: 2" in lines
    assert sorted(x for x in data if x.startswith("-1,")) == [
        "-1,case0,0,0", "-1,case1,0,1", "-1,case2,0,0", "-1,case3,0,1",
    ]  # fmt: skip
    assert "A,case1,adversarial,0" in data and "A,case1,original,1" in data
    assert len(data) == 4 + 3 * 4 * 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["readers"]["A"]["paired"]["mcnemar_exact_p"] == 0.5
    report = (out / "report.html").read_text()
    assert "McNemar" in report and "Fleiss" in report and "plots/sensitivity.png" in report
    assert (out / "plots" / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"


def test_the_key_and_every_log_are_verified_before_anything_is_written(tmp_path):
    study = make_study(tmp_path, readers=["A"])
    _read(study, "A", lambda k: {"tumour": _truth(k)}, lambda k: 10)
    bad_key = tmp_path / "key.json"
    text = key_of(study).read_text()
    bad_key.write_text(text.replace('"case0"', '"case9"', 1))
    with pytest.raises(StudyError, match="not this study's key"):
        analyze(study, bad_key, tmp_path / "out1")
    assert not (tmp_path / "out1").exists()
    log = study / "logs" / "A.jsonl"
    data = bytearray(log.read_bytes())
    data[data.index(b'"tumour":"no"') + 11] = ord("x")  # "no" -> "xo" on some answer line
    log.write_bytes(bytes(data))
    with pytest.raises(StudyError, match=r"A\.jsonl: line \d+ does not match its hash"):
        analyze(study, key_of(study), tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_partial_studies_and_unknown_truth(tmp_path):
    from napari_cpadv.study.build import build_study
    from napari_cpadv.study.pairs import pairs_from_folder
    from tests.study.conftest import make_pairs

    folder = make_pairs(tmp_path / "pairs", 3)
    (folder / "truth.json").unlink()
    build_study(pairs_from_folder(folder), tmp_path / "s", seed=1, readers=["A"])
    with pytest.raises(StudyError, match="A is enrolled but has no log"):
        analyze(tmp_path / "s", key_of(tmp_path / "s"), tmp_path / "out")
    with ReaderSession(tmp_path / "s", "A", code(tmp_path / "s", "A")) as s:
        for _ in range(5):
            s.show()
            s.answer(tumour="yes")
    last = Study(tmp_path / "s").order[-1]
    (tmp_path / "s" / "images" / f"{last}.tif").write_bytes(b"II*\0swapped")
    summary = analyze(tmp_path / "s", key_of(tmp_path / "s"), tmp_path / "out")
    assert "A: 7 of 12 cases not answered yet" in summary["notes"]
    assert any(f"{last}.tif: does not match the hash" in n for n in summary["notes"])
    assert "sensitivity" not in summary["readers"]["A"]["by_condition"]["original"]
    assert not (tmp_path / "out" / "study.imrmc").exists()
    assert Study(tmp_path / "s").readers() == ["A"]


def test_cli_study_analyze(tmp_path, capsys):
    from napari_cpadv.cli import main

    study = make_study(tmp_path, readers=["A"])
    _read(study, "A", lambda k: {"tumour": _truth(k)}, lambda k: 10)
    rc = main(["study", "analyze", str(study), "--key", str(key_of(study)),
               "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["readers"]["A"]["original"]["tp"] == 4
    rc = main(["study", "analyze", str(study), "--key", str(study / "manifest.json"),
               "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 2 and "not this study's key" in capsys.readouterr().err


def test_truth_follows_seed_001_rule():
    from napari_cpadv.study.analyze import truth_label

    assert [truth_label(n) for n in (0, 1, 4, 5, 12)] == [0, None, None, 1, 1]
    assert truth_label({"tumour": False, "tumour_cells": 3}) is None  # neither: left out
    assert truth_label({"tumour": True}) == 1


def test_large_studies_analyse_without_overflow():
    """5 readers x 2,000 "altered?" answers: the exact test of old overflowed at 1,030."""
    from napari_cpadv.metrics.study import binomial_test, mcnemar_exact, wilson

    assert binomial_test(600, 1030) == pytest.approx(binomtest(600, 1030).pvalue)
    assert binomial_test(5200, 10_000) == pytest.approx(binomtest(5200, 10_000).pvalue)
    assert mcnemar_exact(900, 1100) == pytest.approx(binomtest(900, 2000).pvalue)
    lo, hi = wilson(5200, 10_000)
    assert lo < 0.52 < hi and hi - lo < 0.03


# -- forgery and damage -------------------------------------------------------------------


@pytest.fixture
def two_readers(tmp_path):
    study = make_study(tmp_path, readers=["alice", "bob"])
    receipts = []
    for reader in ("alice", "bob"):
        with ReaderSession(study, reader, code(study, reader)) as s:
            while not s.done:
                s.show()
                s.answer(tumour="no")
            receipts.append(s.receipt)
    return study, receipts


def test_a_log_rewritten_without_the_code_is_refused_and_named(two_readers, tmp_path):
    import hashlib

    study, _ = two_readers
    log = study / "logs" / "bob.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    prev = lines[0]["prev"]
    for rec in lines:  # every answer "yes", every line re-hashed as the old chain allowed
        if "answers" in rec:
            rec["answers"] = {"tumour": "yes"}
        rec["prev"] = prev
        body = {k: v for k, v in rec.items() if k != "hash"}
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        rec["hash"] = prev = hashlib.sha256(canon.encode()).hexdigest()
    log.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(StudyError, match="bob's log is damaged: .*bob.jsonl: line 1 does not"):
        analyze(study, key_of(study), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    summary = analyze(study, key_of(study), tmp_path / "out", allow_damaged=True)
    assert set(summary["readers"]) == {"alice"}  # the others are analysed
    assert "bob" in summary["integrity"]["damaged"]


def test_invented_renamed_and_deleted_logs_are_reported(two_readers, tmp_path):
    study, _ = two_readers
    logs = study / "logs"
    (logs / "bob.jsonl").rename(logs / "mallory.jsonl")  # bob's log under another name
    (logs / "eve.jsonl").write_text('{"event": "session_start"}\n')  # an invented reader
    with pytest.raises(StudyError) as err:
        analyze(study, key_of(study), tmp_path / "out")
    text = str(err.value)
    assert "bob is enrolled but has no log" in text
    assert "logs/mallory.jsonl is bob's log under another name" in text
    assert "logs/eve.jsonl belongs to no enrolled reader" in text


def test_receipts_prove_nothing_was_cut_off(two_readers, tmp_path):
    study, receipts = two_readers
    held = tmp_path / "receipts.txt"
    held.write_text("# written down by the owner\n" + "\n".join(receipts) + "\n")
    analyze(study, key_of(study), tmp_path / "ok", receipts=held)  # they hold
    log = study / "logs" / "alice.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-3]))  # the last answers cut off: the chain still holds
    with pytest.raises(StudyError, match="receipt alice:.*events up to the receipt were removed"):
        analyze(study, key_of(study), tmp_path / "cut", receipts=held)
    assert not (tmp_path / "cut").exists()


def test_a_revision_in_a_study_without_corrections_is_an_error(two_readers, tmp_path):
    from napari_cpadv.study.log import StudyLog
    from napari_cpadv.study.read import Study

    study, _ = two_readers
    s = Study(study)
    with StudyLog(s.log_path("bob"), s.hash, secret(study, "bob")) as log:  # with bob's code
        log.append("answer_revised", token=s.order[0], answers={"tumour": "yes"}, revises=3)
    with pytest.raises(StudyError, match="bob's log is damaged: .*allows no corrections"):
        analyze(study, key_of(study), tmp_path / "out")


def test_the_key_is_kept_apart_salted_and_the_manifest_tells_no_pairs(tmp_path):
    from napari_cpadv.study.read import ReaderSession as Session

    study = make_study(tmp_path, readers=["r1"])
    assert not (study / "key.json").exists() and key_of(study).parent == study.parent
    key = json.loads(key_of(study).read_text())
    assert len(key["salt"]) == 64 and set(key["readers"]) == {"r1"}
    manifest = json.loads((study / "manifest.json").read_text())
    assert "r1" in manifest["readers"] and key["readers"]["r1"] not in json.dumps(manifest)
    # replicates of one image are byte-identical files with unrelated digests
    by_case: dict[tuple[str, str], list[str]] = {}
    for token, entry in key["tokens"].items():
        by_case.setdefault((entry["case"], entry["condition"]), []).append(token)
    digest = {t["token"]: t["sha256"] for t in manifest["tokens"]}
    a, b = by_case[("case0", "original")]
    images = study / "images"
    assert (images / f"{a}.tif").read_bytes() == (images / f"{b}.tif").read_bytes()
    assert digest[a] != digest[b]
    # a study folder that holds the key is refused by the reader
    (study / "key.json").write_bytes(key_of(study).read_bytes())
    with pytest.raises(StudyError, match="key is in the folder readers use"):
        Session(study, "r1", code(study, "r1"))
    (study / "key.json").unlink()
    with pytest.raises(StudyError, match="not r1's code"):
        Session(study, "r1", code(make_study(tmp_path / "other", readers=["r1"]), "r1"))
    with pytest.raises(StudyError, match="'zed' is not enrolled"):
        Session(study, "zed", code(study, "r1"))


def test_hostile_case_names_do_not_become_formulas(tmp_path):
    from napari_cpadv.study.build import build_study
    from napari_cpadv.study.pairs import pairs_from_folder
    from tests.study.conftest import make_pairs

    folder = make_pairs(tmp_path / "pairs", 2)
    for cond, ext in (("original", "png"), ("adversarial", "tif")):
        (folder / f"case0_{cond}.{ext}").rename(folder / f"=1+2+cmd_{cond}.{ext}")
    build_study(pairs_from_folder(folder), tmp_path / "s", readers=["A"], replicates=1,
                min_gap=1)  # fmt: skip
    with ReaderSession(tmp_path / "s", "A", code(tmp_path / "s", "A")) as s:
        while not s.done:
            s.show()
            s.answer(tumour="no")
    analyze(tmp_path / "s", key_of(tmp_path / "s"), tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "answers.csv").open()))
    assert {r["source_id"] for r in rows} == {"'=1+2+cmd", "case1"}


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        (["a\nb_original.png", "a\nb_adversarial.png"], "control character"),
        (["c_original.jpg", "c_adversarial.jpg"], "not PNG or TIFF"),
        (["d_original.png", "d_original.tif", "d_adversarial.png"], "two original images"),
    ],
)
def test_skipped_or_ambiguous_pair_files_are_named(tmp_path, names, reason):
    from PIL import Image

    from napari_cpadv.study.pairs import pairs_from_folder

    folder = tmp_path / "pairs"
    folder.mkdir()
    for name in names:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / name, format="PNG")
    with pytest.raises(StudyError, match=reason):
        pairs_from_folder(folder)
