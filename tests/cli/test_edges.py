"""Every bad argument is one line on stderr and exit 2, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_cpadv.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "sample_data" / "weights" / "dae.safetensors"


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
    assert not (out / "adversarial.delta.zarr").exists()


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


def _options(parser, prefix=()):
    """Every option and positional of every ``cpadv`` command, with the command's name."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*prefix, name))
        elif not isinstance(action, argparse._HelpAction):
            yield " ".join(prefix), action


def test_every_option_explains_itself():
    """Issue 16, item 12: every option has help; a default is shown where there is one;
    budgets and levels say their units."""
    from napari_cpadv.cli import _Help, build_parser

    parser = build_parser()
    options = list(_options(parser))
    assert len(options) > 150
    missing = [f"{cmd} {a.option_strings or a.dest}" for cmd, a in options if not a.help]
    assert missing == []
    fmt = _Help("cpadv")
    for cmd, action in options:
        shown = fmt._get_help_string(action)
        if action.default not in (None, False) and action.option_strings:
            assert "default" in shown, (cmd, action.option_strings, shown)
    helps = {(cmd, a.dest): a.help for cmd, a in options}
    assert "norm of δ" in helps[("attack", "budget")] and "[0, 1]" in helps[("attack", "budget")]
    assert "grey levels of 255" in helps[("attack", "unit")]
    assert "full resolution" in helps[("attack", "level")]


def test_output_cut_short_by_its_reader_ends_quietly():
    """`cpadv ... | head -1` exits 0 without a BrokenPipe traceback, for --help and for a
    command whose output is longer than the pipe holds."""
    import subprocess
    import sys

    for code in (
        "import sys; from napari_cpadv import cli; sys.exit(cli.main(['attack', '--help']))",
        "import sys; from napari_cpadv import cli\n"
        "cli._main = lambda argv: print('{\"x\": 1}\\n' * 200_000) or 0\n"
        "sys.exit(cli.main([]))",
    ):
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stdout.readline()
        proc.stdout.close()  # what `head -1` does after its line
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err
