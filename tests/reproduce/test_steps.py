"""Resumable steps: a finished step is kept, a changed input runs again, an interrupted
step leaves nothing behind and the steps before it stay finished."""

from __future__ import annotations

import json

import pytest

from napari_cpadv.progress import Progress, drive
from napari_cpadv.reproduce.steps import Steps, fingerprint, plan


def _counting(calls: list[str], name: str, value: int):
    def work(folder):
        calls.append(name)
        (folder / "out.txt").write_text(str(value))
        yield Progress(1, 1, {})
        return {"value": value}

    return work


def test_fingerprint_is_canonical():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_a_finished_step_is_kept_and_a_changed_one_runs_again(tmp_path):
    calls: list[str] = []
    first = Steps(tmp_path)
    drive(first.run("s/a", {"x": 1}, _counting(calls, "a", 1)))
    drive(first.run("s/b", {"y": 1}, _counting(calls, "b", 2), after=("s/a",)))
    assert calls == ["a", "b"]
    assert (tmp_path / "s/a/out.txt").read_text() == "1"
    record = json.loads((tmp_path / "steps/s/b.json").read_text())
    assert record["result"] == {"value": 2} and record["inputs"]["after"]["s/a"]

    again = Steps(tmp_path)
    assert drive(again.run("s/a", {"x": 1}, _counting(calls, "a", 1))) == {"value": 1}
    drive(again.run("s/b", {"y": 1}, _counting(calls, "b", 2), after=("s/a",)))
    assert calls == ["a", "b"] and again.kept == ["s/a", "s/b"]

    # a changed input of a runs a again, and b after it (its input "after" changed)
    changed = Steps(tmp_path)
    drive(changed.run("s/a", {"x": 2}, _counting(calls, "a", 3)))
    drive(changed.run("s/b", {"y": 1}, _counting(calls, "b", 2), after=("s/a",)))
    assert calls == ["a", "b", "a", "b"]
    assert (tmp_path / "s/a/out.txt").read_text() == "3"


def test_an_interrupted_step_leaves_nothing_and_keeps_the_finished(tmp_path):
    calls: list[str] = []

    def breaks(folder):
        (folder / "half.txt").write_text("half")
        yield Progress(1, 2, {})
        raise KeyboardInterrupt

    steps = Steps(tmp_path)
    parts = [
        ("s/a", 1, lambda: steps.run("s/a", {}, _counting(calls, "a", 1))),
        ("s/b", 1, lambda: steps.run("s/b", {}, breaks, after=("s/a",))),
    ]
    with pytest.raises(KeyboardInterrupt):
        drive(plan(steps, parts))
    assert not (tmp_path / "s/b").exists() and not (tmp_path / "steps/s/b.json").exists()
    assert not list((tmp_path / "s").glob(".*"))  # no temporary left beside
    resumed = Steps(tmp_path)
    drive(resumed.run("s/a", {}, _counting(calls, "a", 1)))
    assert calls == ["a"] and resumed.kept == ["s/a"]


def test_a_damaged_record_runs_the_step_again(tmp_path):
    calls: list[str] = []
    drive(Steps(tmp_path).run("a", {}, _counting(calls, "a", 1)))
    (tmp_path / "steps/a.json").write_text("{not json")
    drive(Steps(tmp_path).run("a", {}, _counting(calls, "a", 1)))
    assert calls == ["a", "a"]
