"""Building a blinded study: the order's constraints, identical containers, the key."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from napari_cpadv.study.build import build_study, constrained_order, study_work
from napari_cpadv.study.model import StudyError, token_digest
from napari_cpadv.study.pairs import pairs_from_folder
from tests.study.conftest import key_of
from tests.study.conftest import make_pairs as _pairs


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 8), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10_000))
def test_order_keeps_its_constraints_and_depends_only_on_the_seed(n, reps, gap, seed):
    try:
        order = constrained_order(n, reps, gap, seed)
    except StudyError:
        return  # some small designs have no valid order; that is said, not faked
    assert order == constrained_order(n, reps, gap, seed)
    assert sorted(order) == sorted(
        (c, d, r) for c in range(n) for d in ("original", "adversarial") for r in range(reps)
    )
    for i, (c, d, _) in enumerate(order):
        if i:
            assert not (order[i - 1][0] == c and order[i - 1][1] != d)  # pair never adjacent
        for j in range(i + 1, min(i + gap, len(order))):
            assert order[j][:2] != (c, d)  # the same image at least `gap` apart


def test_study_files_are_blind_and_the_key_is_sealed_in_the_manifest(tmp_path):
    (tmp_path / "pairs").mkdir()
    src = _pairs(tmp_path / "pairs")
    pairs = pairs_from_folder(src)
    manifest_path = build_study(
        pairs, tmp_path / "study", replicates=2, seed=7, min_gap=2, readers=["r1"]
    )
    manifest = json.loads(manifest_path.read_text())
    key_bytes = key_of(tmp_path / "study").read_bytes()
    assert manifest["key_sha256"] == hashlib.sha256(key_bytes).hexdigest()
    key = json.loads(key_bytes)["tokens"]
    assert len(manifest["order"]) == 4 * 2 * 2 == len(key)
    text = manifest_path.read_text()
    assert "original" not in text and "adversarial" not in text and "case" not in text
    sizes, tags = {}, {}
    for t in manifest["tokens"]:
        f = tmp_path / "study" / t["file"]
        assert token_digest(t["token"], f.read_bytes()) == t["sha256"]
        with tifffile.TiffFile(f) as tf:
            page = tf.pages[0]
            assert page.compression == 1 and page.dtype == np.uint8
            tags[key[t["token"]]["condition"]] = sorted(
                (tag.name, str(tag.value)) for tag in page.tags
                if tag.name not in ("StripOffsets",)
            )  # fmt: skip
        sizes.setdefault(key[t["token"]]["condition"], set()).add(f.stat().st_size)
    assert sizes["original"] == sizes["adversarial"]  # same bytes count: uncompressed
    assert tags["original"] == tags["adversarial"]  # same tags, nothing that tells them apart
    # byte for byte, outside the pixels every presented file is the same
    shells = set()
    for t in manifest["tokens"]:
        data = bytearray((tmp_path / "study" / t["file"]).read_bytes())
        with tifffile.TiffFile(tmp_path / "study" / t["file"]) as tf:
            page = tf.pages[0]
            for off, n in zip(page.dataoffsets, page.databytecounts, strict=True):
                data[off : off + n] = bytes(n)
        shells.add(bytes(data))
    assert len(shells) == 1
    assert {v["truth"] for v in key.values()} == {0, 1}
    with pytest.raises(StudyError, match="written once"):
        build_study(pairs, tmp_path / "study", readers=["r1"])


def test_bad_pair_folders_are_named(tmp_path):
    (tmp_path / "a_original.png").write_bytes(b"")
    with pytest.raises(StudyError, match="without both images: a"):
        pairs_from_folder(tmp_path)
    (tmp_path / "a_adversarial.png").write_bytes(b"not a png")
    for name in ("b_original.png", "b_adversarial.png", "c_original.png", "c_adversarial.png"):
        value = 1 if "adversarial" in name else 0
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(tmp_path / name)
    pairs = pairs_from_folder(tmp_path)
    with pytest.raises(StudyError, match=r"a_(original|adversarial)\.png: cannot be read as an"):
        build_study(pairs, tmp_path / "s", replicates=1, min_gap=1, readers=["r1"])
    assert not (tmp_path / "s").exists()  # a failed build leaves nothing behind
    with pytest.raises(StudyError, match="share a case name"):
        build_study(pairs * 2, tmp_path / "t", replicates=1, min_gap=1, readers=["r1"])


def test_a_pair_whose_two_images_are_identical_is_refused(tmp_path):
    folder = _pairs(tmp_path / "pairs")
    pixels = np.asarray(Image.open(folder / "case1_original.png"))
    Image.fromarray(pixels).save(folder / "case1_adversarial.tif")  # another file, same pixels
    with pytest.raises(StudyError, match="case1_adversarial.tif: case 'case1': the adversarial"):
        build_study(
            pairs_from_folder(folder), tmp_path / "s", replicates=1, min_gap=1, readers=["r1"]
        )
    assert not (tmp_path / "s").exists()


def test_a_cancelled_build_leaves_nothing_and_progress_counts_images(tmp_path):
    pairs = pairs_from_folder(_pairs(tmp_path / "pairs"))
    (tmp_path / "mine").mkdir()
    work = study_work(pairs, tmp_path / "mine", replicates=2, readers=["r1"])
    steps = [next(work) for _ in range(3)]
    assert [(p.step, p.total) for p in steps] == [(1, 16), (2, 16), (3, 16)]
    work.close()  # Cancel
    assert list((tmp_path / "mine").iterdir()) == []  # the folder was there before: kept
    manifest = build_study(pairs, tmp_path / "mine", replicates=2, readers=["r1"])
    assert manifest.is_file()
    (tmp_path / "half" / "images").mkdir(parents=True)
    with pytest.raises(StudyError, match="no manifest: choose a new folder"):
        build_study(pairs, tmp_path / "half", readers=["r1"])


def test_cli_study_create(tmp_path, capsys):
    from napari_cpadv.cli import main

    (tmp_path / "pairs").mkdir()
    _pairs(tmp_path / "pairs", n=3)
    code = main(["study", "create", str(tmp_path / "pairs"), "--out", str(tmp_path / "s"),
                 "--preset", "seed001", "--seed", "3", "--readers", "p1", "p2"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["presentations"] == 3 * 2 * 2 and out["cases"] == 3
    assert set(out["reader_codes"]) == {"p1", "p2"} and out["key"] == str(tmp_path / "s.key.json")
    assert not (tmp_path / "s" / "key.json").exists()
    code = main(["study", "create", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t"),
                 "--readers", "p1"])  # fmt: skip
    assert code == 2 and "nowhere" in capsys.readouterr().err


def _visible(folder):
    """Case 1's adversarial image 30 grey levels off its original: PSNR about 18.6 dB."""
    a = np.asarray(Image.open(folder / "case1_original.png")).astype(int)
    Image.fromarray(np.clip(a + 30, 0, 255).astype(np.uint8)).save(folder / "case1_adversarial.tif")
    return folder


