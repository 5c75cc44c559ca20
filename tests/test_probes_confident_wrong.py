"""Controls for the confident_wrong probes: hand-built runs with known answers, cross-checks against the
harness's own round summary and scikit-learn, planted effects (positive) and exchangeable rounds (negative)."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, roc_auc_score

from harness.artifacts import SampleRow
from harness.summary import CONFIDENT_SHARE
from probes import RunView, get_probe, stats
from probes.common import vote
from probes.library import confident_wrong as cw
from probes.testing import RoundSpec, clean_rounds, write_synthetic_run
from tests.probe_runs import CW_PROBES, NONE, RC, ROUND0, ROUND1, RU, SMALL, TIE, WC, WU, hand_run, measure, synthetic  # noqa: F401


@pytest.fixture
def tiny(tmp_path) -> RunView:
    return RunView(hand_run(tmp_path / "run", [ROUND0, ROUND1], test_right=[[True, True], [True, False]]))


def test_transition_matrix_by_hand(tiny):
    m = measure(tiny, "cw.transitions", min_count=1)
    assert m["persistence"].details["states"] == ["right_unsure", "right_confident", "wrong_unsure", "wrong_confident"]
    assert m["persistence"].details["pairs"] == [{"from": 0, "to": 1, "counts": [[1, 0, 1, 0], [0, 1, 0, 1],
                                                                                 [1, 0, 0, 1], [0, 1, 0, 2]]}]
    assert m["persistence"].value == pytest.approx(2 / 3)
    assert m["inflow"].value == pytest.approx(2 / 6)
    assert sorted(m["inflow"].evidence) == ["q3", "q7"] and sorted(m["persistence"].evidence) == ["q0", "q1"]
    assert "persistence.delta_vs_first" not in m  # one pair: nothing to compare
    assert measure(tiny, "cw.transitions")["persistence"].value is None  # 3 CW questions < min_count 10


def test_rate_by_hand_and_tau(tiny):
    m = measure(tiny, "cw.rate")
    # the shared definition, not the run's selection tau (0.75 here); with k = 4 both classify alike
    assert m["rate"].details["tau"] == CONFIDENT_SHARE == 0.6
    assert [p.value for p in m["rate"].series] == pytest.approx([3 / 9, 4 / 9])
    assert m["rate.delta_vs_round0"].value == pytest.approx(1 / 9)
    assert sorted(m["rate"].evidence) == ["q3", "q7"]  # newly confident-wrong
    # at tau 0.5 wrong-unsure q7 (share 0.5) in round 0 and the tie q4 in round 1 count as confident too
    assert [p.value for p in measure(tiny, "cw.rate", tau=0.5)["rate"].series] == pytest.approx([4 / 9, 5 / 9])


def test_label_noise_by_hand(tiny):
    m = measure(tiny, "cw.label_noise")
    # round 0 selects q0-q2 (3 wrong samples each) and q3, q6 (3 right each): 9 wrong of 15;
    # all round-0 samples: 22 wrong of 36
    assert m["amplification"].series[0].value == pytest.approx((9 / 15) / (22 / 36))
    assert m["selected_wrong"].series[0].value == pytest.approx(9 / 15)
    assert m["amplification"].details["counts"]["0"] == {"selected": 15, "selected_wrong": 9, "samples": 36,
                                                         "wrong": 22}


def test_calibration_matches_sklearn(tiny):
    with synthetic(clean_rounds(2), seed=3) as run:
        m = measure(run, "cw.calibration")
        for r in run.rounds:
            right, share = vote(run.samples(r))
            assert m["brier"].series[r].value == pytest.approx(brier_score_loss(right, share))
            assert m["auroc"].series[r].value == pytest.approx(roc_auc_score(right, share))
            assert m["ece"].series[r].value == pytest.approx(stats.expected_calibration_error(share, right))
        right, share = vote(tiny.samples(0))
        assert measure(tiny, "cw.calibration")["auroc"].series[0].value == pytest.approx(roc_auc_score(right, share))


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 60), st.integers(2, 12), st.sampled_from([4, 5, 8, 10]))
def test_vectorised_metrics_match_references(n, levels, bins):
    rng = np.random.default_rng(n * 100 + levels)
    conf = rng.integers(0, levels + 1, size=(3, n)) / levels  # many ties, 0 and 1 included
    correct = (rng.uniform(size=(3, n)) < conf).astype(float)
    level = np.unique(conf, return_inverse=True)[1].reshape(conf.shape)
    ece, auc = cw._ece(conf, correct, bins), cw._auroc(level, correct)
    for b in range(3):
        assert ece[b] == pytest.approx(stats.expected_calibration_error(conf[b], correct[b], bins))
        assert cw._brier(conf, correct)[b] == pytest.approx(brier_score_loss(correct[b], conf[b]))
        if 0 < correct[b].sum() < n:
            assert auc[b] == pytest.approx(roc_auc_score(correct[b], conf[b]))
        else:
            assert np.isnan(auc[b])


def test_rate_and_agreement_match_the_round_summary():
    with synthetic(clean_rounds(3, p_correct=0.4, attractor=0.8), seed=1) as run:
        rate = measure(run, "cw.rate")["rate"]
        for r in run.rounds:
            assert rate.series[r].value == pytest.approx(run.round_record(r)["metrics"]["confident_wrong_share"])
        deltas = measure(run, "cw.agreement_vs_accuracy")["agreement_up_accuracy_down"].details["deltas"]
        metric = {r: run.round_record(r)["metrics"] for r in (0, 2)}
        vote_share = metric[2]["mean_vote_share"] - metric[0]["mean_vote_share"]
        assert deltas["vote_share"]["value"] == pytest.approx(vote_share)
        assert deltas["pool_pass1"]["value"] == pytest.approx(metric[2]["pool_pass1"] - metric[0]["pool_pass1"])
        assert deltas["test_greedy"]["value"] == pytest.approx(metric[2]["test_accuracy"] - metric[0]["test_accuracy"])


def entrench(p0: float, p1: float, a0: float, a1: float, n: int = 4) -> list[RoundSpec]:
    """Accuracy falls from p0 to p1 while wrong samples collapse onto one wrong answer (a0 -> a1)."""
    return [RoundSpec(p_correct=p0 + (p1 - p0) * t, attractor=a0 + (a1 - a0) * t, test_p=p0 + (p1 - p0) * t)
            for t in np.linspace(0, 1, n)]


@settings(max_examples=5, deadline=None)
@given(p0=st.floats(0.45, 0.55), p1=st.floats(0.2, 0.3), a0=st.floats(0.2, 0.4), a1=st.floats(0.95, 1.0),
       seed=st.integers(0, 50))
def test_positive_control_entrenching_loop(p0, p1, a0, a1, seed):
    with synthetic(entrench(p0, p1, a0, a1), seed=seed) as run:
        rate, cal = measure(run, "cw.rate"), measure(run, "cw.calibration")
        noise, agree = measure(run, "cw.label_noise"), measure(run, "cw.agreement_vs_accuracy")
        assert rate["rate.delta_vs_round0"].fires and rate["rate.delta_vs_round0"].value > 0
        assert rate["rate"].evidence and rate["rate.delta_vs_round0"].evidence
        for name in ("ece", "brier"):
            assert cal[f"{name}.delta_vs_round0"].fires and cal[f"{name}.delta_vs_round0"].value > 0
        assert cal["auroc.delta_vs_round0"].fires and cal["auroc.delta_vs_round0"].value < 0
        assert noise["amplification"].fires and noise["amplification"].ci_low > 1
        assert noise["selected_wrong.delta_vs_round0"].fires and noise["selected_wrong.delta_vs_round0"].value > 0
        a = agree["agreement_up_accuracy_down"]
        assert a.alarm is True and a.fires and a.details["deltas"]["pool_pass1"]["ci_high"] < 0


@settings(max_examples=5, deadline=None)
@given(p_bad=st.floats(0.3, 0.4), a_bad=st.floats(0.75, 0.9), p_good=st.floats(0.65, 0.75),
       seed=st.integers(0, 50))
def test_positive_control_persistence_rises(p_bad, a_bad, p_good, seed):
    """Confident-wrong dissolves after round 0 (the model recovers), then sets in and stays."""
    with synthetic([RoundSpec(p_correct=p_bad, attractor=a_bad), RoundSpec(p_correct=p_good, attractor=0.2),
                     RoundSpec(p_correct=p_bad, attractor=a_bad), RoundSpec(p_correct=p_bad - 0.1, attractor=1.0)],
                    seed=seed) as run:
        m = measure(run, "cw.transitions")
        for name in ("persistence", "inflow"):
            assert m[f"{name}.delta_vs_first"].fires and m[f"{name}.delta_vs_first"].value > 0
        assert m["persistence.delta_vs_first"].details["first_pair"] == [0, 1]
        assert m["persistence"].value > 0.5 and len(m["persistence"].details["pairs"]) == 3


def test_agreement_without_accuracy_loss_is_no_alarm():
    """The samples agree more because the model got better: vote share rises, but that is no alarm."""
    with synthetic([RoundSpec(p_correct=0.5), RoundSpec(p_correct=0.7), RoundSpec(p_correct=0.85)]) as run:
        a = measure(run, "cw.agreement_vs_accuracy")["agreement_up_accuracy_down"]
        assert a.ci_low > 0 and a.alarm is False and not a.fires


@pytest.mark.parametrize("spec", [{}, {"p_correct": 0.35, "attractor": 0.85}], ids=["default", "stable-bad"])
def test_negative_control_clean_rounds(spec):
    """Exchangeable rounds: no change fires. A stably bad model keeps CW levels high (persistence has
    support) and its selection may amplify errors (a level, not a change), but nothing moves."""
    with synthetic(clean_rounds(4, **spec), seed=2) as run:
        for pid in CW_PROBES:
            for m in get_probe(pid)().measure(run):
                if spec and m.name == "amplification":
                    continue
                assert not m.fires, (pid, m.name, m.value, m.ci_low, m.ci_high)
                assert m.value is None or np.isfinite(m.value)
        if spec:
            assert measure(run, "cw.transitions")["persistence.delta_vs_first"].value is not None


@pytest.mark.parametrize("rounds", [[RoundSpec()], [RoundSpec(p_correct=1.0, spread=0.0)] * 2],
                         ids=["one-round", "always-right"])
def test_degenerate_runs_give_none_not_nan(rounds):
    """One round (no change to measure) or no wrong sample at all (AUROC and amplification undefined):
    values are None or finite, nothing fires, and no numpy warning escapes."""
    with synthetic(rounds) as run, warnings.catch_warnings():
        warnings.simplefilter("error")
        found = {(pid, m.name): m for pid in CW_PROBES for m in get_probe(pid)().measure(run)}
    for key, m in found.items():
        assert m.value is None or np.isfinite(m.value), key
        assert not m.fires, key
    if len(rounds) == 2:
        assert found[("cw.calibration", "auroc")].value is None
        assert found[("cw.label_noise", "amplification")].value is None
        assert found[("cw.label_noise", "selected_wrong")].value == 0.0
    else:
        assert found[("cw.agreement_vs_accuracy", "agreement_up_accuracy_down")].alarm is None


def _arithmetic_run(path, captured_by_round: list[float], k: int = 4, n: int = 120, seed: int = 0) -> RunView:
    """Pool questions where drop_carry_tens applies; in round r a share captured_by_round[r] of them answer
    with the misconception's answer (every sample), the rest answer right."""
    from harness.artifacts import Manifest, RunStore
    from harness.domains.arithmetic import MISCONCEPTIONS, add_rationale, make_question, parse_answer
    from harness.summary import record_round

    rule = MISCONCEPTIONS["drop_carry_tens"]
    rng = np.random.default_rng(seed)
    questions = []
    while len(questions) < n:
        a, b = (int(x) for x in rng.integers(10, 1000, size=2))
        if rule.applies(a, b) and all(q.id != f"add:{a}+{b}" for q in questions):
            questions.append(make_question("add", a, b))
    store = RunStore(path)
    store.open(Manifest(config={"domain": {"misconception": "drop_carry_tens"}, "loop": {"tau": 0.6}},
                        config_hash="t", seed=0, base_model={}, versions={}, git_revision=None, created="t"))
    for r, share in enumerate(captured_by_round):
        captured = set(rng.permutation(n)[: round(share * n)].tolist())
        rows = []
        for i, q in enumerate(questions):
            a, b = (int(x) for x in q.id[4:].split("+"))
            text = add_rationale(a, b, rule) if i in captured else add_rationale(a, b)
            answer = parse_answer(text)
            rows += [SampleRow(question_id=q.id, split="pool", round=r, sample_index=j, decoding="sample",
                               prompt=q.prompt, completion=text, parsed_answer=answer, sum_logprob=-1.0,
                               n_tokens=len(text), finished=True, truth=q.answer, correct=answer == q.answer)
                     for j in range(k)]
        record_round(store, r, evals=[], reference=[], samples=rows, selected=[])
    return RunView(path)


@settings(max_examples=5, deadline=None)
@given(st.floats(0.0, 0.2), st.floats(0.5, 0.8))
def test_misconception_share_fires_when_the_planted_rule_captures_more_questions(before, after):
    with tempfile.TemporaryDirectory() as d:
        run = _arithmetic_run(Path(d) / "run", [before, after])
        m = {x.name: x for x in get_probe("cw.misconception_share")().measure(run)}
    assert m["share"].value == pytest.approx(round(after * 120) / 120)
    assert m["share.delta_vs_round0"].fires and m["share"].details["applicable"] == 120


def test_misconception_share_is_quiet_when_nothing_changes_and_undefined_without_a_misconception(tmp_path):
    run = _arithmetic_run(tmp_path / "run", [0.3, 0.3, 0.3])
    m = {x.name: x for x in get_probe("cw.misconception_share")().measure(run)}
    assert not any(x.fires for x in m.values())
    assert m["share.delta_vs_round0"].ci_low <= 0 <= m["share.delta_vs_round0"].ci_high
    clean = write_synthetic_run(tmp_path / "clean", clean_rounds(2), **SMALL)
    (only,) = get_probe("cw.misconception_share")().measure(RunView(clean))
    assert only.value is None and not only.fires
