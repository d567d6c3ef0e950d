"""A study analysis written out: ``answers.csv`` (one row per reader and presentation,
formula-safe), the iMRMC input file, the plots, and the HTML report of the summary."""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from napari_cpadv.study.model import CONDITIONS

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


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_analysis(dest: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """``answers.csv``, ``study.imrmc`` (when every case's truth and answer are known; a note
    in the summary says why not otherwise), the plots, ``report.html`` and ``summary.json``
    into ``dest``, each file atomically."""
    from napari_cpadv.files import write_atomic, write_json

    dest.mkdir(parents=True, exist_ok=True)
    write_atomic(dest / "answers.csv", answers_csv(rows).encode())
    imrmc = imrmc_text(rows, summary["study_id"])
    if imrmc is not None:
        write_atomic(dest / "study.imrmc", imrmc.encode())
    else:
        summary["notes"].append(
            "no iMRMC file: it needs the truth of every case and tumour answers"
        )
    plots = write_plots(summary, rows, dest)
    write_atomic(dest / "report.html", report_html(summary, plots).encode())
    write_json(dest / "summary.json", plain(summary), allow_nan=False)


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


def plain(value: Any) -> Any:
    """JSON without NaN (null instead), tuples as lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return plain(value.item())
    return value


def write_plots(summary: dict[str, Any], rows: list[dict[str, Any]], dest: Path) -> list[str]:
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
    study = html.escape(summary["study_id"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Study {study}</title>",
        "<style>body{font-family:sans-serif;max-width:60em}table{border-collapse:collapse;"
        "margin:.5em 0}td,th{border:1px solid #999;padding:2px 8px;text-align:right}</style>",
        "</head><body>",
        f"<h1>Reader study {study}</h1>",
        f"<p>{html.escape(summary['verified'])}. {summary['presentations']} presentations.</p>",
    ]
    readers = summary["readers"]
    for section in (_truth, _paired, _replicates, _fleiss, _times, _altered):
        parts += section(readers, summary)
    parts += [f"<p><img src='{html.escape(p)}' alt='{html.escape(p)}'></p>" for p in plots]
    if summary["notes"]:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{html.escape(n)}</li>" for n in summary["notes"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _truth(readers: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    body = [
        [reader, cond, e["n"], e.get("tp"), e.get("fn"), e.get("tn"), e.get("fp"),
         e.get("sensitivity"), e.get("sensitivity_ci95"), e.get("specificity"),
         e.get("specificity_ci95"), e["tumour_rate"]]
        for reader, s in readers.items() for cond, e in s["by_condition"].items()
    ]  # fmt: skip
    return ["<h2>Answers against truth, by condition</h2>", _table(TRUTH_HEAD, body)]


def _paired(readers: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    body = [
        [r, p["n"], p["both_tumour"], p["original_tumour_adversarial_not"],
         p["original_not_adversarial_tumour"], p["both_not"], p["tp_original"],
         p["tp_adversarial"], p["mcnemar_exact_p"], p["cohen_kappa"]]
        for r, s in readers.items() if (p := s.get("paired"))
    ]  # fmt: skip
    head = "<h2>Original against adversarial (same case and replicate)</h2>"
    return [head, _table(PAIRED_HEAD, body)]


def _replicates(readers: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    body = [
        [r, cond, a["n"], a["agreement"], a["cohen_kappa"]]
        for r, s in readers.items()
        for cond, a in (s.get("replicate_agreement") or {}).items()
    ]
    return [
        "<h2>Replicates of the same image (the noise floor)</h2>",
        _table(["reader", "condition", "n", "agreement", "Cohen's κ"], body),
    ]


def _fleiss(readers: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    f = summary.get("fleiss")
    if not f:
        return []
    body = [[c, f[c]["items"], f[c]["fleiss_kappa"]] for c in (*CONDITIONS, "both") if c in f]
    return [
        f"<h2>Agreement between {f['readers']} readers</h2>",
        _table(["condition", "items", "Fleiss' κ"], body),
    ]


def _times(readers: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    body = [
        [r, cond, t["n"], t["median"], t["q1"], t["q3"],
         (s.get("time_paired_wilcoxon") or {}).get("p_value")]
        for r, s in readers.items() for cond, t in s["time_ms"].items()
    ]  # fmt: skip
    head = ["reader", "condition", "n", "median", "Q1", "Q3", "Wilcoxon p (paired)"]
    return ["<h2>Time on case (ms)</h2>", _table(head, body)]


def _altered(readers: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    alt = [(r, s["altered"]) for r, s in readers.items() if s.get("altered")]
    if not alt:
        return []
    body = [
        [r, a["n"], a["correct"], a["rate"], a["rate_ci95"], a["binomial_p_vs_chance"]]
        for r, a in alt
    ]
    return [
        "<h2>“Was this image altered?” against chance</h2>",
        _table(["reader", "n", "right", "rate", "95 % CI", "binomial p"], body),
    ]
