"""Controls for the confident_wrong probes: hand-built runs with known answers, cross-checks against the
harness's own round summary and scikit-learn, planted effects (positive) and exchangeable rounds (negative)."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, roc_auc_score

from harness.artifacts import Manifest, ReferenceRow, RoundRecord, RunStore, SampleRow, sha256_file, write_jsonl
from harness.strategies.select import self_consistency, strip_labels
from harness.summary import summarise_round
from probes import RunView, get_probe, stats
from probes.library import confident_wrong as cw
from probes.testing import RoundSpec, clean_rounds, write_synthetic_run

SMALL = {"n_pool": 160, "n_test": 100, "n_ood": 10, "n_ref": 5}
CW_PROBES = ("cw.rate", "cw.transitions", "cw.calibration", "cw.label_noise", "cw.agreement_vs_accuracy")


def hand_run(path: Path, rounds: list[list[list[int | None]]], truth: int = 10, tau: float = 0.75,
             test_right: list[list[bool]] | None = None) -> Path:
    """A run whose round r gives question q the answers rounds[r][q] (all questions have `truth`);
    selection, summary and files are the loop's own. test_right[r]: greedy correctness of test items."""
    store = RunStore(path)
    store.open(Manifest(config={"loop": {"tau": tau}}, config_hash="hand", seed=0, base_model={}, versions={},
                        git_revision=None, created="test"))
    for r, per_q in enumerate(rounds):
        def row(qid, split, j, answer, decoding="sample"):
            return SampleRow(question_id=qid, split=split, round=r, sample_index=j, decoding=decoding, prompt="p",
                             completion=f"A: {answer}", parsed_answer=answer, sum_logprob=-1.0, n_tokens=3,
                             finished=True, truth=truth, correct=answer == truth)

        samples = [row(f"q{i}", "pool", j, a) for i, answers in enumerate(per_q) for j, a in enumerate(answers)]
        evals = [row(f"t{i}", "test", 0, truth if ok else truth + 1, "greedy")
                 for i, ok in enumerate((test_right or [[]] * len(rounds))[r])]
        selected = self_consistency(strip_labels(samples), tau, r)
        reference = [ReferenceRow(text_id="ref:0", round=r, nll=1.0, n_tokens=2)]
        d = store.round_dir(r)
        files = {"eval.jsonl": evals, "reference.jsonl": reference, "samples.jsonl": samples,
                 "selected.jsonl": selected}
        for name, rows in files.items():
            write_jsonl(d / name, rows)
        metrics, counts = summarise_round(samples, evals, selected, reference, tau)
        store.finish_round(RoundRecord(round=r, metrics=metrics, counts=counts, training=None, seconds={},
                                       files={n: sha256_file(d / n) for n in files}))
    return path


# states at tau 0.75 with k = 4 and truth 10
RC, RU, WU, WC = [10, 10, 10, 11], [10, 10, 11, 12], [11, 11, 10, 12], [11, 11, 11, 10]
TIE, NONE = [11, 10, 11, 10], [None] * 4  # a tie goes to the first-seen answer (11: wrong); no parse: wrong
ROUND0 = [WC, WC, WC, RC, RU, NONE, RC, WU, RU]
ROUND1 = [WC, WC, RC, WC, TIE, RU, RC, WC, RU]


@pytest.fixture
def tiny(tmp_path) -> RunView:
    return RunView(hand_run(tmp_path / "run", [ROUND0, ROUND1], test_right=[[True, True], [True, False]]))


def measure(run: RunView, pid: str, **params) -> dict:
    return {m.name: m for m in get_probe(pid)(**params).measure(run)}


@contextmanager
def synthetic(rounds: list[RoundSpec], seed: int = 0) -> Iterator[RunView]:
    """A small synthetic run in a temporary directory (hypothesis examples cannot use tmp_path)."""
    with tempfile.TemporaryDirectory(prefix="loopprobe-") as d:
        yield RunView(write_synthetic_run(Path(d) / "run", rounds, seed=seed, **SMALL))


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
    assert m["rate"].details["tau"] == 0.75  # the run's loop tau
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
            right, share = cw.vote(run.samples(r))
            assert m["brier"].series[r].value == pytest.approx(brier_score_loss(right, share))
            assert m["auroc"].series[r].value == pytest.approx(roc_auc_score(right, share))
            assert m["ece"].series[r].value == pytest.approx(stats.expected_calibration_error(share, right))
        right, share = cw.vote(tiny.samples(0))
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
