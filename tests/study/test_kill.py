"""A reader process killed with SIGKILL at random moments, again and again: every answer
whose screen advanced is in the log, the log's chain holds, and each restart continues at
the first unanswered case of the recorded order."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from napari_cpadv.study.log import read_log
from napari_cpadv.study.read import Study
from tests.study.conftest import code, make_study, secret

# The reader: the same calls the reader dock makes. "ADVANCED" is printed once answer()
# has returned, which is when the dock moves to the next case.
READER = textwrap.dedent(
    """
    import sys, time, random
    from napari_cpadv.study.read import ReaderSession
    s = ReaderSession(sys.argv[1], "r1", sys.argv[3])
    print("READY", s.position, flush=True)
    rng = random.Random(int(sys.argv[2]))
    while not s.done:
        token = s.show().stem
        time.sleep(rng.uniform(0, 0.002))
        s.answer(tumour="yes" if int(token, 16) % 2 else "no")
        sys.stdout.write(f"ADVANCED {token}\\n")
        sys.stdout.flush()
    print("DONE", flush=True)
    time.sleep(60)
    """
)
KILLS = 50


def _answered(study: Study) -> tuple[dict[str, str], int]:
    """The log's answers (verified chain; a torn last line is set apart) and where a
    reader should resume: the first token of the order without an answer."""
    read = read_log(study.log_path("r1"), study.hash, secret(study, "r1"))
    answers = {e["token"]: e["answers"]["tumour"] for e in read.events if e["event"] == "answer"}
    resume = next((i for i, t in enumerate(study.order) if t not in answers), len(study.order))
    return answers, resume


@pytest.mark.slow
def test_reader_killed_at_random_moments_loses_no_advanced_answer(tmp_path):
    study = Study(make_study(tmp_path, n=50))
    rng = random.Random(20261121)
    advanced: list[str] = []
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    extra = 0
    for kill in range(KILLS):
        logged, resume = _answered(study)
        proc = subprocess.Popen(
            [sys.executable, "-c", READER, str(study.folder), str(kill), code(study, "r1")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[:1] == ["READY"], proc.stderr.read() if proc.stderr else ""
        assert int(ready[1]) == resume  # continues at the first unanswered case
        for _ in range(rng.randint(0, 3)):
            line = proc.stdout.readline().split()
            assert line[0] == "ADVANCED", "the study ran out of cases before the last kill"
            advanced.append(line[1])
        time.sleep(rng.uniform(0, 0.003))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()  # not communicate(): it would skip what readline buffered
        proc.wait()
        # a line the kill cut short was never completely said: only whole lines count
        whole = rest.split("\n")[:-1]
        advanced += [ln.split()[1] for ln in whole if ln.startswith("ADVANCED ")]
        logged, _ = _answered(study)
        missing = [t for t in advanced if t not in logged]
        assert not missing, f"kill {kill}: answers whose screen advanced are not in the log"
        # at most the answer in flight (logged, killed before its screen advanced) is new
        now = len(set(logged) - set(advanced))
        assert now - extra <= 1
        extra = now
        for t in advanced:  # and each is the answer the reader gave
            assert logged[t] == ("yes" if int(t, 16) % 2 else "no")
    events = read_log(study.log_path("r1"), study.hash, secret(study, "r1")).events
    torn = sum(e["event"] == "torn_line_set_aside" for e in events)
    takeovers = sum(e["event"] == "lock_taken_over" for e in events)
    assert takeovers >= KILLS - 1  # every restart found the dead reader's lock and said so
    assert len(advanced) >= KILLS // 2 and len(set(advanced)) == len(advanced)
    print(f"{KILLS} kills, {len(advanced)} answers advanced, {torn} torn lines set aside")
