"""The reader's event log: durable, chained, one writer, torn lines set aside."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_cpadv.study.log import StudyLog, StudyLogError, read_log

MANIFEST = "ab" * 32
SECRET = b"0123456789"


def _write(path, n=5):
    with StudyLog(path, MANIFEST, SECRET) as log:
        log.append("session_start", reader="r1")
        for k in range(n):
            log.append("shown", token=f"t{k}")
            log.append("answer", token=f"t{k}", label=k % 2)
    return path


def test_events_chain_from_the_manifest_and_read_back(tmp_path):
    path = _write(tmp_path / "r1.jsonl")
    read = read_log(path, MANIFEST, SECRET)
    assert [e["seq"] for e in read.events] == list(range(11))
    assert read.events[0]["prev"] == MANIFEST and read.torn is None
    assert read.events[2] == {**read.events[2], "event": "answer", "label": 0}
    with pytest.raises(StudyLogError, match="line 1 does not chain"):
        read_log(path, "cd" * 32, SECRET)  # a log of another study


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_one_changed_byte_anywhere_is_detected(tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("log") / "r1.jsonl", n=3)
    raw = bytearray(path.read_bytes())
    i = data.draw(st.integers(0, len(raw) - 2))  # not the final newline
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    raw[i] = new
    path.write_bytes(bytes(raw))
    try:
        read = read_log(path, MANIFEST, SECRET)
    except StudyLogError:
        return
    # a byte turned into a newline can only split a line: the tail is then torn
    assert new == 10 and read.torn is not None


def test_a_deleted_line_is_named(tmp_path):
    path = _write(tmp_path / "r1.jsonl", n=2)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:2] + lines[3:]))
    with pytest.raises(StudyLogError, match="line 3 .*deleted or moved"):
        read_log(path, MANIFEST, SECRET)


def test_a_torn_last_line_is_reported_and_set_aside_not_repaired(tmp_path):
    path = _write(tmp_path / "r1.jsonl", n=2)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"event": "answer", "tok')  # a crash mid-write
    read = read_log(path, MANIFEST, SECRET)
    assert len(read.events) == 5 and read.torn == b'{"event": "answer", "tok'
    assert "cut off" in read.notes[0]
    with StudyLog(path, MANIFEST, SECRET) as log:
        assert log.events[-1]["event"] == "torn_line_set_aside"
        assert "cut off" in log.notes[0]
        log.append("resume")
    assert (tmp_path / "r1.jsonl.torn").read_bytes() == b'{"event": "answer", "tok\n'
    read = read_log(path, MANIFEST, SECRET)
    assert [e["event"] for e in read.events[-2:]] == ["torn_line_set_aside", "resume"]
    assert read.torn is None and path.read_bytes().startswith(whole)


def test_one_writer_at_a_time_and_stale_locks(tmp_path):
    path = tmp_path / "r1.jsonl"
    log = StudyLog(path, MANIFEST, SECRET)
    with pytest.raises(StudyLogError, match="another reader session"):
        StudyLog(path, MANIFEST, SECRET)
    log.close()
    assert (tmp_path / "r1.jsonl.lock").read_text() == ""  # a clean close leaves no holder
    (tmp_path / "r1.jsonl.lock").write_text("pid 999999999 on elsewhere")  # died holding it
    with StudyLog(path, MANIFEST, SECRET) as again:
        assert again.events[-1]["event"] == "lock_taken_over"
        assert again.events[-1]["previous"] == "pid 999999999 on elsewhere"


def _take(args):
    path, barrier = args
    barrier.wait()
    try:
        log = StudyLog(path, MANIFEST, SECRET)
    except StudyLogError:
        log = None
    else:
        log.append("resume")
    barrier.wait()  # the winner holds it until both have tried
    if log is not None:
        log.close()
    return log is not None


@pytest.mark.slow
def test_two_sessions_finding_a_stale_lock_never_both_take_it(tmp_path):
    """The old pid-file lock let 2 of 25 racing takeovers both write ("seq 0, expected 1")."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    for trial in range(25):
        path = tmp_path / f"r{trial}.jsonl"
        with StudyLog(path, MANIFEST, SECRET) as log:
            log.append("session_start")
        path.with_name(path.name + ".lock").write_text("pid 999999999 on elsewhere")
        with ctx.Manager() as manager:
            barrier = manager.Barrier(2, timeout=30)
            with ctx.Pool(2) as pool:
                took = pool.map(_take, [(path, barrier)] * 2)
        assert sorted(took) == [False, True], trial
        read_log(path, MANIFEST, SECRET)  # the chain holds


def test_only_the_code_writes_a_log_that_verifies(tmp_path):
    path = _write(tmp_path / "r1.jsonl", n=1)
    with pytest.raises(StudyLogError, match="line 1 does not match its hash"):
        read_log(path, MANIFEST, b"not-the-code")
    # a whole log rewritten with plain SHA-256 hashes, as anyone holding the folder could
    import hashlib

    prev, lines = MANIFEST, []
    for seq, event in enumerate(("session_start", "answer")):
        rec = {"event": event, "seq": seq, "prev": prev, "answers": {"tumour": "yes"}}
        body = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
        rec["hash"] = prev = hashlib.sha256(body).hexdigest()
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StudyLogError, match="line 1 does not match its hash"):
        read_log(path, MANIFEST, SECRET)


def test_a_symlinked_log_or_logs_folder_is_refused(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bob.jsonl").symlink_to(target)
    with pytest.raises(StudyLogError, match="bob.jsonl: is a symbolic link"):
        StudyLog(logs / "bob.jsonl", MANIFEST, SECRET)
    assert target.read_text() == ""  # nothing appended into it
    linked = tmp_path / "linked"
    linked.symlink_to(logs)
    with pytest.raises(StudyLogError, match="linked: is a symbolic link"):
        StudyLog(linked / "carol.jsonl", MANIFEST, SECRET)


def test_every_line_is_on_disk_when_append_returns(tmp_path):
    path = tmp_path / "r1.jsonl"
    with StudyLog(path, MANIFEST, SECRET) as log:
        for k in range(3):
            rec = log.append("answer", token=f"t{k}", label=1)
            on_disk = path.read_bytes().splitlines()
            assert json.loads(on_disk[-1]) == rec
            assert os.path.getsize(path) == sum(len(x) + 1 for x in on_disk)
