"""Controls for the drift probes: each fires on a synthetic run with its effect planted (hypothesis draws the
effect size), stays quiet on exchangeable rounds, and agrees with an independent computation (scipy,
the standard library) on what it reports."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import binomtest

from harness.artifacts import RunStore
from probes import RunView, get_probe, run_probes
from probes.testing import RoundSpec, clean_rounds, reseal_round, write_synthetic_run

SMALL = {"n_pool": 150, "n_test": 150, "n_ood": 100, "n_ref": 100}
DRIFT = ("drift.accuracy", "drift.answer_js", "drift.reference_nll", "drift.length")
# few examples, and no shrinking: every example writes a run, and a failure should report fast
FEW = settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])


def write(factory, specs, **kw):
    return write_synthetic_run(factory.mktemp("drift") / "run", specs, **{**SMALL, **kw})


def measure(pid, path, **params):
    return {m.name: m for m in get_probe(pid)(**params).measure(RunView(path))}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write(tmp_path_factory, clean_rounds(3))


def test_family_is_registered():
    for pid in DRIFT:
        cls = get_probe(pid)
        assert cls.family == "drift" and cls.id == pid and cls.description()


# ----------------------------------------------------------------------------------- negative controls


@pytest.mark.parametrize("pid", DRIFT)
def test_clean_rounds_do_not_fire(clean, pid):
    ms = measure(pid, clean)
    assert ms, pid
    for m in ms.values():
        assert not m.fires, (m.name, m.value, m.ci_low, m.ci_high)
        if m.concern != "none":  # every comparison's CI covers its null
            assert m.ci_low <= m.null <= m.ci_high, (m.name, m.ci_low, m.ci_high)


def test_results_serialise_without_nan(clean):
    results = run_probes(clean, {pid: {} for pid in DRIFT})
    text = results.model_dump_json()

    def reject(token):
        raise AssertionError(f"non-finite number {token} in probes.json")

    data = json.loads(text, parse_constant=reject)
    names = {(m["probe"], m["name"]) for m in data["measurements"]}
    tracked = ("", ".delta_vs_round0", ".delta_vs_previous")
    expected = {("drift.accuracy", f"{split}.{kind}{suffix}")
                for split in ("test", "ood") for kind in ("greedy", "pass1") for suffix in tracked}
    expected |= {("drift.answer_js", f"js_vs_{ref}{suffix}")
                 for ref in ("round0", "previous") for suffix in ("", ".excess")}
    expected |= {("drift.reference_nll", f"nll_per_token{suffix}") for suffix in tracked}
    expected |= {("drift.reference_nll", "tail_mass")}
    expected |= {("drift.length", f"{name}{suffix}") for name in ("length", "unfinished") for suffix in tracked}
    assert names == expected


def test_one_round_runs_do_not_break(tmp_path_factory):
    path = write(tmp_path_factory, clean_rounds(1), n_pool=30, n_test=30, n_ood=20, n_ref=20)
    for pid in DRIFT:
        ms = measure(pid, path)
        assert ms and not any(m.fires for m in ms.values())


# ---------------------------------------------------------------------------------------- accuracy


@FEW
@given(drop=st.floats(0.15, 0.35), ood_drop=st.floats(0.15, 0.35))
def test_accuracy_fires_on_a_drop(tmp_path_factory, drop, ood_drop):
    specs = [RoundSpec(test_p=0.65, ood_p=0.6), RoundSpec(test_p=0.65 - drop, ood_p=0.6 - ood_drop)]
    path = write(tmp_path_factory, specs)
    ms = measure("drift.accuracy", path)
    run = RunView(path)
    for split in ("test", "ood"):
        d = ms[f"{split}.greedy.delta_vs_round0"]
        assert d.fires and d.value < 0 and d.concern == "decrease"
        assert d.details["gained"] == 0 < d.details["lost"] and d.details["mcnemar_p"] < 0.05
        assert ms[f"{split}.pass1.delta_vs_round0"].fires and ms[f"{split}.pass1.delta_vs_round0"].value < 0
        before, after = run.samples(0, split, "greedy"), run.samples(1, split, "greedy")
        lost = {q for q, b, a in zip(before.question_ids, before.correct[:, 0], after.correct[:, 0]) if b and not a}
        assert d.evidence and set(d.evidence) <= lost and len(d.evidence) == min(20, len(lost))
        assert d.value == pytest.approx(-len(lost) / before.n_items)


def test_accuracy_mcnemar_matches_scipy(tmp_path_factory):
    # a change of spread moves easy questions up and hard ones down: both lost and gained questions
    specs = [RoundSpec(spread=0.4), RoundSpec(spread=1.2, test_p=0.55), RoundSpec(spread=1.0, test_p=0.5)]
    path = write(tmp_path_factory, specs)
    ms, run = measure("drift.accuracy", path), RunView(path)
    after = run.samples(2, "test", "greedy").correct[:, 0]
    for name, ref in (("delta_vs_round0", 0), ("delta_vs_previous", 1)):
        m = ms[f"test.greedy.{name}"]
        before = run.samples(ref, "test", "greedy").correct[:, 0]
        lost, gained = int(np.sum(before & ~after)), int(np.sum(~before & after))
        assert lost > 0 and gained > 0
        assert (m.details["lost"], m.details["gained"]) == (lost, gained)
        assert m.details["mcnemar_p"] == pytest.approx(binomtest(lost, lost + gained, 0.5).pvalue, rel=1e-9)
        last = {"round": 2, "lost": lost, "gained": gained, "p": m.details["mcnemar_p"]}
        assert m.details["mcnemar_series"][-1] == last
        assert m.value == pytest.approx((gained - lost) / len(before))
    assert ms["test.greedy"].value == pytest.approx(after.mean())


# --------------------------------------------------------------------------------------- answer JS


def scipy_js(x, y) -> float:
    cx, cy = Counter(x.tolist()), Counter(y.tolist())
    support = sorted(set(cx) | set(cy))
    p, q = [cx[v] / len(x) for v in support], [cy[v] / len(y) for v in support]
    return float(jensenshannon(p, q, base=np.e) ** 2)


def test_answer_js_matches_scipy(clean):
    ms, run = measure("drift.answer_js", clean), RunView(clean)
    a = {r: run.samples(r).answers for r in run.rounds}
    h = a[0].shape[1] // 2
    for label, ref in (("js_vs_round0", 0), ("js_vs_previous", 1)):
        raw = [scipy_js(x, y) for x, y in zip(a[ref], a[2])]
        assert ms[label].value == pytest.approx(np.mean(raw), abs=1e-12)
        excess = [np.mean([scipy_js(u, v) for u in (x[:h], x[h:]) for v in (y[:h], y[h:])])
                  - (scipy_js(x[:h], x[h:]) + scipy_js(y[:h], y[h:])) / 2 for x, y in zip(a[ref], a[2])]
        assert ms[f"{label}.excess"].value == pytest.approx(np.mean(excess), abs=1e-12)
    assert ms["js_vs_round0"].series[1].value == pytest.approx(np.mean([scipy_js(x, y) for x, y in zip(a[0], a[1])]))


def test_answer_js_noise_floor_is_not_drift(clean):
    ms = measure("drift.answer_js", clean)
    raw, excess = ms["js_vs_round0"], ms["js_vs_round0.excess"]
    assert raw.ci_low > 0.05  # two draws of 8 samples from the same model already differ ...
    assert excess.ci_low <= 0 <= excess.ci_high and abs(excess.value) < 0.02  # ... and the excess removes it


def test_answer_js_excess_is_calibrated(tmp_path_factory):
    """Over independent clean runs the excess is centred on 0: its z-scores average near 0 and it fires
    about 5% of the time (a baseline at another sample size, e.g. full-k JS minus half-k JS, fails)."""
    zs, fired = [], 0
    for seed in range(8):
        path = write(tmp_path_factory, clean_rounds(2), seed=seed, n_pool=100, n_test=20, n_ood=20, n_ref=20)
        m = measure("drift.answer_js", path)["js_vs_round0.excess"]
        zs.append(m.value / ((m.ci_high - m.ci_low) / 3.92))
        fired += m.fires
    assert fired <= 2 and abs(np.mean(zs)) < 1.5, zs


@FEW
@given(attractor=st.floats(0.6, 1.0), basin=st.floats(0.2, 0.8), drop=st.floats(0.0, 0.2))
def test_answer_js_fires_on_a_collapse(tmp_path_factory, attractor, basin, drop):
    specs = [RoundSpec(attractor=0.0), RoundSpec(attractor=attractor, basin_share=basin, p_correct=0.6 - drop)]
    ms = measure("drift.answer_js", write(tmp_path_factory, specs))
    for label in ("js_vs_round0", "js_vs_previous"):
        m = ms[f"{label}.excess"]
        assert m.fires and m.value > 0 and m.concern == "increase" and m.evidence


# ------------------------------------------------------------------------------------ reference NLL


def per_token(path, r):
    """(text ids, NLL per token) of round r, read straight from reference.jsonl."""
    with open(RunStore(path).round_dir(r) / "reference.jsonl") as f:
        rows = [json.loads(line) for line in f]
    rows.sort(key=lambda x: x["text_id"])
    return [x["text_id"] for x in rows], [x["nll"] / x["n_tokens"] for x in rows]


@FEW
@given(shift=st.floats(0.05, 0.5))
def test_reference_nll_fires_on_a_shift(tmp_path_factory, shift):
    path = write(tmp_path_factory, [RoundSpec(), RoundSpec(ref_shift=shift)])
    ms = measure("drift.reference_nll", path)
    d = ms["nll_per_token.delta_vs_round0"]
    assert d.fires and d.value == pytest.approx(shift, abs=0.01)
    _, after = per_token(path, 1)
    assert ms["nll_per_token"].value == pytest.approx(statistics.fmean(after))
    q = statistics.quantiles(after, n=20, method="inclusive")  # same interpolation as numpy's default
    last = ms["nll_per_token"].details["quantiles"][-1]
    assert (last["q05"], last["q50"], last["q95"]) == pytest.approx((q[0], statistics.median(after), q[18]))


@FEW
@given(tail=st.floats(0.1, 0.3))
def test_reference_tail_mass_fires_on_a_tail(tmp_path_factory, tail):
    path = write(tmp_path_factory, [RoundSpec(), RoundSpec(ref_tail=tail)])
    m = measure("drift.reference_nll", path)["tail_mass"]
    ids, before = per_token(path, 0)
    _, after = per_token(path, 1)
    threshold = statistics.quantiles(before, n=20, method="inclusive")[18]
    assert m.details["threshold"] == pytest.approx(threshold)
    assert m.value == pytest.approx(sum(v > threshold for v in after) / len(after))
    n_tail = round(tail * len(ids))
    assert m.fires and m.null == pytest.approx(0.05) and n_tail / len(ids) <= m.value <= (n_tail + 6) / len(ids)
    # evidence: texts newly in the tail, the planted ones (the synthetic run pushes the first texts by
    # +2 nats/token) ahead of any that cross the threshold by noise
    planted = [t for i, t in enumerate(ids[:n_tail]) if before[i] <= threshold]
    assert planted and set(m.evidence[:len(planted)]) <= set(planted) and len(m.evidence) >= min(20, len(planted))
    assert all(before[ids.index(t)] <= threshold < after[ids.index(t)] for t in m.evidence)


def test_reference_tail_quantile_is_a_parameter(clean):
    m = measure("drift.reference_nll", clean, tail_quantile=0.9)["tail_mass"]
    assert m.null == pytest.approx(0.1) and m.ci_low <= 0.1 <= m.ci_high and not m.fires


# ------------------------------------------------------------------------------------------ length


@pytest.mark.parametrize("grow", [True, False])
@settings(FEW, max_examples=3)
@given(extra=st.integers(3, 30))
def test_length_fires_either_way(tmp_path_factory, grow, extra):
    specs = [RoundSpec(extra_tokens=0), RoundSpec(extra_tokens=extra)]
    ms = measure("drift.length", write(tmp_path_factory, specs if grow else specs[::-1]))
    d = ms["length.delta_vs_round0"]
    assert d.fires and d.concern == "either"
    assert d.value == pytest.approx((extra + 1) * (1 if grow else -1), abs=0.5)  # the filler line and its newline
    assert not ms["unfinished.delta_vs_round0"].fires


def test_unfinished_share_fires(tmp_path_factory):
    path = write(tmp_path_factory, clean_rounds(2))
    file = RunStore(path).round_dir(1) / "samples.jsonl"
    rows = [json.loads(line) for line in file.read_text().splitlines()]
    rng = np.random.default_rng(0)
    for row in rows:  # plant: a fifth of round 1's samples hit the token budget
        if rng.uniform() < 0.2:
            row["finished"] = False
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reseal_round(path, 1)
    ms = measure("drift.length", path)
    m = ms["unfinished.delta_vs_round0"]
    assert m.fires and m.value == pytest.approx(sum(not r["finished"] for r in rows) / len(rows))
    assert ms["unfinished"].value == pytest.approx(m.value)


# -------------------------------------------------------------------------------------------- speed


def test_family_is_fast(tmp_path_factory):
    path = write(tmp_path_factory, clean_rounds(4), n_pool=500, n_test=200, n_ood=100)
    run = RunView(path)
    t0 = time.process_time()  # CPU time, loading the artifacts included: robust to a busy machine
    for pid in DRIFT:
        get_probe(pid)().measure(run)
    assert time.process_time() - t0 < 2.0
