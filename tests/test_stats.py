"""probes.stats cross-checked against scipy / scikit-learn and hand-computed cases."""

import math
from itertools import combinations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import brier_score_loss, roc_auc_score

from probes import stats

small_int_rows = st.integers(1, 6).flatmap(
    lambda k: st.lists(st.lists(st.integers(0, 4), min_size=k, max_size=k), min_size=1, max_size=12))


@settings(max_examples=60, deadline=None)
@given(small_int_rows)
def test_row_entropy_matches_scipy(rows):
    a = np.array(rows)
    ours = stats.row_entropy(a)
    for row, h in zip(a, ours):
        _, counts = np.unique(row, return_counts=True)
        assert h == pytest.approx(scipy.stats.entropy(counts), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(small_int_rows)
def test_row_mode_is_the_first_seen_most_frequent_value(rows):
    a = np.array(rows)
    mode, share = stats.row_mode(a)
    for row, m, s in zip(a.tolist(), mode, share):
        counts = {v: row.count(v) for v in row}
        best = max(counts.values())
        assert m == next(v for v in row if counts[v] == best) and s == best / len(row)


def test_row_mode_ignores_invalid_entries():
    a = np.array([[7, 7, 7, 3], [1, 2, 2, 9]])
    valid = np.array([[False, False, False, True], [True, True, True, True]])
    mode, share = stats.row_mode(a, valid)
    assert mode.tolist() == [3, 2] and share.tolist() == [0.25, 0.5]


@settings(max_examples=40, deadline=None)
@given(small_int_rows, small_int_rows)
def test_js_divergence_of_answer_distributions_matches_scipy(rows_a, rows_b):
    n = min(len(rows_a), len(rows_b))
    a, b = np.array(rows_a[:n]), np.array(rows_b[:n])
    pa, pb = stats.answer_distributions(a, b)
    assert np.allclose(pa.sum(1), 1) and np.allclose(pb.sum(1), 1)
    ours = stats.js_divergence(pa, pb)
    for i in range(n):
        support = sorted(set(a[i]) | set(b[i]))
        p = [list(a[i]).count(v) / a.shape[1] for v in support]
        q = [list(b[i]).count(v) / b.shape[1] for v in support]
        assert ours[i] == pytest.approx(jensenshannon(p, q) ** 2, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=40))
def test_auroc_matches_sklearn(pairs):
    scores = np.array([round(s, 2) for s, _ in pairs])  # rounding makes ties
    labels = np.array([y for _, y in pairs])
    if labels.all() or not labels.any():
        assert math.isnan(stats.auroc(scores, labels))
    else:
        assert stats.auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40))
def test_brier_matches_sklearn(pairs):
    conf, correct = np.array([p for p, _ in pairs]), np.array([y for _, y in pairs])
    assert stats.brier(conf, correct) == pytest.approx(brier_score_loss(correct, conf, pos_label=True), abs=1e-12)


def test_ece_hand_computed():
    conf = np.array([0.05, 0.15, 0.95, 1.0, 0.55, 0.55])
    correct = np.array([0, 0, 1, 1, 1, 0])
    # bins: [0,.1): .05 vs 0 ; [.1,.2): .15 vs 0 ; [.5,.6): .55 vs .5 ; [.9,1]: .975 vs 1
    expected = (1 / 6) * 0.05 + (1 / 6) * 0.15 + (2 / 6) * 0.05 + (2 / 6) * 0.025
    assert stats.expected_calibration_error(conf, correct) == pytest.approx(expected)
    assert stats.expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == 0.0


@given(st.integers(1, 10).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_brute_force(nck):
    n, c, k = nck
    draws = list(combinations(range(n), k))
    brute = sum(any(i < c for i in d) for d in draws) / len(draws)
    assert stats.pass_at_k(n, np.array([c]), k)[0] == pytest.approx(brute)


def test_pass_at_k_rejects_k_out_of_range():
    with pytest.raises(ValueError):
        stats.pass_at_k(4, np.array([1]), 5)


@given(st.integers(0, 30), st.integers(0, 30))
def test_exact_mcnemar_matches_scipy_binomtest(lost, gained):
    before = np.array([True] * lost + [False] * gained + [True] * 5 + [False] * 3)
    after = np.array([False] * lost + [True] * gained + [True] * 5 + [False] * 3)
    b, c, p = stats.mcnemar_exact(before, after)
    assert (b, c) == (lost, gained)
    expected = 1.0 if lost + gained == 0 else scipy.stats.binomtest(lost, lost + gained, 0.5).pvalue
    assert p == pytest.approx(expected, rel=1e-9)


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap():
    x = np.random.default_rng(0).normal(1.0, 2.0, size=300)
    ours = stats.mean_ci(x, seed=1)
    ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile",
                                random_state=np.random.default_rng(2)).confidence_interval
    assert ours.value == pytest.approx(x.mean())
    assert ours.ci_low == pytest.approx(ref.low, abs=0.06) and ours.ci_high == pytest.approx(ref.high, abs=0.06)
    se = x.std(ddof=1) / math.sqrt(len(x))  # and the normal approximation
    assert ours.ci_high - ours.ci_low == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_bootstrap_is_seeded_and_handles_empty_input():
    x = np.arange(50.0)
    assert stats.mean_ci(x, seed=3) == stats.mean_ci(x, seed=3)
    assert math.isnan(stats.mean_ci(np.array([]), seed=0).value)


def test_paired_difference_is_narrower_than_unpaired_when_items_correlate():
    rng = np.random.default_rng(0)
    item = rng.normal(0, 3, size=400)
    before, after = item + rng.normal(0, 0.3, 400), item + 0.2 + rng.normal(0, 0.3, 400)
    paired = stats.paired_difference(before, after, seed=0)
    assert paired.ci_low > 0  # the shift is detected
    unpaired_se = math.sqrt(before.var(ddof=1) / 400 + after.var(ddof=1) / 400)
    assert paired.ci_high - paired.ci_low < 2 * 1.96 * unpaired_se / 3
    with pytest.raises(ValueError):
        stats.paired_difference(before, after[:10], seed=0)


def test_paired_z_matches_scipy_paired_t_statistic():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(0.3, 1, size=50)
    assert stats.paired_z(a, b) == pytest.approx(scipy.stats.ttest_rel(b, a).statistic)
    assert stats.paired_z([1, 2], [1, 2]) == 0.0
