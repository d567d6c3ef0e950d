"""One reader's answers: an append-only, HMAC-chained JSON-lines event log.

Every event is one line, written, flushed and fsynced before ``append`` returns (so
before the reader's screen advances). Each line carries ``seq`` (0, 1, ...), ``prev`` (the
MAC of the line before; for the first line the manifest's SHA-256, which ties the log to
its study) and ``hash``, the HMAC-SHA256 of the line's canonical JSON without ``hash``
under the reader's secret (their code, :mod:`napari_cpadv.study.codes`). A changed byte
anywhere breaks the chain at that line, and ``read_log`` names it; without the reader's
code nobody can write a line that verifies, so a log cannot be forged, extended or
rewritten by whoever holds the study folder.

One writer at a time: ``StudyLog`` holds an exclusive ``flock`` on ``LOG.lock`` for the
whole session. The kernel releases it when the process ends, however it ends, so a lock
left by a dead session is free at once and two sessions can never both take it (the file
records the holder's pid and host for the message; a takeover of a dead session's lock is
logged).

A crash can cut the last line off. ``read_log`` reports that fragment and sets it apart
(``LogRead.torn``) without using it; ``StudyLog`` moves it to ``LOG.torn`` (kept, never
deleted) before appending, and logs a ``torn_line_set_aside`` event with its hash:
nothing is silently repaired. Corrections are new events (``answer_revised``), never
edits. Symbolic links are refused: a log is a plain file in the study's own folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_cpadv.errors import CpadvError
from napari_cpadv.files import fsync_dir
from napari_cpadv.study.codes import chain_mac

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


def line_hash(record: dict[str, Any], secret: bytes) -> str:
    """HMAC-SHA256 of a record's canonical JSON, without its ``hash`` field, under the
    reader's ``secret``."""
    return chain_mac(secret, _canonical({k: v for k, v in record.items() if k != "hash"}))


def refuse_links(path: Path) -> None:
    """Refuse a log (or its folder) that is a symbolic link: appending would write into
    whatever file it points at."""
    for p in (path.parent, path):
        try:
            mode = os.lstat(p).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise StudyLogError(p, "is a symbolic link: a study's logs are plain files in it")


@dataclass
class LogRead:
    """The verified events of a log, the torn last line (bytes) if any, and the hash the
    next event must chain from."""

    events: list[dict[str, Any]]
    torn: bytes | None
    last_hash: str
    good_bytes: int = 0
    notes: list[str] = field(default_factory=list)


def read_log(path: str | os.PathLike[str], manifest_hash: str, secret: bytes) -> LogRead:
    """Read and verify a log under the reader's ``secret``; ``StudyLogError`` names the
    first line that fails."""
    p = Path(path)
    refuse_links(p)
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
        if rec.get("hash") != line_hash(rec, secret):
            raise StudyLogError(
                p, f"line {n} does not match its hash: edited, or not written with this code"
            )
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


class StudyLog:
    """The one writer of a reader's log (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], manifest_hash: str, secret: bytes) -> None:
        self.path = Path(path)
        self.lock = self.path.with_name(self.path.name + ".lock")
        self._secret = secret
        refuse_links(self.path)
        refuse_links(self.lock)
        self._lock_fd = -1
        taken_over = self._acquire()
        try:
            read = read_log(self.path, manifest_hash, secret)
            self.events = read.events
            self._prev = read.last_hash
            self.notes = list(read.notes)
            if read.torn is not None:
                self._set_aside(read.torn, read.good_bytes)
            if taken_over is not None:
                self.append("lock_taken_over", previous=taken_over)
        except BaseException:
            self.close()
            raise

    def _acquire(self) -> str | None:
        """Hold the lock file's ``flock`` for the session; what a dead holder left in it
        (its pid and host) when there was one, else None."""
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StudyLogError(
                self.path, f"is open in another reader session ({holder}); one at a time"
            ) from None
        left = os.pread(fd, 200, 0).decode(errors="replace").strip()
        me = f"pid {os.getpid()} on {socket.gethostname()}".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, me, 0)
        os.fsync(fd)
        self._lock_fd = fd
        return left or None

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
        rec["hash"] = line_hash(rec, self._secret)
        line = _canonical(rec) + b"\n"
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:  # the file's directory entry too: a crash must not lose a new log
            fsync_dir(self.path.parent)
        self.events.append(rec)
        self._prev = rec["hash"]
        return rec

    def close(self) -> None:
        """Release the lock (the lock file stays: removing it could race a new session)."""
        if self._lock_fd >= 0:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> StudyLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
