"""Every bad argument is one line on stderr and exit 2, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_cpadv.cli import main

SHIPPED = Path(__file__).resolve().parents[1] / "sample_data" / "weights" / "dae.safetensors"


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def _attack(slide, out, *extra):
    return ["attack", str(slide), "--detector", "dae", "--weights", str(SHIPPED),
            "--attack", "fgsm", "--level", "1", "--out", str(out), *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--tile", "0"], "--tile"),
        (["--tile", "-64"], "--tile"),
        (["--batch", "0"], "--batch"),
        (["--steps", "0"], "--steps"),
        (["--budget", "0"], "--budget"),
        (["--budget", "nan"], "--budget"),
        (["--budget", "-25"], "--budget"),
        (["--tile", "2"], "smaller than dae's smallest input"),
        (["--region", "100", "100", "-50", "50"], "must be positive"),
        (["--region", "99999", "0", "50", "50"], "outside the slide"),
    ],
)
def test_bad_attack_arguments(small_slide, tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    assert main(_attack(small_slide.path, out, *extra)) == 2
    _one_line(capsys, needle)
    assert not (out / f"{small_slide.path.stem}.delta.zarr").exists()


def test_an_out_folder_that_is_a_file_is_refused(small_slide, tmp_path, capsys):
    out = tmp_path / "report"
    out.write_text("my notes")
    assert main(_attack(small_slide.path, out)) == 2
    _one_line(capsys, "report: --out names a folder")
    assert out.read_text() == "my notes"


def test_output_into_a_folder_that_cannot_be_written_is_one_line(small_slide, capsys):
    # /proc refuses new folders even to root, as a read-only folder refuses a user
    assert main(_attack(small_slide.path, Path("/proc/cpadv-out"), "--tile", "64")) == 2
    _one_line(capsys, "cpadv attack: /proc/cpadv-out")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--mpp", "nan"], "--mpp"),
        (["--mpp", "0"], "--mpp"),
        (["--shape", "1000000", "1000000"], "--shape"),
        (["--shape", "0", "100"], "--shape"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_sample_arguments(tmp_path, capsys, args, needle):
    out = tmp_path / "s.tif"
    assert main(["sample", str(out), *args]) == 2
    _one_line(capsys, needle)
    assert not out.exists()


def test_bad_tiles_and_heatmap_arguments(small_slide, tmp_path, capsys):
    out = tmp_path / "tiles"
    assert main(["tiles", str(small_slide.path), "--size", "0", "--out", str(out)]) == 2
    _one_line(capsys, "--size")
    assert not out.exists()
    args = ["heatmap", str(small_slide.path), "--detector", "dae", "--level", "1",
            "--workers", "0", "--out", str(tmp_path / "h.zarr")]  # fmt: skip
    assert main(args) == 2
    _one_line(capsys, "--workers")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--replicates", "0"], "--replicates"),
        (["--min-gap", "0"], "--min-gap"),
        (["--replicates", "100000"], "--replicates"),
    ],
)
def test_bad_study_arguments(tmp_path, capsys, args, needle):
    from tests.study.conftest import make_pairs

    pairs = make_pairs(tmp_path / "pairs")
    out = tmp_path / "study"
    assert main(["study", "create", str(pairs), "--out", str(out), "--readers", "r1", *args]) == 2
    _one_line(capsys, needle)
    assert not out.exists()


def test_replicates_and_gap_are_used_as_given(tmp_path, capsys):
    from tests.study.conftest import make_pairs

    pairs = make_pairs(tmp_path / "pairs")
    args = ["study", "create", str(pairs), "--out", str(tmp_path / "s"), "--replicates", "1",
            "--min-gap", "1", "--readers", "r1"]  # fmt: skip
    assert main(args) == 0
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert len(manifest["order"]) == 4 * 2 * 1  # one replicate, not a silent 2
