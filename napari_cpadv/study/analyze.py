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

import csv
import hashlib
import html
import io
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.metrics import study as st
from napari_cpadv.study.build import CONDITIONS, TUMOUR_CELLS, StudyError
from napari_cpadv.study.log import LogRead, StudyLogError, read_log
from napari_cpadv.study.read import ANSWERS, Study

CSV_COLUMNS = (
    "reader_id",
    "token",
    "source_id",
    "condition",
    "replicate",
    "label",
    "confidence",
    "count",
    "duration_ms",
    "truth",
    "altered",
)
POOLED = "all readers"
TRUTH_HEAD = (
    "reader",
    "condition",
    "n",
    "TP",
    "FN",
    "TN",
    "FP",
    "sensitivity",
    "95 % CI",
    "specificity",
    "95 % CI",
    "tumour answers",
)
PAIRED_HEAD = (
    "reader",
    "pairs",
    "both tumour",
    "orig. only",
    "adv. only",
    "neither",
    "TP original",
    "TP adversarial",
    "McNemar p (exact)",
    "Cohen's κ",
)


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


def _reader_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"presentations": len(rows)}
    labelled = [r for r in rows if r["label"] is not None]
    by_cond: dict[str, Any] = {}
    for cond in CONDITIONS:
        rs = [r for r in labelled if r["condition"] == cond]
        known = [r for r in rs if r["truth"] is not None]
        yes = sum(r["label"] for r in rs)
        entry: dict[str, Any] = {
            "n": len(rs),
            "tumour_answers": yes,
            "tumour_rate": yes / len(rs) if rs else math.nan,
            "tumour_rate_ci95": st.wilson(yes, len(rs)),
        }
        if known:
            entry.update(st.confusion([r["label"] for r in known], [r["truth"] for r in known]))
        by_cond[cond] = entry
    out["by_condition"] = by_cond
    # The paired table: the same reader's answers to the same case, original against
    # adversarial, first replicate only (replicates of one image are not independent pairs;
    # their agreement is reported apart). Pooled over readers, it is the sum of the
    # per-reader tables, each reader's pairs kept apart.
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in sorted(labelled, key=lambda r: r["replicate"]):
        first.setdefault((r["reader_id"], r["source_id"], r["condition"]), r)
    pairs = [
        (row, first[(reader, case, "adversarial")])
        for (reader, case, cond), row in first.items()
        if cond == "original" and (reader, case, "adversarial") in first
    ]
    if pairs:
        o = np.array([p[0]["label"] for p in pairs])
        a = np.array([p[1]["label"] for p in pairs])
        b, c = int(((o == 1) & (a == 0)).sum()), int(((o == 0) & (a == 1)).sum())
        truth = [p[0]["truth"] for p in pairs]
        positives = [i for i, t in enumerate(truth) if t == 1]
        out["paired"] = {
            "n": len(pairs),
            "readers": len({p[0]["reader_id"] for p in pairs}),
            "replicate": "first replicate of each image, per reader",
            "both_tumour": int(((o == 1) & (a == 1)).sum()),
            "original_tumour_adversarial_not": b,
            "original_not_adversarial_tumour": c,
            "both_not": int(((o == 0) & (a == 0)).sum()),
            "mcnemar_exact_p": st.mcnemar_exact(b, c),
            "mcnemar_test": "exact McNemar on the per-reader tables summed",
            "cohen_kappa": st.cohen_kappa(o.tolist(), a.tolist()),
            "agreement": float((o == a).mean()),
            "tp_original": int(o[positives].sum()) if positives else None,
            "tp_adversarial": int(a[positives].sum()) if positives else None,
            "positives": len(positives),
        }
        d_o = [p[0]["duration_ms"] for p in pairs]
        d_a = [p[1]["duration_ms"] for p in pairs]
        out["time_paired_wilcoxon"] = st.wilcoxon(d_o, d_a)
    # replicates of the same image by the same reader: the noise floor
    reps: dict[tuple[str, str, str], dict[int, int]] = defaultdict(dict)
    for r in labelled:
        reps[(r["reader_id"], r["source_id"], r["condition"])][r["replicate"]] = r["label"]
    firsts = sorted({k for v in reps.values() for k in v})
    if len(firsts) >= 2:
        agree: dict[str, Any] = {}
        for cond in (*CONDITIONS, "both"):
            got = [
                (v[firsts[0]], v[firsts[1]])
                for (_, case, c), v in reps.items()
                if (cond == "both" or c == cond) and firsts[0] in v and firsts[1] in v
            ]
            if got:
                x, y = zip(*got, strict=True)
                agree[cond] = {
                    "n": len(got),
                    "agreement": float(np.mean(np.array(x) == np.array(y))),
                    "cohen_kappa": st.cohen_kappa(x, y),
                }
        out["replicate_agreement"] = agree
    out["time_ms"] = {
        cond: st.median_iqr([r["duration_ms"] for r in rows if r["condition"] == cond])
        for cond in CONDITIONS
    }
    alt = [r for r in rows if r["altered"] is not None]
    if alt:
        right = sum(int(r["altered"] == (r["condition"] == "adversarial")) for r in alt)
        out["altered"] = {
            "n": len(alt),
            "correct": right,
            "rate": right / len(alt),
            "rate_ci95": st.wilson(right, len(alt)),
            "binomial_p_vs_chance": st.binomial_test(right, len(alt), 0.5),
            "said_altered": {
                cond: sum(r["altered"] for r in alt if r["condition"] == cond)
                for cond in CONDITIONS
            },
        }
    return out


