"""Controls for the forecast probes: hand-computed cases, cross-checks against the round summary and scipy,
planted effects (positive) and exchangeable rounds (negative)."""

from __future__ import annotations

import warnings
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy

from probes.library.forecast import direction
from probes.testing import RoundSpec, clean_rounds
from tests.probe_runs import ROUND0, ROUND1, hand_run, measure, synthetic

MISSING = np.iinfo(np.int64).min


@pytest.fixture
def tiny(tmp_path):
    from probes import RunView

    return RunView(hand_run(tmp_path / "run", [ROUND0, ROUND1]))


def reference_kl(prev: list, chosen: list[bool], nxt: list, alpha: float) -> tuple[float, float]:
    """(KL(next || dataset), KL(next || no change)) from Counters, smoothing over the joint support."""
    support = sorted(set(prev) | set(nxt), key=str)
    p_next, p_prev = Counter(nxt), Counter(prev)
    s = Counter(a for a, c in zip(prev, chosen) if c)

    def dist(counter: Counter, total: int) -> np.ndarray:
        return np.array([counter[a] / max(total, 1) for a in support])

    target = dist(p_next, len(nxt))
    smooth = [(d + alpha) / (d + alpha).sum() for d in (dist(s, sum(chosen)), dist(p_prev, len(prev)))]
    return float(entropy(target, smooth[0])), float(entropy(target, smooth[1]))


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from([1, 2, 3, None]), min_size=4, max_size=4),
                          st.lists(st.booleans(), min_size=4, max_size=4),
                          st.lists(st.sampled_from([1, 2, 4, None]), min_size=4, max_size=4)), min_size=1, max_size=6),
       st.sampled_from([0.01, 0.05, 0.5]))
def test_direction_matches_a_counter_implementation(rows, alpha):
    def table(col):
        return SimpleNamespace(answers=np.array([[MISSING if a is None else a for a in r[col]] for r in rows]))

    chosen = np.array([r[1] for r in rows])
    kl_s, kl_p, has = direction(table(0), chosen, table(2), alpha)
    for i, (prev, pick, nxt) in enumerate(rows):
        assert has[i] == any(pick)
        ref_s, ref_p = reference_kl(prev, pick, nxt, alpha)
        assert kl_p[i] == pytest.approx(ref_p, abs=1e-9)
        if any(pick):
            assert kl_s[i] == pytest.approx(ref_s, abs=1e-9)


def test_majority_gap_by_hand(tiny):
    m = measure(tiny, "forecast.majority_gap")
    # round 0: majority right on 4 of 9 questions; 14 of 36 samples right
    assert m["gap"].value == pytest.approx(4 / 9 - 14 / 36) and m["gap"].round == 0
    assert m["entrenchment_risk"].null == 0.02 and m["entrenchment_risk"].concern == "decrease"
    assert sorted(m["entrenchment_risk"].evidence) == ["q0", "q1", "q2", "q7"]  # majority wrong, a sample right
    assert measure(tiny, "forecast.majority_gap", min_gap=0.5)["entrenchment_risk"].null == 0.5


def test_dataset_direction_by_hand(tiny):
    """Round 0 selects q0-q2 (wrong majority 11), q3 and q6 (right majority 10). Round 1 repeats q0, q1 and
    q6 exactly and flips q2 and q3 to the other answer: the unchanged distribution forecasts all five better
    than the dataset's point mass."""
    m = measure(tiny, "forecast.dataset_direction")
    assert m["better_share"].details["pairs"] == [{"from": 0, "to": 1, "questions": 5, "dataset_better": 0, "ties": 0}]
    assert m["better_share"].value == 0.0 and m["better_share"].round == 1
    expected = []
    for q in (0, 1, 2, 3, 6):
        pick = [a == Counter(ROUND0[q]).most_common(1)[0][0] for a in ROUND0[q]]
        ref_s, ref_p = reference_kl(ROUND0[q], pick, ROUND1[q], 0.05)
        expected.append(ref_p - ref_s)
    assert m["kl_reduction"].value == pytest.approx(np.mean(expected))


