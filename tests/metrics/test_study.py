"""The study statistics against hand-computed tables, scipy and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from napari_cpadv.metrics.study import (
    binomial_test,
    cohen_kappa,
    confusion,
    fleiss_kappa,
    mcnemar_exact,
    median_iqr,
    wilcoxon,
    wilson,
)


def test_confusion_matches_a_hand_computed_table():
    labels = [1, 1, 0, 1, 0, 0, 1, 0]
    truth = [1, 1, 1, 0, 0, 0, 1, 1]
    c = confusion(labels, truth)
    assert (c["tp"], c["fn"], c["tn"], c["fp"]) == (3, 2, 2, 1)
    assert c["sensitivity"] == 3 / 5 and c["specificity"] == 2 / 3
    # Wilson 95 % for 3/5, by hand: (0.2307, 0.8824)
    lo, hi = c["sensitivity_ci95"]
    assert lo == pytest.approx(0.23072, abs=1e-4) and hi == pytest.approx(0.88237, abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.integers(1, 60))
def test_wilson_matches_scipy(k, n):
    k = min(k, n)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40))
def test_exact_mcnemar_is_the_binomial_test_of_discordant_pairs(b, c):
    expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)
    assert binomial_test(b, b + c) == pytest.approx(expected, rel=1e-9)


def test_binomial_against_chance_with_another_p():
    assert binomial_test(9, 20, 0.25) == pytest.approx(binomtest(9, 20, 0.25).pvalue, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=2, max_size=40))
def test_cohen_kappa_matches_scikit_learn(pairs):
    a, b = zip(*pairs, strict=True)
    ours, ref = cohen_kappa(a, b), cohen_kappa_score(a, b)
    if math.isnan(ours):
        assert len(set(a) | set(b)) == 1
    else:
        assert ours == pytest.approx(ref, abs=1e-12)


def test_fleiss_kappa_on_fleiss_1971_example():
    # Wikipedia's worked example (10 items, 14 raters, 5 categories): kappa = 0.210
    table = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])  # fmt: skip
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-4)
    with pytest.raises(ValueError, match="same"):
        fleiss_kappa(np.array([[1, 1], [2, 1]]))


def test_wilcoxon_and_median_iqr():
    from scipy.stats import wilcoxon as ref

    x = [1200.0, 900, 1500, 800, 2000, 1100, 950]
    y = [1000.0, 1000, 1300, 700, 1500, 1150, 900]
    res = wilcoxon(x, y)
    assert res["p_value"] == pytest.approx(ref(x, y).pvalue) and res["n"] == 7
    assert wilcoxon(x, x)["p_value"] == 1.0
    m = median_iqr(x)
    assert m["median"] == 1100 and m["q1"] == 925 and m["q3"] == 1350
