"""A reader's session of a study: what to show next, answers, pauses, the camera's track.

``Study`` is a study folder as a reader sees it: the manifest (order, questions, salted
image hashes, enrolled readers) and the images, never the key. ``ReaderSession`` is one
enrolled reader working through it with their code: opening it checks the code, takes the
reader's log (one writer at a time), replays it and continues at the first unanswered
case of the recorded order. Closing it gives a receipt of the log's head for the owner.
Every method that changes the state logs its event durably before it returns, so a
screen that advanced after ``answer`` returned can never lose that answer.

Times: each ``answer`` carries ``duration_ms``, the time since the case was last shown,
less any pause, from a monotonic clock. A correction (studies that allow them) is a new
``answer_revised`` event naming the answer it revises.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_cpadv.study.codes import receipt, secret_of, verifier
from napari_cpadv.study.log import StudyLog, StudyLogError
from napari_cpadv.study.model import StudyError, check_reader_id, manifest_hash, token_digest

ANSWERS = ("answer", "answer_revised")
VERSION = 2


class Study:
    """A study folder, read-only: ``manifest.json`` and ``images/``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        path = self.folder / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text())
            self.order: list[str] = list(self.manifest["order"])
            self.questions: dict[str, dict[str, Any]] = dict(self.manifest["questions"])
            self._files = {t["token"]: (t["file"], t["sha256"]) for t in self.manifest["tokens"]}
        except FileNotFoundError as exc:
            raise StudyError(self.folder, "holds no study (manifest.json is missing)") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StudyError(path, f"is not a study manifest ({exc})") from exc
        if self.manifest.get("format") != "napari-cpadv study":
            raise StudyError(path, "is not a napari-cpadv study manifest")
        if self.manifest.get("version") != VERSION or not isinstance(
            self.manifest.get("readers"), dict
        ):
            raise StudyError(
                path, f"study format version {self.manifest.get('version')!r}: this version "
                f"reads {VERSION} (enrolled readers with codes); build the study again",
            )  # fmt: skip
        self.enrolled: dict[str, str] = dict(self.manifest["readers"])
        if set(self.order) != set(self._files) or len(self.order) != len(self._files):
            raise StudyError(path, "its order and token list differ")
        self.hash = manifest_hash(path)
        self.allow_corrections = bool(self.manifest.get("allow_corrections", False))
        self.view_tracking_s = float(self.manifest.get("view_tracking_s", 0.0))

    @property
    def study_id(self) -> str:
        return str(self.manifest["study_id"])

    def log_path(self, reader: str) -> Path:
        return self.folder / "logs" / f"{check_reader_id(reader)}.jsonl"

    def readers(self) -> list[str]:
        """The ids of the logs in the study (enrolled or not)."""
        return sorted(p.stem for p in (self.folder / "logs").glob("*.jsonl"))

    def secret(self, reader: str, code: str) -> bytes:
        """The secret of an enrolled reader's code, checked against the manifest.

        Raises
        ------
        StudyError
            When the reader is not enrolled or the code is not theirs.
        """
        if reader not in self.enrolled:
            raise StudyError(None, f"{reader!r} is not enrolled in this study")
        secret = secret_of(code)
        if verifier(self.study_id, reader, secret) != self.enrolled[reader]:
            raise StudyError(None, f"that is not {reader}'s code for this study")
        return secret

    def image(self, token: str) -> Path:
        """The presented image of ``token``, checked against the manifest's (salted) hash."""
        rel, sha = self._files[token]
        path = self.folder / rel
        if path.is_symlink() or path.parent.is_symlink():
            raise StudyError(path, "is a symbolic link: a study's images are plain files in it")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StudyError(path, f"cannot be read ({exc.strerror})") from exc
        if token_digest(token, data) != sha:
            raise StudyError(path, "does not match the hash the manifest recorded: changed")
        return path

    def check_answer(self, values: dict[str, Any]) -> dict[str, Any]:
        """The answer to every question, validated; ``StudyError`` says what is missing."""
        out: dict[str, Any] = {}
        for name, q in self.questions.items():
            v = values.get(name)
            if v is None:
                raise StudyError(None, f"answer '{q['text']}' first")
            if q["kind"] == "choice" and v not in q["options"]:
                raise StudyError(None, f"{name}: {v!r} is not one of {q['options']}")
            if q["kind"] == "scale" and not (
                isinstance(v, int) and not isinstance(v, bool) and q["min"] <= v <= q["max"]
            ):
                raise StudyError(None, f"{name}: {v!r} is not a whole number {q['min']}-{q['max']}")
            if q["kind"] == "count" and not (
                isinstance(v, int) and not isinstance(v, bool) and v >= 0
            ):
                raise StudyError(None, f"{name}: {v!r} is not a count (a whole number >= 0)")
            out[name] = v
        extra = sorted(set(values) - set(self.questions))
        if extra:
            raise StudyError(None, f"the study does not ask {extra}")
        return out