def test_majority_gap_matches_the_round_summary():
    with synthetic([RoundSpec(), RoundSpec(p_correct=0.5, attractor=0.7)], seed=4) as run:
        gap = measure(run, "forecast.majority_gap")["gap"]
        for r in run.rounds:
            metric = run.round_record(r)["metrics"]
            assert gap.series[r].value == pytest.approx(metric["pool_majority_accuracy"] - metric["pool_pass1"])


@settings(max_examples=5, deadline=None)
@given(p=st.floats(0.1, 0.2), attractor=st.floats(0.97, 1.0), seed=st.integers(0, 50))
def test_positive_control_shared_errors_fire_entrenchment_risk(p, attractor, seed):
    """Nearly every wrong sample of a question gives its one wrong answer and most questions are below
    even odds: the vote picks the shared error, so it knows no more than a single sample."""
    with synthetic([RoundSpec(p_correct=p, attractor=attractor)], seed=seed) as run:
        m = measure(run, "forecast.majority_gap")
        assert m["entrenchment_risk"].fires and m["entrenchment_risk"].ci_high < 0.02
        assert not m["gap"].fires and m["entrenchment_risk"].evidence


@settings(max_examples=5, deadline=None)
@given(p0=st.floats(0.55, 0.65), p1=st.floats(0.9, 1.0), seed=st.integers(0, 50))
def test_positive_control_next_round_follows_the_dataset(p0, p1, seed):
    """The next round sharpens onto the (mostly right) majorities the dataset holds: the dataset forecasts
    it better than no change, and by more than it does when the model does not change at all."""
    with synthetic([RoundSpec(p_correct=p0), RoundSpec(p_correct=p1)], seed=seed) as run:
        moved = measure(run, "forecast.dataset_direction")
    with synthetic([RoundSpec(p_correct=p0), RoundSpec(p_correct=p0)], seed=seed) as run:
        still = measure(run, "forecast.dataset_direction")
    assert moved["better_share"].ci_low > 0.5 and moved["kl_reduction"].ci_low > 0
    assert moved["kl_reduction"].value > still["kl_reduction"].ci_high


@settings(max_examples=5, deadline=None)
@given(p0=st.floats(0.65, 0.75), p1=st.floats(0.05, 0.15), seed=st.integers(0, 50))
def test_positive_control_next_round_leaves_the_dataset(p0, p1, seed):
    """The dataset holds mostly right majorities, but the next round collapses onto each question's fixed
    wrong answer, which round 0's samples sometimes gave and the dataset never did: no change wins."""
    with synthetic([RoundSpec(p_correct=p0, attractor=0.2), RoundSpec(p_correct=p1, attractor=1.0)],
                   seed=seed) as run:
        m = measure(run, "forecast.dataset_direction")
    assert m["kl_reduction"].ci_high < 0 and m["kl_reduction"].value < 0


def test_negative_control_clean_rounds():
    """Exchangeable rounds: nothing fires. The round-0 gap is clearly positive (the vote adds accuracy),
    and dataset_direction, which has no null to fire against, reports a finite value for every pair."""
    with synthetic(clean_rounds(4), seed=2) as run:
        gap = measure(run, "forecast.majority_gap")
        direction_ = measure(run, "forecast.dataset_direction")
    assert gap["gap"].ci_low > 0.1 and not gap["entrenchment_risk"].fires
    assert [p.round for p in direction_["kl_reduction"].series] == [1, 2, 3]
    for m in [*gap.values(), *direction_.values()]:
        assert not m.fires and m.value is not None and np.isfinite(m.value), m.name
        assert all(p.value is not None for p in m.series)


def test_one_round_run():
    """Round 0 alone: the gap is defined, the dataset direction (which needs a next round) is None."""
    with synthetic([RoundSpec()]) as run, warnings.catch_warnings():
        warnings.simplefilter("error")
        gap, direction_ = measure(run, "forecast.majority_gap"), measure(run, "forecast.dataset_direction")
    assert gap["gap"].value is not None and len(gap["gap"].series) == 1
    assert direction_["better_share"].value is None and direction_["kl_reduction"].value is None