def _fleiss(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    readers = sorted({r["reader_id"] for r in rows})
    if len(readers) < 3:
        return None
    by_token: dict[str, dict[str, int]] = defaultdict(dict)
    cond: dict[str, str] = {}
    for r in rows:
        if r["label"] is not None:
            by_token[r["token"]][r["reader_id"]] = r["label"]
            cond[r["token"]] = r["condition"]
    out: dict[str, Any] = {"readers": len(readers)}
    for c in (*CONDITIONS, "both"):
        full = [v for t, v in by_token.items() if len(v) == len(readers) and c in ("both", cond[t])]
        if full:
            table = np.array([[sum(1 for x in v.values() if x == k) for k in (0, 1)] for v in full])
            out[c] = {"items": len(full), "fleiss_kappa": st.fleiss_kappa(table)}
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
    from napari_cpadv.files import write_atomic, write_json

    study = Study(study_dir)
    k = read_key(study, key)
    held = read_receipts(receipts) if receipts is not None else []
    reads, integrity = verify_logs(study, k.secrets, held)
    problems = integrity.problems()
    if problems and not allow_damaged:
        raise StudyError(
            study.folder, "; ".join(problems) + " (--allow-damaged analyses the rest)"
        )
    rows, notes = answer_rows(study, k.tokens, reads)
    notes = problems + notes
    if not rows:
        raise StudyError(study.folder, "no reader has answered any case yet")
    readers = sorted({r["reader_id"] for r in rows})
    summary: dict[str, Any] = {
        "study_id": study.study_id,
        "manifest_sha256": study.hash,
        "key_sha256": study.manifest["key_sha256"],
        "verified": (
            "the key matches the manifest's hash; every analysed log's HMAC chain is intact "
            "under its reader's code"
            + (f"; {len(held)} receipt(s) checked" if held else "")
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
        "readers": {r: _reader_stats([x for x in rows if x["reader_id"] == r]) for r in readers},
        "notes": notes,
    }
    if len(readers) > 1:
        summary["readers"][POOLED] = _reader_stats(rows)
    summary["fleiss"] = _fleiss(rows)
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    write_atomic(dest / "answers.csv", answers_csv(rows).encode())
    imrmc = imrmc_text(rows, study.study_id)
    if imrmc is not None:
        write_atomic(dest / "study.imrmc", imrmc.encode())
    else:
        notes.append("no iMRMC file: it needs the truth of every case and tumour answers")
    plots = _plots(summary, rows, dest)
    write_atomic(dest / "report.html", report_html(summary, plots).encode())
    write_json(dest / "summary.json", _plain(summary), allow_nan=False)
    return summary


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a string that would start a formula (``=1+2``,
    ``@cmd``) gets a leading apostrophe (OWASP's CSV-injection rule); numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def answers_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: csv_cell(r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def _score(r: dict[str, Any]) -> int:
    """An ordinal score for iMRMC: with a confidence c of 1-5, "no" scores 6 - c (1-5) and
    "tumour" 5 + c (6-10); without, the answer itself (0 or 1)."""
    c = r["confidence"]
    if c is None:
        return int(r["label"])
    return 5 + int(c) if r["label"] else 6 - int(c)


def imrmc_text(rows: list[dict[str, Any]], study_id: str) -> str | None:
    """The iMRMC input file of the first replicate (modalities: original, adversarial)."""
    first = [r for r in rows if r["replicate"] == min(x["replicate"] for x in rows)]
    if not first or any(r["truth"] is None or r["label"] is None for r in first):
        return None
    truth = {r["source_id"]: r["truth"] for r in first}
    readers = sorted({r["reader_id"] for r in first})
    lines = [
        f"napari-cpadv study {study_id}: tumour answers on original and adversarial images",
        "first replicate only; score = the answer (0/1), or 1-10 with confidence",
        "",
        f"NR: {len(readers)}",
        f"N0: {sum(1 for t in truth.values() if t == 0)}",
        f"N1: {sum(1 for t in truth.values() if t == 1)}",
        f"NM: {len(CONDITIONS)}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{case},0,{t}" for case, t in sorted(truth.items())]
    lines += [
        f"{r['reader_id']},{r['source_id']},{r['condition']},{_score(r)}"
        for r in sorted(first, key=lambda r: (r["reader_id"], r["source_id"], r["condition"]))
    ]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    """JSON without NaN (null instead), tuples as lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def _plots(summary: dict[str, Any], rows: list[dict[str, Any]], dest: Path) -> list[str]:
    from matplotlib.figure import Figure

    from napari_cpadv.files import write_figure as save

    made: list[str] = []
    readers = list(summary["readers"])
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    width = 0.38
    for k, cond in enumerate(CONDITIONS):
        ys, lo, hi = [], [], []
        for r in readers:
            e = summary["readers"][r]["by_condition"][cond]
            y = e.get("sensitivity", e["tumour_rate"])
            ci = e.get("sensitivity_ci95", e["tumour_rate_ci95"])
            ys.append(y)
            lo.append(max(0.0, y - ci[0]) if not math.isnan(y) else 0)
            hi.append(max(0.0, ci[1] - y) if not math.isnan(y) else 0)
        xs = np.arange(len(readers)) + (k - 0.5) * width
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=cond, color=f"C{k}")
    known = any("sensitivity" in summary["readers"][r]["by_condition"]["original"] for r in readers)
    ax.set_ylabel("sensitivity (Wilson 95 %)" if known else "tumour answers (Wilson 95 %)")
    ax.set_xticks(np.arange(len(readers)), readers)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right")
    fig.tight_layout()
    (dest / "plots").mkdir(exist_ok=True)
    save(fig, dest / "plots" / "sensitivity.png")
    made.append("plots/sensitivity.png")
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    data = [[r["duration_ms"] / 1000 for r in rows if r["condition"] == c] for c in CONDITIONS]
    ax.boxplot(data, tick_labels=list(CONDITIONS))
    ax.set_ylabel("time on case (s)")
    fig.tight_layout()
    save(fig, dest / "plots" / "time.png")
    made.append("plots/time.png")
    return made


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return f"{_fmt(v[0])}–{_fmt(v[1])}"
    return html.escape(str(v))


def _table(head: tuple[str, ...] | list[str], body: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{th}</tr>{trs}</table>"


def report_html(summary: dict[str, Any], plots: list[str]) -> str:
    """A short, self-contained HTML report of the summary's tables, with the plots."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Study {html.escape(summary['study_id'])}</title>",
        "<style>body{font-family:sans-serif;max-width:60em}table{border-collapse:collapse;"
        "margin:.5em 0}td,th{border:1px solid #999;padding:2px 8px;text-align:right}</style>",
        "</head><body>",
        f"<h1>Reader study {html.escape(summary['study_id'])}</h1>",
        f"<p>{html.escape(summary['verified'])}. {summary['presentations']} presentations.</p>",
        "<h2>Answers against truth, by condition</h2>",
    ]
    body = []
    for reader, s in summary["readers"].items():
        for cond, e in s["by_condition"].items():
            body.append(
                [reader, cond, e["n"], e.get("tp"), e.get("fn"), e.get("tn"), e.get("fp"),
                 e.get("sensitivity"), e.get("sensitivity_ci95"), e.get("specificity"),
                 e.get("specificity_ci95"), e["tumour_rate"]]
            )  # fmt: skip
    parts.append(
        _table(
            TRUTH_HEAD,
            body,
        )
    )
    parts.append("<h2>Original against adversarial (same case and replicate)</h2>")
    body = [
        [r, p["n"], p["both_tumour"], p["original_tumour_adversarial_not"],
         p["original_not_adversarial_tumour"], p["both_not"], p["tp_original"],
         p["tp_adversarial"], p["mcnemar_exact_p"], p["cohen_kappa"]]
        for r, s in summary["readers"].items() if (p := s.get("paired"))
    ]  # fmt: skip
    parts.append(
        _table(
            PAIRED_HEAD,
            body,
        )
    )
    parts.append("<h2>Replicates of the same image (the noise floor)</h2>")
    body = [
        [r, cond, a["n"], a["agreement"], a["cohen_kappa"]]
        for r, s in summary["readers"].items()
        for cond, a in (s.get("replicate_agreement") or {}).items()
    ]
    parts.append(_table(["reader", "condition", "n", "agreement", "Cohen's κ"], body))
    if summary.get("fleiss"):
        f = summary["fleiss"]
        body = [[c, f[c]["items"], f[c]["fleiss_kappa"]] for c in (*CONDITIONS, "both") if c in f]
        parts.append(f"<h2>Agreement between {f['readers']} readers</h2>")
        parts.append(_table(["condition", "items", "Fleiss' κ"], body))
    parts.append("<h2>Time on case (ms)</h2>")
    body = [
        [r, cond, t["n"], t["median"], t["q1"], t["q3"],
         (s.get("time_paired_wilcoxon") or {}).get("p_value")]
        for r, s in summary["readers"].items() for cond, t in s["time_ms"].items()
    ]  # fmt: skip
    parts.append(
        _table(["reader", "condition", "n", "median", "Q1", "Q3", "Wilcoxon p (paired)"], body)
    )
    alt = [(r, s["altered"]) for r, s in summary["readers"].items() if s.get("altered")]
    if alt:
        parts.append("<h2>“Was this image altered?” against chance</h2>")
        body = [
            [r, a["n"], a["correct"], a["rate"], a["rate_ci95"], a["binomial_p_vs_chance"]]
            for r, a in alt
        ]
        parts.append(_table(["reader", "n", "right", "rate", "95 % CI", "binomial p"], body))
    parts += [f"<p><img src='{html.escape(p)}' alt='{html.escape(p)}'></p>" for p in plots]
    if summary["notes"]:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in summary["notes"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
