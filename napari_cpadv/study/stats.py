"""The statistics of a study's answers, per reader or pooled: answers against truth by
condition, the paired original-against-adversarial table (McNemar, κ), replicate agreement,
time on case, the "altered?" rate against chance, and Fleiss' κ over readers. The tests
and intervals are scipy's and statsmodels' (``napari_cpadv.metrics.study``)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from napari_cpadv.metrics import study as st
from napari_cpadv.study.model import CONDITIONS


def reader_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every statistic of one reader's answer ``rows`` (or all readers', pooled)."""
    labelled = [r for r in rows if r["label"] is not None]
    out: dict[str, Any] = {
        "presentations": len(rows),
        "by_condition": {cond: _condition(labelled, cond) for cond in CONDITIONS},
    }
    out.update(_paired(labelled))
    agreement = _replicate_agreement(labelled)
    if agreement is not None:
        out["replicate_agreement"] = agreement
    out["time_ms"] = {
        cond: st.median_iqr([r["duration_ms"] for r in rows if r["condition"] == cond])
        for cond in CONDITIONS
    }
    altered = _altered(rows)
    if altered is not None:
        out["altered"] = altered
    return out


def _condition(labelled: list[dict[str, Any]], cond: str) -> dict[str, Any]:
    """Tumour answers (rate, Wilson interval) and, where the truth is known, the confusion
    table with sensitivity and specificity, on one condition."""
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
    return entry


def _paired(labelled: list[dict[str, Any]]) -> dict[str, Any]:
    """The paired table: the same reader's answers to the same case, original against
    adversarial, first replicate only (replicates of one image are not independent pairs;
    their agreement is reported apart). Pooled over readers, it is the sum of the
    per-reader tables, each reader's pairs kept apart. Also the paired times' Wilcoxon."""
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in sorted(labelled, key=lambda r: r["replicate"]):
        first.setdefault((r["reader_id"], r["source_id"], r["condition"]), r)
    pairs = [
        (row, first[(reader, case, "adversarial")])
        for (reader, case, cond), row in first.items()
        if cond == "original" and (reader, case, "adversarial") in first
    ]
    if not pairs:
        return {}
    o = np.array([p[0]["label"] for p in pairs])
    a = np.array([p[1]["label"] for p in pairs])
    b, c = int(((o == 1) & (a == 0)).sum()), int(((o == 0) & (a == 1)).sum())
    positives = [i for i, p in enumerate(pairs) if p[0]["truth"] == 1]
    paired = {
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
    times = st.wilcoxon([p[0]["duration_ms"] for p in pairs], [p[1]["duration_ms"] for p in pairs])
    return {"paired": paired, "time_paired_wilcoxon": times}


def _replicate_agreement(labelled: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Replicates of the same image by the same reader (the noise floor): agreement and
    Cohen's κ of the first two replicates, per condition and over both."""
    reps: dict[tuple[str, str, str], dict[int, int]] = defaultdict(dict)
    for r in labelled:
        reps[(r["reader_id"], r["source_id"], r["condition"])][r["replicate"]] = r["label"]
    firsts = sorted({k for v in reps.values() for k in v})
    if len(firsts) < 2:
        return None
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
    return agree


def _altered(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The "was this image altered?" answers against chance (exact binomial, p = 0.5)."""
    alt = [r for r in rows if r["altered"] is not None]
    if not alt:
        return None
    right = sum(int(r["altered"] == (r["condition"] == "adversarial")) for r in alt)
    return {
        "n": len(alt),
        "correct": right,
        "rate": right / len(alt),
        "rate_ci95": st.wilson(right, len(alt)),
        "binomial_p_vs_chance": st.binomial_test(right, len(alt), 0.5),
        "said_altered": {
            cond: sum(r["altered"] for r in alt if r["condition"] == cond) for cond in CONDITIONS
        },
    }


def fleiss(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
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
