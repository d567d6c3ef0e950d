"""A reader's session: resume at the first unanswered case, answers checked, times, one
writer, corrections only where the study allows them."""

from __future__ import annotations

import json

import pytest

from napari_cpadv.study.log import StudyLogError, read_log
from napari_cpadv.study.model import StudyError
from napari_cpadv.study.read import ReaderSession, Study
from tests.study.conftest import code, make_study, secret


class Clock:
    """A monotonic clock the test moves by hand (nanoseconds)."""

    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t

    def wait(self, ms: int) -> None:
        self.t += ms * 1_000_000


def test_resume_continues_at_the_first_unanswered_case(study_dir):
    study = Study(study_dir)
    with ReaderSession(study, "r1", code(study, "r1")) as s:
        assert (s.position, s.total) == (0, 16)
        for expected in study.order[:3]:
            s.show()
            assert s.showing == expected
            s.answer(tumour="yes")
        s.show()  # shown, never answered: the session ends (or crashes) here
    with ReaderSession(study, "r1", code(study, "r1")) as s:
        assert s.position == 3 and s.current == study.order[3]
        assert s.log.events[-1]["event"] == "session_start"
        assert s.log.events[-1]["resume_at"] == 3
    events = read_log(study.log_path("r1"), study.hash, secret(study, "r1")).events
    assert [e["event"] for e in events].count("answer") == 3
    assert [e["event"] for e in events][-1] == "session_end"


def test_answers_are_checked_against_the_questions(tmp_path):
    study = Study(make_study(tmp_path, questions=["tumour", "confidence", "count", "altered"]))
    with ReaderSession(study, "r1", code(study, "r1")) as s:
        with pytest.raises(StudyError, match="no case is on screen"):
            s.answer(tumour="yes")
        s.show()
        with pytest.raises(StudyError, match="Confidence"):
            s.answer(tumour="yes", count=3, altered="no")
        with pytest.raises(StudyError, match="not one of"):
            s.answer(tumour="maybe", confidence=3, count=3, altered="no")
        with pytest.raises(StudyError, match="whole number 1-5"):
            s.answer(tumour="yes", confidence=6, count=3, altered="no")
        with pytest.raises(StudyError, match="not a count"):
            s.answer(tumour="yes", confidence=2, count=-1, altered="no")
        with pytest.raises(StudyError, match="does not ask"):
            s.answer(tumour="yes", confidence=2, count=1, altered="no", mood="fine")
        rec = s.answer(tumour="yes", confidence=2, count=1, altered="no")
        assert rec["answers"] == {"tumour": "yes", "confidence": 2, "count": 1, "altered": "no"}
        assert s.position == 1


def test_time_on_case_leaves_pauses_out(study_dir):
    clock = Clock()
    with ReaderSession(study_dir, "r1", code(study_dir, "r1"), clock=clock) as s:
        s.show()
        clock.wait(1200)
        s.pause()
        with pytest.raises(StudyError, match="paused"):
            s.answer(tumour="no")
        clock.wait(60_000)
        s.resume()
        clock.wait(300)
        assert s.answer(tumour="no")["duration_ms"] == 1500
        s.show()
        s.view((12.5, 30.25), 2.0)
        clock.wait(700)
        assert s.answer(tumour="yes")["duration_ms"] == 700
    events = [e["event"] for e in read_log(s.log.path, s.study.hash, secret(s.study, "r1")).events]
    assert events == [
        "session_start", "shown", "pause", "resume", "answer", "shown", "view", "answer",
        "session_end",
    ]  # fmt: skip


def test_no_way_back_unless_the_study_allows_corrections(tmp_path):
    strict = Study(make_study(tmp_path / "a"))
    with ReaderSession(strict, "r1", code(strict, "r1")) as s:
        s.show()
        s.answer(tumour="no")
        assert s.previous() is None
        with pytest.raises(StudyError, match="does not allow going back"):
            s.show(strict.order[0])
    lenient = Study(make_study(tmp_path / "b", allow_corrections=True))
    with ReaderSession(lenient, "r1", code(lenient, "r1")) as s:
        for _ in range(2):
            s.show()
            s.answer(tumour="no")
        s.show()
        back = s.previous()
        assert back == lenient.order[1]
        s.show(back)
        rec = s.answer(tumour="yes")
        assert rec["event"] == "answer_revised" and rec["token"] == back
        first = next(e for e in s.log.events if e["event"] == "answer" and e["token"] == back)
        assert rec["revises"] == first["seq"]
        assert s.answers[back] == {"tumour": "yes"} and s.current == lenient.order[2]
    # the original answer stays in the log: a correction is a new event, never an edit
    events = read_log(lenient.log_path("r1"), lenient.hash, secret(lenient, "r1")).events
    told = [e["answers"]["tumour"] for e in events if e.get("token") == back and "answers" in e]
    assert told == ["no", "yes"]


def test_one_session_per_reader_and_safe_reader_ids(study_dir):
    with ReaderSession(study_dir, "r1", code(study_dir, "r1")):
        with pytest.raises(StudyLogError, match="another reader session"):
            ReaderSession(study_dir, "r1", code(study_dir, "r1"))
        with ReaderSession(study_dir, "r2", code(study_dir, "r2")) as other:  # independent
            assert other.position == 0
    for bad in ("../r1", "", "a/b", ".hidden", "ok\n", "r1\n"):
        with pytest.raises(StudyError, match="reader id"):
            ReaderSession(study_dir, bad, code(study_dir, "r1"))


def test_a_changed_image_or_manifest_is_refused(study_dir):
    study = Study(study_dir)
    (study_dir / study._files[study.order[0]][0]).write_bytes(b"II*\0changed")
    with (
        ReaderSession(study, "r1", code(study, "r1")) as s,
        pytest.raises(StudyError, match="does not match"),
    ):
        s.show()
    manifest = study_dir / "manifest.json"
    manifest.write_text(manifest.read_text()[:-20])
    with pytest.raises(StudyError, match="manifest.json: is not a study manifest"):
        Study(study_dir)
    with pytest.raises(StudyError, match="holds no study"):
        Study(study_dir / "images")


def test_a_log_from_another_study_does_not_chain(tmp_path):
    a, b = make_study(tmp_path / "a"), make_study(tmp_path / "b")
    with ReaderSession(a, "r1", code(a, "r1")) as s:
        s.show()
        s.answer(tumour="no")
    (b / "logs").mkdir()
    (b / "logs" / "r1.jsonl").write_bytes((a / "logs" / "r1.jsonl").read_bytes())
    with pytest.raises(StudyLogError, match="line 1 does not chain"):
        ReaderSession(b, "r1", code(b, "r1"))
    assert (
        json.loads((a / "manifest.json").read_text())["study_id"]
        != json.loads((b / "manifest.json").read_text())["study_id"]
    )
