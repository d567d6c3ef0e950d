"""`make check-bench` (benchmarks/check_bench.py): a table is current until something it
measures changes after its stamped commit; unstamped tables and unregistered headings are
listed; a table stamped "not measured" waits without failing."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from check_bench import check, main
from table_registry import TABLES, Table

BENCH = """# Benchmarks

## Reading slides — `bench_a.py`
<!-- stamp: commit {commit}, 2026-12-07 -->

| a | b |

## Detectors, unstamped

## On a GPU
<!-- stamp: not measured (needs a GPU) -->
"""
TABLES_HERE = (
    Table("reading", "Reading slides", ("python", "bench_a.py"), ("pkg/slide",), 1),
    Table("detectors", "Detectors", None, ("pkg/models",), 1),
    Table("gpu", "On a GPU", ("gpu.sh",), ("gpu.py",), 9, "a GPU"),
)


def _git(root, *args) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _commit(root, path: str, text: str) -> str:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"change {path}")
    return _git(root, "rev-parse", "--short", "HEAD")


def test_a_table_goes_stale_when_what_it_measures_changes(tmp_path):
    _git(tmp_path, "init", "-q")
    measured = _commit(tmp_path, "pkg/slide/read.py", "v1\n")
    _commit(tmp_path, "BENCHMARKS.md", BENCH.format(commit=measured))
    _commit(tmp_path, "pkg/study/other.py", "unrelated\n")
    waiting: list[str] = []
    problems = check(tmp_path, waiting, TABLES_HERE)
    assert problems == ["detectors: no stamp under its heading"]
    assert waiting == ["gpu: not measured yet (needs a GPU)"]

    changed = _commit(tmp_path, "pkg/slide/read.py", "v2\n")
    problems = check(tmp_path, None, TABLES_HERE)
    assert problems[0].startswith(f"reading: measured at {measured}; changed since: {changed}")

    text = (tmp_path / "BENCHMARKS.md").read_text().replace(measured, "abcdef1")
    _commit(tmp_path, "BENCHMARKS.md", text + "\n## A table nobody registered\n")
    problems = check(tmp_path, None, TABLES_HERE)
    assert "reading: stamped commit abcdef1 is not in this history" in problems
    assert "BENCHMARKS.md: 'A table nobody registered' is no table of table_registry.py" in problems


def test_a_change_to_docstrings_or_comments_alone_leaves_a_table_current(tmp_path):
    code = '''"""Reads."""


def read(x):
    """Once."""
    return x + 1  # one
'''
    _git(tmp_path, "init", "-q")
    measured = _commit(tmp_path, "pkg/slide/read.py", code)
    _commit(tmp_path, "BENCHMARKS.md", BENCH.format(commit=measured))
    reworded = code.replace("Reads.", "Reads slides.").replace("Once.", "Twice?")
    _commit(tmp_path, "pkg/slide/read.py", reworded.replace("# one", "# the one"))
    assert not [p for p in check(tmp_path, None, TABLES_HERE) if p.startswith("reading")]

    changed = _commit(tmp_path, "pkg/slide/read.py", reworded.replace("x + 1", "x + 2"))
    (problem,) = [p for p in check(tmp_path, None, TABLES_HERE) if p.startswith("reading")]
    assert f"changed since: {changed}" in problem
    _commit(tmp_path, "pkg/slide/table.csv", "data\n")  # not Python: any change counts
    (problem,) = [p for p in check(tmp_path, None, TABLES_HERE) if p.startswith("reading")]
    assert "change pkg/slide/table.csv" in problem


def test_every_heading_of_benchmarks_md_is_a_registered_table_with_a_script_or_a_reason(capsys):
    problems = check(REPO)
    assert not [p for p in problems if "no table of table_registry.py" in p or "no heading" in p]
    if _git(REPO, "rev-parse", "--is-shallow-repository") == "false":  # a shallow clone
        assert not [p for p in problems if "not in this history" in p]  # lacks old commits
    for table in TABLES:
        for path in table.depends:
            path = path.removeprefix(":(exclude)")  # git's exclude pathspec
            assert (REPO / path).exists(), (table.id, path)
        if table.command and table.command[0].endswith(".py"):
            assert (REPO / table.command[0]).is_file()
    assert main(["--root", str(REPO)]) == (1 if problems else 0)
    assert capsys.readouterr().out.splitlines()[-1].endswith("not current") == bool(problems)


def test_make_bench_records_what_ran_and_keeps_it(tmp_path, monkeypatch):
    import run_all

    table = Table("echo", "Echo", (sys.executable, "-c", "print('measured')"), ("pkg",), 0)
    monkeypatch.setattr(run_all, "TABLES", (table,))
    monkeypatch.setattr(run_all, "OUT", tmp_path)
    record = run_all.run("echo")
    assert record["returncode"] == 0 and record["stdout"] == "measured\n"
    head = _git(REPO, "rev-parse", "--short", "HEAD")
    assert record["commit"] == record["commit_at_end"] == head  # the commit when it started
    kept = (tmp_path / "echo.json").read_text()
    assert '"table": "echo"' in kept and "measured" in kept


def test_make_bench_all_runs_current_tables_too_and_times_the_whole(tmp_path, monkeypatch):
    """`make bench BENCH=--all`: a current table (one already run at this commit) is run
    again, and the run's seconds, table by table and in all, are written down."""
    import json

    import run_all

    table = Table("echo", "Echo", (sys.executable, "-c", "print('measured')"), ("pkg",), 0)
    monkeypatch.setattr(run_all, "TABLES", (table,))
    monkeypatch.setattr(run_all, "OUT", tmp_path)
    monkeypatch.setattr(run_all, "check", lambda root: [])  # every table current
    assert run_all.plan(None) == [("echo", "current: kept")]
    assert run_all.main([]) == 0 and not (tmp_path / "_run.json").exists()
    assert run_all.main(["--all"]) == 0
    summary = json.loads((tmp_path / "_run_all.json").read_text())
    assert summary["all"] and list(summary["seconds"]) == ["echo"]
    assert summary["total_seconds"] >= summary["seconds"]["echo"] >= 0
    head = _git(REPO, "rev-parse", "--short", "HEAD")
    (tmp_path / "echo.json").write_text(json.dumps({"commit": head, "stdout": "old"}))
    monkeypatch.setattr(run_all, "check", lambda root: ["echo: stale"])
    assert run_all.plan(None) == [("echo", f"already run at {head}: kept")]
    assert run_all.main(["--all"]) == 0  # already run at this commit: --all runs it again
    assert json.loads((tmp_path / "echo.json").read_text())["stdout"] == "measured\n"
    kept = (tmp_path / "_run_all.json").read_text()
    (tmp_path / "echo.json").unlink()
    assert run_all.main([]) == 0  # the stale table alone: its own record, the whole run's kept
    assert json.loads((tmp_path / "_run.json").read_text())["all"] is False
    assert (tmp_path / "_run_all.json").read_text() == kept


def test_a_change_undone_later_leaves_a_table_current(tmp_path):
    _git(tmp_path, "init", "-q")
    measured = _commit(tmp_path, "pkg/slide/read.py", "x = 1\n")
    _commit(tmp_path, "BENCHMARKS.md", BENCH.format(commit=measured))
    _commit(tmp_path, "pkg/slide/read.py", "x = 2\n")
    assert [p for p in check(tmp_path, None, TABLES_HERE) if p.startswith("reading")]
    _commit(tmp_path, "pkg/slide/read.py", "x = 1  # back, with a comment\n")
    assert not [p for p in check(tmp_path, None, TABLES_HERE) if p.startswith("reading")]

    _commit(tmp_path, "pkg/slide/new.py", "y = 1\n")  # a file added after the stamp
    changed = _commit(tmp_path, "pkg/slide/read.py", "x = 3\n")
    _commit(tmp_path, "pkg/slide/read.py", "x = 3  # the same code\n")
    (problem,) = [p for p in check(tmp_path, None, TABLES_HERE) if p.startswith("reading")]
    assert f"changed since: {changed}" in problem or "change pkg/slide/new.py" in problem
