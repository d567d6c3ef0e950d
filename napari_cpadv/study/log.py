"""One reader's answers: an append-only, hash-chained JSON-lines event log.

Every event is one line, written, flushed and fsynced before ``append`` returns (so
before the reader's screen advances). Each line carries ``seq`` (0, 1, ...), ``prev`` (the
hash of the line before; for the first line the manifest's SHA-256, which ties the log to
its study) and ``hash``, the SHA-256 of the line's canonical JSON without ``hash``. A
changed byte anywhere breaks the chain at that line, and ``read_log`` names it.

One writer at a time: ``StudyLog`` holds ``LOG.lock`` (created exclusively, with the
writer's pid) while open; a lock left by a dead process is taken over, and says so.

A crash can cut the last line off. ``read_log`` reports that fragment and sets it apart
(``LogRead.torn``) without using it; ``StudyLog`` moves it to ``LOG.torn`` (kept, never
deleted) before appending, and logs a ``torn_line_set_aside`` event with its hash:
nothing is silently repaired. Corrections are new events (``answer_revised``), never
edits.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_cpadv.errors import CpadvError

EVENTS = (
    "session_start",
    "shown",
    "answer",
    "answer_revised",
    "pause",
    "resume",
    "session_end",
    "view",
    "torn_line_set_aside",
    "lock_taken_over",
)


class StudyLogError(CpadvError):
    """A log that fails its checks (an edited, deleted or reordered line)."""


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def line_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON, without its ``hash`` field."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


@dataclass
class LogRead:
    """The verified events of a log, the torn last line (bytes) if any, and the hash the
    next event must chain from."""

    events: list[dict[str, Any]]
    torn: bytes | None
    last_hash: str
    good_bytes: int = 0
    notes: list[str] = field(default_factory=list)


def read_log(path: str | os.PathLike[str], manifest_hash: str) -> LogRead:
    """Read and verify a log; ``StudyLogError`` names the first line that fails."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return LogRead([], None, manifest_hash)
    except OSError as exc:
        raise StudyLogError(p, f"cannot be read ({exc.strerror})") from exc
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    events: list[dict[str, Any]] = []
    prev = manifest_hash
    offset = 0
    for n, raw in enumerate(lines, start=1):
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise StudyLogError(p, f"line {n} is not a JSON event ({exc}): edited?") from exc
        if rec.get("seq") != n - 1:
            raise StudyLogError(
                p,
                f"line {n} has seq {rec.get('seq')!r}, expected {n - 1}: "
                "a line was deleted or moved",
            )
        if rec.get("prev") != prev:
            raise StudyLogError(
                p, f"line {n} does not chain from line {n - 1}: edited or reordered"
            )
        if rec.get("hash") != line_hash(rec):
            raise StudyLogError(p, f"line {n} does not match its hash: edited")
        if rec.get("event") not in EVENTS:
            raise StudyLogError(p, f"line {n}: unknown event {rec.get('event')!r}")
        prev = rec["hash"]
        events.append(rec)
        offset += len(raw) + 1
    read = LogRead(events, tail or None, prev, offset)
    if tail:
        read.notes.append(
            f"{p}: the last line is cut off ({len(tail)} bytes, a crash while writing): "
            "set aside, not used"
        )
    return read


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StudyLog:
    """The one writer of a reader's log (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], manifest_hash: str) -> None:
        self.path = Path(path)
        self.lock = self.path.with_name(self.path.name + ".lock")
        self._stale: int | None = None
        taken_over = self._acquire()
        try:
            read = read_log(self.path, manifest_hash)
            self.events = read.events
            self._prev = read.last_hash
            self.notes = list(read.notes)
            if read.torn is not None:
                self._set_aside(read.torn, read.good_bytes)
            if taken_over is not None:
                self.append("lock_taken_over", previous_pid=taken_over)
        except BaseException:
            self.lock.unlink(missing_ok=True)
            raise

    def _acquire(self) -> int | None:
        for _ in range(2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and _alive(pid):
                    raise StudyLogError(
                        self.path, f"is open in another reader session (pid {pid}); one at a time"
                    ) from None
                self.lock.unlink(missing_ok=True)  # left by a process that died
                self._stale = pid
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self._stale
        raise StudyLogError(self.path, "cannot take its lock")

    def _set_aside(self, torn: bytes, good: int) -> None:
        side = self.path.with_name(self.path.name + ".torn")
        with open(side, "ab") as f:
            f.write(torn + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with open(self.path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
        self.append(
            "torn_line_set_aside",
            bytes=len(torn),
            sha256=hashlib.sha256(torn).hexdigest(),
            kept_in=side.name,
        )

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one event durably; returns it (with ``seq``, ``time``, ``prev``, ``hash``)."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}")
        rec: dict[str, Any] = {
            **fields,
            "event": event,
            "seq": len(self.events),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "t_ns": time.time_ns(),
            "prev": self._prev,
        }
        rec["hash"] = line_hash(rec)
        line = _canonical(rec) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.events.append(rec)
        self._prev = rec["hash"]
        return rec

    def close(self) -> None:
        self.lock.unlink(missing_ok=True)

    def __enter__(self) -> StudyLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
