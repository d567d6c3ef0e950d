"""The vocabulary every part of a study shares: the conditions, seed 001's tumour rule, the
questions and presets, reader ids, where the key lives, the readers' codes, and the digests
that bind presented images and logs to a manifest."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from napari_cpadv.errors import CpadvError

CONDITIONS = ("original", "adversarial")


TUMOUR_CELLS = 5
"""Seed 001's rule: an image shows tumour when it holds at least 5 tumour cells."""


# seed 001's design: tumour present by the rule of at least 5 tumour cells, each image twice
QUESTIONS: dict[str, dict[str, Any]] = {
    "tumour": {
        "kind": "choice",
        "text": "Is tumour present (at least 5 tumour cells)?",
        "options": ["no", "yes"],
        "keys": ["n", "y"],
    },
    "confidence": {"kind": "scale", "text": "Confidence", "min": 1, "max": 5},
    "count": {"kind": "count", "text": "How many tumour cells?"},
    "altered": {
        "kind": "choice",
        "text": "Was this image altered?",
        "options": ["no", "yes"],
        "keys": ["u", "a"],  # unaltered, altered
    },
}


PRESETS: dict[str, dict[str, Any]] = {
    "seed001": {"questions": ["tumour"], "replicates": 2, "min_gap": 2}
}


class StudyError(CpadvError):
    """A study that cannot be built or read as asked."""


READER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A reader id: also a file name (``logs/<id>.jsonl``), so letters, digits, ``. _ -``."""


MAX_PRESENTATIONS = 5000
"""A bound on one study (the order is placed one presentation at a time, quadratic in it)."""


def check_reader_id(reader: str) -> str:
    """``reader`` if it is a valid id (the whole text: a trailing newline is refused)."""
    if not isinstance(reader, str) or not READER_ID.fullmatch(reader):
        raise StudyError(
            None,
            f"reader id {reader!r}: use letters, digits, '.', '_' or '-' (up to 64), "
            "starting with a letter or digit",
        )
    return reader


def default_key_path(root: Path) -> Path:
    """Where a study's key goes unless told: beside the study folder, never inside it."""
    return root.parent / f"{root.name}.key.json"


def reader_codes(key: str | os.PathLike[str]) -> dict[str, str]:
    """Each enrolled reader's code, from the study's key (the owner's only)."""
    try:
        codes = json.loads(Path(key).read_text())["readers"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StudyError(key, f"is not a study key with reader codes ({exc})") from exc
    return {str(k): str(v) for k, v in codes.items()}


def token_digest(token: str, data: bytes) -> str:
    """SHA-256 of a presented file, salted with its token: two presentations of the same
    image have the same bytes but unrelated digests, so the manifest does not say which
    tokens show the same image."""
    return hashlib.sha256(token.encode() + b"\0" + data).hexdigest()


def manifest_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a manifest file: where every reader's log chains from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