class ReaderSession:
    """One reader working through a study (see the module docstring)."""

    def __init__(
        self,
        study: Study | str | os.PathLike[str],
        reader: str,
        code: str,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.study = study if isinstance(study, Study) else Study(study)
        self.reader = reader
        path = self.study.log_path(reader)
        if (self.study.folder / "key.json").exists():
            raise StudyError(
                self.study.folder / "key.json",
                "the study's key is in the folder readers use: move it away before reading",
            )
        secret = self.study.secret(reader, code)
        if path.parent.is_symlink():
            raise StudyLogError(path.parent, "is a symbolic link: refused")
        path.parent.mkdir(exist_ok=True)
        self._clock = clock
        self.log = StudyLog(path, self.study.hash, secret)
        try:
            self.answers: dict[str, dict[str, Any]] = {}
            self._answer_seq: dict[str, int] = {}
            for ev in self.log.events:
                if ev["event"] == "session_start" and ev.get("study_id") != self.study.study_id:
                    raise StudyLogError(path, f"line {ev['seq'] + 1} belongs to another study")
                if ev["event"] in ANSWERS:
                    self.answers[ev["token"]] = ev["answers"]
                    self._answer_seq[ev["token"]] = ev["seq"]
            self.showing: str | None = None
            self._shown_at = 0
            self._paused_at: int | None = None
            self._paused_ns = 0
            self.log.append(
                "session_start",
                reader=reader,
                study_id=self.study.study_id,
                answered=len(self.answers),
                resume_at=self.position,
            )
        except BaseException:
            self.log.close()
            raise

    @property
    def notes(self) -> list[str]:
        """What opening the log found (a torn last line set aside, a lock taken over)."""
        return self.log.notes

    @property
    def position(self) -> int:
        """Index in the recorded order of the first unanswered case (``N`` when done)."""
        return next(
            (i for i, t in enumerate(self.study.order) if t not in self.answers),
            len(self.study.order),
        )

    @property
    def total(self) -> int:
        return len(self.study.order)

    @property
    def done(self) -> bool:
        return self.position == self.total

    @property
    def current(self) -> str | None:
        """The case to show: the first unanswered one; None when all are answered."""
        return None if self.done else self.study.order[self.position]

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def show(self, token: str | None = None) -> Path:
        """Log that ``token`` (default: the current case) is on screen; returns its image.

        An answered case can be shown again only when the study allows corrections.
        """
        token = token or self.current
        if token is None:
            raise StudyError(None, "every case is answered")
        if token not in self.study._files:
            raise StudyError(None, f"{token!r} is not a case of this study")
        if token in self.answers and not self.study.allow_corrections:
            raise StudyError(None, "this study does not allow going back to an answered case")
        path = self.study.image(token)
        self.log.append("shown", token=token, index=self.study.order.index(token))
        self.showing = token
        self._shown_at = self._clock()
        self._paused_ns = 0
        self._paused_at = None
        return path

    def answer(self, **values: Any) -> dict[str, Any]:
        """Record the answer to the case on screen (all questions); durable on return."""
        token = self.showing
        if token is None:
            raise StudyError(None, "no case is on screen")
        if self.paused:
            raise StudyError(None, "the study is paused: resume it first")
        checked = self.study.check_answer(values)
        duration = (self._clock() - self._shown_at - self._paused_ns) // 1_000_000
        fields: dict[str, Any] = {
            "token": token,
            "index": self.study.order.index(token),
            "answers": checked,
            "duration_ms": int(duration),
        }
        if token in self.answers:
            fields["revises"] = self._answer_seq[token]
            rec = self.log.append("answer_revised", **fields)
        else:
            rec = self.log.append("answer", **fields)
        self.answers[token] = checked
        self._answer_seq[token] = rec["seq"]
        self.showing = None
        return rec

    def previous(self) -> str | None:
        """The answered case before the one on screen (corrections), or None."""
        if not self.study.allow_corrections:
            return None
        here = self.study.order.index(self.showing) if self.showing else self.position
        back = [t for t in self.study.order[:here] if t in self.answers]
        return back[-1] if back else None

    def pause(self) -> None:
        if self.paused:
            return
        self._paused_at = self._clock()
        self.log.append("pause", token=self.showing)

    def resume(self) -> None:
        if self._paused_at is None:
            return
        self._paused_ns += self._clock() - self._paused_at
        self._paused_at = None
        self.log.append("resume", token=self.showing)

    def view(self, center: tuple[float, ...], zoom: float) -> None:
        """One sample of the camera while a case is shown (image pixels ``(row, col)``)."""
        if self.showing is None or self.paused:
            return
        self.log.append(
            "view",
            token=self.showing,
            center=[round(float(v), 1) for v in center],
            zoom=round(float(zoom), 4),
        )

    @property
    def receipt(self) -> str:
        """The head of the reader's chain (``reader:line:hash-prefix``), for the owner."""
        last = self.log.events[-1]
        return receipt(self.reader, last["seq"], last["hash"])

    def close(self) -> str:
        """End the session (``session_end``), release the log; returns the receipt."""
        try:
            self.log.append(
                "session_end", answered=len(self.answers), complete=self.done, token=self.showing
            )
            return self.receipt
        finally:
            self.log.close()

    def __enter__(self) -> ReaderSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
