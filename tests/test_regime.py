"""forecast.regime (the regime called from rounds 0-1, scored against the last round) on planted regimes,
and gates across conditions (`across = "mean"`): a hit rate over a map of conditions with Wilson's interval
(checked against scipy), a mean of other values with a bootstrap CI, and what a suite refuses."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from harness.app.suite import SuiteError, parse_suite
from probes import RunView, get_probe, run_probes
from probes.gates import GateSpec, across_measurement, evaluate, wilson_interval
from probes.testing import RoundSpec, clean_rounds, crank_rounds, write_synthetic_run
from tests.test_suite import TINY

PLANTED = {
    "improving": [RoundSpec(test_p=p, p_correct=p) for p in (0.4, 0.5, 0.6, 0.7)],
    "crank": crank_rounds(4),
    "drift": clean_rounds(4),
    "late_improver": [RoundSpec(test_p=p) for p in (0.5, 0.5, 0.6, 0.75)],  # flat at round 1: called drift
}
EXPECTED = {"improving": (1, 1), "crank": (-1, -1), "drift": (0, 0), "late_improver": (0, 1)}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("regimes")
    return {name: run_probes(RunView(write_synthetic_run(root / name, spec, seed=0)), {"forecast.regime": {}})
            for name, spec in PLANTED.items()}


def by_name(results, name):
    return {m.name: m for m in results[name].measurements if m.probe == "forecast.regime"}


@pytest.mark.parametrize("name", list(PLANTED))
def test_the_call_and_the_final_regime_of_planted_runs(results, name):
    m = by_name(results, name)
    assert (m["call"].value, m["final"].value) == EXPECTED[name]
    assert m["hit"].value == float(EXPECTED[name][0] == EXPECTED[name][1])
    assert m["call"].details["call"]["rounds"] == [0, 1] and m["final"].details["final"]["rounds"] == [0, 3]


def test_a_run_too_short_to_score_a_call_is_degenerate(tmp_path):
    view = RunView(write_synthetic_run(tmp_path / "two", clean_rounds(2), seed=0))
    assert all(m.degenerate for m in get_probe("forecast.regime")().measure(view))


def test_the_hit_rate_across_conditions_has_wilsons_interval(results):
    gate = GateSpec(probe="forecast.regime", stat="hit", across="mean", min=0.5)
    m = across_measurement(gate, results)
    assert m.value == 0.75 and m.details["method"] == "Wilson score interval"
    ci = binomtest(3, 4).proportion_ci(method="wilson")
    assert (m.ci_low, m.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert evaluate(gate, "every condition", m).passed
    only = across_measurement(gate.model_copy(update={"condition": "*i*"}), results)  # improving, drift, late_improver
    assert only.details["conditions"] == 3 and only.value == pytest.approx(2 / 3)
    calls = across_measurement(GateSpec(probe="forecast.regime", stat="call", across="mean", max=1), results)
    assert calls.details["method"] == "bootstrap over conditions" and calls.value == 0.0


def test_a_suite_refuses_an_across_gate_that_matches_too_few_or_has_a_baseline():
    head = TINY.format(seeds="[3]", gates="")
    arms = '[[conditions]]\nname = "a"\n\n[[conditions]]\nname = "b"\n\n'
    gate = '[[gates]]\nprobe = "cw.rate"\nstat = "rate"\nacross = "mean"\nmax = 1\n'
    assert len(parse_suite(head + arms + gate, "s.toml").gates) == 1
    with pytest.raises(SuiteError, match="matches 1 condition"):
        parse_suite(head + arms + gate + 'condition = "a"\n', "s.toml")
    with pytest.raises(SuiteError, match="takes no baseline"):
        parse_suite(head + arms + gate + 'condition = "a*"\nbaseline = "b"\n', "s.toml")
