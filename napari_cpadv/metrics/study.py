"""The statistics a reader study owes its reviewers, from scipy, statsmodels and
scikit-learn (each wrapped for the edge cases a small study meets: no items, one answer
throughout):

* ``wilson``: Wilson score 95 % interval of a proportion;
* ``confusion``: TP, FN, TN, FP, sensitivity and specificity with Wilson intervals;
* ``mcnemar_exact``: the exact (binomial) McNemar test on the discordant pairs;
* ``cohen_kappa`` / ``fleiss_kappa``: chance-corrected agreement of two / many raters;
* ``binomial_test``: exact two-sided binomial test (detection of "altered?" against chance);
* ``wilcoxon``: the signed-rank test of paired times (scipy's, zero differences dropped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (statsmodels' ``proportion_confint``); ``(nan, nan)`` when ``n``
    is 0."""
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return math.nan, math.nan
    alpha = float(2 * norm.sf(z))
    lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return max(0.0, float(lo)), min(1.0, float(hi))


def confusion(labels: Sequence[int], truth: Sequence[int]) -> dict[str, Any]:
    """The 2 x 2 table of binary answers against truth, with rates and intervals."""
    y, t = np.asarray(labels, int), np.asarray(truth, int)
    tp, fn = int(((y == 1) & (t == 1)).sum()), int(((y == 0) & (t == 1)).sum())
    tn, fp = int(((y == 0) & (t == 0)).sum()), int(((y == 1) & (t == 0)).sum())
    sens = tp / (tp + fn) if tp + fn else math.nan
    spec = tn / (tn + fp) if tn + fp else math.nan
    return {
        "tp": tp, "fn": fn, "tn": tn, "fp": fp,
        "sensitivity": sens, "sensitivity_ci95": wilson(tp, tp + fn),
        "specificity": spec, "specificity_ci95": wilson(tn, tn + fp),
    }  # fmt: skip


def binomial_test(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial p-value (scipy's ``binomtest``; any ``n``)."""
    from scipy.stats import binomtest

    return 1.0 if n == 0 else float(binomtest(k, n, p).pvalue)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p-value (statsmodels') from the discordant counts ``b`` (yes→no) and
    ``c`` (no→yes)."""
    from statsmodels.stats.contingency_tables import mcnemar

    if b + c == 0:
        return 1.0
    return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float:
    """Cohen's κ of two raters' labels on the same items (scikit-learn's; nan when chance
    agreement is 1, as when both raters give one answer throughout)."""
    from sklearn.metrics import cohen_kappa_score

    x, y = np.asarray(a), np.asarray(b)
    if len(x) != len(y) or not len(x):
        raise ValueError("two raters need the same, non-empty list of items")
    cats = np.union1d(x, y)
    pe = float(sum((x == k).mean() * (y == k).mean() for k in cats))
    return math.nan if pe == 1 else float(cohen_kappa_score(x, y))


def fleiss_kappa(ratings: np.ndarray) -> float:
    """Fleiss' κ (statsmodels') from ``ratings`` ``(items, categories)``: raters per
    category per item (every item rated by the same number of raters)."""
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    r = np.asarray(ratings, float)
    n = r.sum(axis=1)
    if not len(r) or (n != n[0]).any() or n[0] < 2:
        raise ValueError("Fleiss' kappa needs every item rated by the same >= 2 raters")
    p_cat = r.sum(axis=0) / r.sum()
    if float((p_cat**2).sum()) == 1:
        return math.nan
    return float(_fleiss(r, method="fleiss"))


def wilcoxon(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Wilcoxon signed-rank test of paired samples (scipy's, two-sided)."""
    from scipy.stats import wilcoxon as _wilcoxon

    d = np.asarray(x, float) - np.asarray(y, float)
    if not np.any(d != 0):
        return {"statistic": math.nan, "p_value": 1.0, "n": 0}
    res = _wilcoxon(x, y, zero_method="wilcox")
    return {
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "n": int((d != 0).sum()),
    }


def median_iqr(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, float)
    if not len(v):
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "n": 0}
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "n": len(v)}
