"""Unblind and analyse a study (the owner's step: it needs the key).

``analyze`` first verifies: the key against the SHA-256 the manifest recorded before any
reading began, every token of the order against the key, and every reader's log chain
(an edited or deleted line stops the analysis and is named; a torn last line is noted and
left out). It then joins each reader's final answers (the last ``answer`` or
``answer_revised`` of each case) with the key and computes, per reader and pooled:

* per condition: TP, FN, TN, FP, sensitivity and specificity with Wilson 95 % intervals
  (against the key's truth: ``true``/``false``, ``{"tumour": ...}``, or a tumour-cell
  count with seed 001's rule of at least 5), and the rate of "tumour" answers;
* the paired table of the answer on the original against the answer on its adversarial
  copy (same case, same replicate), the exact McNemar test and Cohen's κ, and seed 001's
  comparison of true positives;
* intra-reader agreement between replicates of the same image (κ, percent agreement):
  the noise floor any change between conditions must clear;
* Fleiss' κ over readers (three or more) on the presentations all of them answered;
* time on case by condition (median, IQR) and the Wilcoxon signed-rank test of paired
  times (original against adversarial, same case and replicate);
* the "was this image altered?" detection rate against chance (exact binomial, p = 0.5).

Writes ``answers.csv`` (long: one row per reader and presentation), ``study.imrmc`` (the
iMRMC input file of the first replicate: truth rows, then one score per reader, case and
modality), ``summary.json``, ``report.html`` and its plots; each file atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_cpadv.study.log import LogRead, StudyLogError, read_log
from napari_cpadv.study.model import TUMOUR_CELLS, StudyError
from napari_cpadv.study.read import ANSWERS, Study
from napari_cpadv.study.report import write_analysis
from napari_cpadv.study.stats import fleiss, reader_stats

POOLED = "all readers"


def truth_label(value: Any) -> int | None:
    """The key's ground truth as 1 (tumour), 0 (no tumour) or None (unknown)."""
    if isinstance(value, dict):
        if "tumour_cells" in value:  # the count decides, by seed 001's rule
            return truth_label(int(value["tumour_cells"]))
        if "tumour" in value:
            return truth_label(bool(value["tumour"]))
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and not math.isnan(value):
        # seed 001's rule: tumour is at least 5 tumour cells, normal is none; 1-4 is
        # neither and is left out, as it was in training
        return 1 if value >= TUMOUR_CELLS else 0 if value == 0 else None
    if isinstance(value, str) and value.lower() in ("yes", "tumour", "tumor", "no", "normal"):
        return int(value.lower() in ("yes", "tumour", "tumor"))
    return None


def _yes(value: Any) -> int | None:
    return None if value is None else int(value == "yes")


@dataclass
class Key:
    """A study's key, checked against the manifest: its tokens and its readers' secrets."""

    tokens: dict[str, dict[str, Any]]
    secrets: dict[str, bytes]


def read_key(study: Study, key: str | os.PathLike[str]) -> Key:
    """The key's tokens and reader secrets, after checking it is the key the study recorded
    and that its codes are the enrolled readers'."""
    path = Path(key)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StudyError(path, f"cannot be read ({exc.strerror})") from exc
    if hashlib.sha256(data).hexdigest() != study.manifest.get("key_sha256"):
        raise StudyError(
            path, "is not this study's key: its SHA-256 differs from the one the manifest recorded"
        )
    try:
        doc = json.loads(data)
        tokens: dict[str, dict[str, Any]] = doc["tokens"]
        codes: dict[str, str] = doc["readers"]
    except (ValueError, KeyError, TypeError) as exc:
        raise StudyError(path, f"is not a study key ({exc})") from exc
    missing = [t for t in study.order if t not in tokens]
    if missing or len(tokens) != len(study.order):
        raise StudyError(path, "its tokens differ from the manifest's order")
    if set(codes) != set(study.enrolled):
        raise StudyError(path, "its readers differ from the manifest's enrolled readers")
    return Key(tokens, {r: study.secret(r, c) for r, c in codes.items()})


@dataclass
class Integrity:
    """What the verification of the logs found, beyond the logs that verify."""

    damaged: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    receipts: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [f"{r}'s log is damaged: {why}" for r, why in self.damaged.items()]
        out += [f"{r} is enrolled but has no log" for r in self.missing]
        out += [f"logs/{r}.jsonl belongs to no enrolled reader" for r in self.extra]
        out += [f"logs/{f}.jsonl is {r}'s log under another name" for f, r in self.renamed.items()]
        return out + self.receipts


def _verified(study: Study, reader: str, secret: bytes) -> LogRead:
    """A log read under its reader's secret, with the study's own rules on its events."""
    path = study.log_path(reader)
    read = read_log(path, study.hash, secret)
    if not study.allow_corrections:
        for e in read.events:
            if e["event"] == "answer_revised":
                raise StudyLogError(
                    path, f"line {e['seq'] + 1} revises an answer: this study allows no corrections"
                )
    return read