def test_a_visibly_perturbed_pair_is_named_and_strict_refuses_it(tmp_path):
    """Issue 31, item 4: a pair a reader would see differ (PSNR below 30 dB) un-blinds its
    case; the build warns and the key records it, --strict refuses with nothing written."""
    pairs = pairs_from_folder(_visible(_pairs(tmp_path / "pairs")))
    with pytest.raises(StudyError, match=r"1 of 4 pairs differ visibly .*case1 \(1\d\.\d dB\)"):
        build_study(pairs, tmp_path / "s", replicates=1, min_gap=1, readers=["r1"], strict=True)
    assert not (tmp_path / "s").exists() and not (tmp_path / "s.key.json").exists()
    with pytest.warns(UserWarning, match="un-blinds them: case1"):
        build_study(pairs, tmp_path / "s", replicates=1, min_gap=1, readers=["r1"])
    (seen,) = json.loads((tmp_path / "s.key.json").read_text())["visible_pairs"]
    assert seen["case"] == "case1" and 15 < seen["psnr_db"] < 30


def test_strict_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    from napari_cpadv.cli import main

    folder = _pairs(tmp_path / "pairs")
    argv = ["study", "create", str(folder), "--readers", "r1", "--replicates", "1"]
    assert main([*argv, "--min-gap", "1", "--out", str(tmp_path / "ok"), "--strict"]) == 0
    _visible(folder)
    capsys.readouterr()
    assert main([*argv, "--min-gap", "1", "--out", str(tmp_path / "no"), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused (--strict)" in err[0] and "case1" in err[0]
    assert not (tmp_path / "no").exists()
