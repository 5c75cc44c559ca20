"""Degenerate measurements: a measurement with nothing to detect says why (`Measurement.degenerate`), is never
tested or firing, fails any gate on it instead of passing vacuously, and reports mark it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from probes import Measurement, Probe, RunView, SeriesPoint, correct, get_probe, run_probes, stats
from probes.gates import GateSpec, difference_measurement, evaluate
from probes.testing import clean_rounds, crank_rounds, write_synthetic_run
from reports.build import build_report, gate_row
from reports.compare import compare
from reports.html import render_html
from reports.markdown import render_markdown
from reports.sources import expand
from tests.probe_runs import hand_run

SIZES = {"n_pool": 40, "n_test": 30, "n_ood": 12, "n_ref": 8, "k": 4, "eval_k": 4}
# every question right, every sample agreeing, in every round: nothing varies
PERFECT = clean_rounds(3, p_correct=1.0, spread=0.0, majority_share=1.0, test_p=1.0, ood_p=1.0)
SATURATED = "every item is 1 in every round (30 items, rounds 0-2)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("degenerate")
    out = {"perfect": write_synthetic_run(root / "perfect", PERFECT, **SIZES),
           "clean": write_synthetic_run(root / "clean", clean_rounds(3), **SIZES),
           "crank": write_synthetic_run(root / "crank", crank_rounds(3), **SIZES)}
    out["perfect-copy"] = Path(shutil.copytree(out["perfect"], root / "perfect-copy"))
    return out


def measured(path: Path, pid: str) -> dict[str, Measurement]:
    return {m.name: m for m in get_probe(pid)().measure(RunView(path))}


class Plain(Probe):
    """A probe to make measurements with."""

    id, family = "test.plain", "drift"


# ---------------------------------------------------------------- the rule


def test_a_quantity_that_never_varies_is_degenerate_with_its_reason(runs):
    accuracy = measured(runs["perfect"], "drift.accuracy")
    for name in ("test.greedy", "test.greedy.delta_vs_round0", "test.greedy.delta_vs_previous"):
        assert accuracy[name].degenerate == SATURATED, name
    # a share of an event of the vote rests on the votes: every majority right and unanimous in every round
    rate = measured(runs["perfect"], "cw.rate")["rate.delta_vs_round0"]
    assert rate.degenerate == ("every question's (majority right, vote share) is 1 in every round "
                               "(40 questions, rounds 0-2)")


def test_an_exact_zero_from_items_that_vary_is_not_degenerate(runs):
    # greedy decodings of an unchanged model: the change is exactly 0 with a zero-width CI, as in the
    # null_loop suite, but the items differ (some right, some wrong), so it measured something
    delta = measured(runs["clean"], "drift.accuracy")["test.greedy.delta_vs_round0"]
    assert (delta.value, delta.ci_low, delta.ci_high) == (0.0, 0.0, 0.0)
    assert delta.degenerate is None


def test_an_event_that_never_happens_while_what_decides_it_varies_is_a_finding(runs, tmp_path):
    # no synthetic sample runs out of budget, while completion lengths vary: `unfinished` is 0 [0, 0] in
    # every round (as on the smoke suite, whose gate bounds it) and meaningful
    unfinished = measured(runs["clean"], "drift.length")["unfinished"]
    assert [p.value for p in unfinished.series] == [0.0, 0.0, 0.0] and unfinished.ci_high == 0.0
    assert unfinished.degenerate is None
    # where every completion has the same length in every round, it has nothing to detect
    hand = hand_run(tmp_path / "hand", [[[10, 10, 11, 10]] * 3] * 2)
    assert measured(hand, "drift.length")["unfinished"].degenerate == (
        "every completion's length is 3 in every round (3 questions, rounds 0-1)")


def test_no_measurement_of_the_library_controls_is_degenerate(runs):
    for name in ("clean", "crank"):
        results = run_probes(RunView(runs[name]))
        assert [(m.probe, m.name) for m in results.measurements if m.degenerate] == [], name


def test_the_automatic_rule_reads_records_else_a_constant_series_of_zero_width_cis():
    probe, ids = Plain(), [f"q{i}" for i in range(5)]
    same = stats.mean_ci(np.zeros(5), seed=0, ids=ids)
    varied = stats.mean_ci(np.array([0.0, 0.0, 0.0, 0.0, 1.0]), seed=0, ids=ids)
    assert probe.measurement("x", same, round=0).degenerate == "every item is 0 in every round (5 items)"
    assert probe.measurement("x", varied, round=0).degenerate is None
    # a legitimate exact 0 with a wide CI is not degenerate
    assert probe.measurement("x", 0.0, ci_low=-0.2, ci_high=0.2).degenerate is None
    flat = [SeriesPoint(round=r, value=0.5, ci_low=0.5, ci_high=0.5) for r in range(3)]
    assert probe.measurement("x", 0.5, ci_low=0.5, ci_high=0.5, series=flat).degenerate == (
        "its value is 0.5 with a zero-width CI in every round")
    moving = [*flat[:2], SeriesPoint(round=2, value=0.6, ci_low=0.6, ci_high=0.6)]
    assert probe.measurement("x", 0.6, ci_low=0.6, ci_high=0.6, series=moving).degenerate is None
    # a probe that knows better decides
    assert probe.measurement("x", same, round=0, degenerate=None).degenerate is None
    assert probe.measurement("x", varied, round=0, degenerate="its prompt breaks the model").degenerate == (
        "its prompt breaks the model")


# ---------------------------------------------------------------- consequences


def test_a_degenerate_measurement_is_never_tested_and_never_fires():
    probe = Plain()
    firing = probe.measurement("up", 0.5, ci_low=0.4, ci_high=0.6, concern="increase", degenerate=None)
    idle = probe.measurement("up", 0.5, ci_low=0.4, ci_high=0.6, concern="increase", degenerate="nothing varies")
    alarm = probe.measurement("alarm", None, alarm=True, details={"alarm_p": 0.001}, degenerate="nothing varies")
    assert firing.tested and firing.fires
    assert not idle.tested and not idle.fires and not idle.fires_uncorrected and idle.p_value is not None
    assert not alarm.tested and not alarm.fires
    corrected, summary = correct([firing, idle, alarm])
    assert summary.tested == 1 and summary.firing == 1
    assert [m.fires for m in corrected] == [True, False, False] and corrected[1].p_adjusted is None


def test_a_gate_on_a_degenerate_measurement_fails_with_the_reason(runs):
    gate = GateSpec(probe="drift.accuracy", stat="test.greedy", min=0.5)  # 1.0 would hold it
    perfect = run_probes(RunView(runs["perfect"]), {"drift.accuracy": {}})
    result = evaluate(gate, "default", perfect.measurements)
    assert not result.passed and result.observed == 1.0
    assert result.message.startswith(f"[default] drift.accuracy: test.greedy >= 0.5: test.greedy is degenerate: "
                                     f"{SATURATED}, so the gate cannot hold; value 1")
    clean = run_probes(RunView(runs["clean"]), {"drift.accuracy": {}})
    assert evaluate(gate, "default", clean.measurements).passed


def test_a_difference_gate_fails_only_when_both_conditions_are_degenerate(runs):
    gate = GateSpec(probe="drift.accuracy", stat="test.greedy", condition="b", baseline="a", min=-0.5)
    selection = {"drift.accuracy": {}}
    perfect, copy, clean = (run_probes(RunView(runs[n]), selection) for n in ("perfect", "perfect-copy", "clean"))
    both = difference_measurement(gate, perfect, copy)
    assert both.degenerate == f"in both (a: {SATURATED}; b: {SATURATED})"
    result = evaluate(gate, "b", both)
    assert not result.passed and "is degenerate: in both (a: every item is 1" in result.message
    one = difference_measurement(gate, clean, perfect)  # the clean side varies: there is something to compare
    assert one.degenerate is None and evaluate(gate, "b", one).passed


# ---------------------------------------------------------------- reports


def test_reports_mark_degenerate_measurements_and_count_none_as_firing(runs):
    report = build_report(runs["perfect"], write_probes=False)
    rows = [m for s in report.sections for p in s.probes for m in p.measurements]
    idle = [m for m in rows if m.degenerate is not None]
    assert idle and not any(m.fires for m in idle)
    assert report.verdict.degenerate == len(idle)
    md, html = render_markdown(report), render_html(report)
    assert f"| degenerate: {SATURATED} |" in md
    assert f"{report.verdict.measurements} measurements in all ({len(idle)} degenerate)" in md
    assert f"degenerate: {SATURATED}</span>" in html and '<tr class="degenerate">' in html
    # a gate on one: the gate row says so
    gate = GateSpec(probe="drift.accuracy", stat="test.greedy", min=0.5)
    result = evaluate(gate, "default", run_probes(RunView(runs["perfect"]), {"drift.accuracy": {}}).measurements)
    gated = report.model_copy(update={"gates": [gate_row(result)]})
    assert f"`drift.accuracy: test.greedy >= 0.5` (degenerate: {SATURATED})" in render_markdown(gated)
    assert "<b>degenerate</b>" in render_html(gated)


def test_compare_leaves_differences_degenerate_in_both_runs_out_of_its_family(runs):
    pair = compare(expand([runs["perfect"], runs["perfect-copy"]])).pairs[0]
    greedy = next(d for d in pair.differences if d.probe == "drift.accuracy" and d.measurement == "test.greedy")
    assert greedy.degenerate is not None and greedy.degenerate.startswith("in both (") and not greedy.significant
    assert greedy.p_adjusted is None
    idle = sum(d.degenerate is not None for d in pair.differences)
    assert pair.correction.endswith(f"; {idle} degenerate in both runs, not tested")
    headline = next(h for h in pair.headlines if h.metric == "test_accuracy")
    assert headline.verdict.startswith("test accuracy: degenerate in both (")