def verify_logs(
    study: Study, secrets: dict[str, bytes], receipts: list[tuple[str, int, str]]
) -> tuple[dict[str, LogRead], Integrity]:
    """Every log checked: enrolled readers' logs under their own codes; missing, extra
    and renamed logs found; each receipt matched against the log's line it names."""
    integrity = Integrity()
    reads: dict[str, LogRead] = {}
    present = set(study.readers())
    for reader, secret in secrets.items():
        if reader not in present:
            integrity.missing.append(reader)
            continue
        try:
            reads[reader] = _verified(study, reader, secret)
        except StudyLogError as exc:
            integrity.damaged[reader] = str(exc)
    for name in sorted(present - set(secrets)):
        owner = None
        for reader, secret in secrets.items():
            try:
                read_log(study.log_path(name), study.hash, secret)
            except StudyLogError:
                continue
            owner = reader
        if owner is None:
            integrity.extra.append(name)
        else:
            integrity.renamed[name] = owner
    for reader, seq, prefix in receipts:
        read = reads.get(reader)
        if read is None:
            integrity.receipts.append(f"receipt {reader}:{seq}: no verified log of {reader}")
        elif seq >= len(read.events):
            integrity.receipts.append(
                f"receipt {reader}:{seq}: {reader}'s log ends at line {len(read.events)}: "
                "events up to the receipt were removed"
            )
        elif not read.events[seq]["hash"].startswith(prefix):
            integrity.receipts.append(
                f"receipt {reader}:{seq}: line {seq + 1} of {reader}'s log is not the one "
                "receipted: the log was rewritten"
            )
    return reads, integrity


def answer_rows(
    study: Study, key: dict[str, dict[str, Any]], reads: dict[str, LogRead]
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per reader and answered presentation (the long table), and notes."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for reader, read in sorted(reads.items()):
        notes += read.notes
        notes += [
            f"{reader}: {e['event']} at line {e['seq'] + 1}"
            for e in read.events
            if e["event"] in ("torn_line_set_aside", "lock_taken_over")
        ]
        final: dict[str, dict[str, Any]] = {}
        spent: dict[str, int] = defaultdict(int)
        for e in read.events:
            if e["event"] in ANSWERS:
                final[e["token"]] = e["answers"]
                spent[e["token"]] += int(e.get("duration_ms", 0))
        for token in study.order:
            if token not in final:
                continue
            k, a = key[token], final[token]
            rows.append(
                {
                    "reader_id": reader,
                    "token": token,
                    "source_id": k["case"],
                    "condition": k["condition"],
                    "replicate": k["replicate"],
                    "label": _yes(a.get("tumour")),
                    "confidence": a.get("confidence"),
                    "count": a.get("count"),
                    "duration_ms": spent[token],
                    "truth": truth_label(k.get("truth")),
                    "altered": _yes(a.get("altered")),
                }
            )
        unanswered = len(study.order) - len(final)
        if unanswered:
            notes.append(f"{reader}: {unanswered} of {len(study.order)} cases not answered yet")
    for token in study.order:
        try:
            study.image(token)
        except StudyError as exc:
            notes.append(str(exc))
    return rows, notes


def read_receipts(path: str | os.PathLike[str]) -> list[tuple[str, int, str]]:
    """The receipts the owner recorded, one a line (blank lines and ``#`` comments skipped)."""
    from napari_cpadv.errors import CpadvError
    from napari_cpadv.study.codes import parse_receipt

    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise StudyError(p, f"cannot be read ({exc.strerror})") from exc
    out = []
    for n, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                out.append(parse_receipt(line))
            except CpadvError as exc:
                raise StudyError(p, f"line {n}: {exc}") from None
    return out


def analyze(
    study_dir: str | os.PathLike[str],
    key: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    receipts: str | os.PathLike[str] | None = None,
    allow_damaged: bool = False,
) -> dict[str, Any]:
    """Verify, unblind, compute and write the exports (see the module docstring).

    Raises
    ------
    StudyError
        When the key is not the study's, or (unless ``allow_damaged``) when any log is
        damaged, missing, extra or renamed or a receipt does not hold; nothing is written.
        With ``allow_damaged`` the verified logs are analysed and every problem is named in
        the summary.
    """
    study = Study(study_dir)
    k = read_key(study, key)
    held = read_receipts(receipts) if receipts is not None else []
    reads, integrity = verify_logs(study, k.secrets, held)
    problems = integrity.problems()
    if problems and not allow_damaged:
        raise StudyError(study.folder, "; ".join(problems) + " (--allow-damaged analyses the rest)")
    rows, notes = answer_rows(study, k.tokens, reads)
    notes = problems + notes
    if not rows:
        raise StudyError(study.folder, "no reader has answered any case yet")
    summary = _summary(study, integrity, len(held), rows, notes)
    write_analysis(Path(out), summary, rows)
    return summary


def _summary(
    study: Study, integrity: Integrity, receipts: int, rows: list[dict[str, Any]], notes: list[str]
) -> dict[str, Any]:
    readers = sorted({r["reader_id"] for r in rows})
    summary: dict[str, Any] = {
        "study_id": study.study_id,
        "manifest_sha256": study.hash,
        "key_sha256": study.manifest["key_sha256"],
        "verified": (
            "the key matches the manifest's hash; every analysed log's HMAC chain is intact "
            "under its reader's code" + (f"; {receipts} receipt(s) checked" if receipts else "")
        ),
        "integrity": {
            "enrolled": sorted(study.enrolled),
            "damaged": integrity.damaged,
            "missing": integrity.missing,
            "extra": integrity.extra,
            "renamed": integrity.renamed,
            "receipts": integrity.receipts,
        },
        "questions": list(study.questions),
        "presentations": len(study.order),
        "readers": {r: reader_stats([x for x in rows if x["reader_id"] == r]) for r in readers},
        "notes": notes,
    }
    if len(readers) > 1:
        summary["readers"][POOLED] = reader_stats(rows)
    summary["fleiss"] = fleiss(rows)
    return summary
