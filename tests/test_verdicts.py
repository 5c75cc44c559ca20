"""Verdicts you can trust: per-item records behind every statistic, paired comparisons, definitions checked
before anything is compared, false alarms controlled, seeds that cannot be forgotten, no stale results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from harness.app.suite import SuiteError, parse_suite
from harness.app.suite_runner import check_suite, run_suite
from harness.artifacts import RunError
from harness.integrity import write_checked_json
from probes import (
    Probe,
    RunView,
    get_probe,
    probe,
    read_results,
    registry,
    results_for,
    run_probes,
    stats,
    write_results,
)
from probes._api import _REGISTRY
from probes.testing import clean_rounds, crank_rounds, write_synthetic_run
from reports.compare import compare
from reports.sources import expand
from tests.test_suite import TAU_ARMS, TINY

SMALL = {"n_pool": 120, "n_test": 80, "n_ood": 20, "n_ref": 10}

TWO_ARMS = TINY.format(seeds="[3]", gates="").replace("steps = 40", "steps = 600").replace('''[probes]
include = ["cw.rate", "attractor.answer_entropy", "drift.accuracy", "drift.length"]
''', "") + TAU_ARMS + '''
[[gates]]
probe = "drift.accuracy"
stat = "test.greedy"
condition = "tau09"
baseline = "tau05"
round = 0
min = 0
max = 0
use = "ci_high"
'''


@pytest.fixture(scope="module")
def two_arms(tmp_path_factory):
    """A real suite: two arms that differ only in the selection tau, so they share their base model (600 base
    steps: enough for tau 0.5 to select at round 0, ~20 s)."""
    root = tmp_path_factory.mktemp("arms")
    suite = parse_suite(TWO_ARMS)
    return suite, root / "out", run_suite(suite, root / "out", root / "cache")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdict-runs")
    return {"clean": write_synthetic_run(root / "clean", clean_rounds(4), seed=0, **SMALL),
            "crank": write_synthetic_run(root / "crank", crank_rounds(), seed=0, **SMALL),
            "clean-seed1": write_synthetic_run(root / "clean-seed1", clean_rounds(4), seed=1, **SMALL)}


# ---------------------------------------------------------------- paired, exact where nothing differs


def test_arms_that_share_a_base_differ_by_exactly_zero_at_round_0(two_arms):
    _suite, out, outcome = two_arms
    pair = compare(expand([out])).pairs[0]
    at0 = [d for d in pair.differences if d.round == 0 and d.diff is not None]
    reads_selection = {pid for pid, cls in registry().items() if "selected" in cls.reads}
    model = [d for d in at0 if d.probe not in reads_selection]
    assert len(model) > 40 and {d.probe for d in model} >= {"cw.rate", "drift.accuracy", "attractor.basins"}
    for d in model:  # every measurement of the shared base model, tau 0.5 vs 0.9 included
        assert (d.diff, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0), d
        assert not d.significant
    # the arms *select* differently at round 0: that is their treatment, and it is measured, not hidden
    selection = [d for d in pair.differences if d.round == 0 and d.probe in reads_selection]
    assert selection and all(d.method != "identical_inputs" for d in selection)
    # and the arms really part after round 0: round 1 is compared on paired items, not as identical
    assert any(d.round == 1 and d.method == "paired" for d in pair.differences)
    assert not pair.refused and not pair.recomputed
    # the difference gate encodes it, paired on the records
    gate = outcome.gates[0]
    assert gate.passed and gate.measurement.value == 0 and gate.measurement.details["method"] == "identical_inputs"


def test_difference_gates_pair_per_item_records(two_arms, tmp_path):
    _suite, out, _ = two_arms
    text = TWO_ARMS.replace("round = 0\n", "round = 1\n").replace("use = \"ci_high\"", "use = \"value\"")
    text = text.replace("min = 0\nmax = 0\n", "min = -1\nmax = 1\n")
    outcome = check_suite(parse_suite(text), out)
    m = outcome.gates[0].measurement
    assert m.round == 1 and m.details["method"] in ("paired", "identical_inputs")
    assert "[tau09 − tau05 at round 1]" in outcome.gates[0].message and not outcome.gates[0].message.startswith("[")


@pytest.mark.parametrize("gate, error", [
    ('baseline = "tau05"\nmax = 0.1', "needs the condition"),
    ('condition = "tau09"\nbaseline = "tau5"\nmax = 0.1', "key gates.0.baseline: unknown condition 'tau5'"),
    ('condition = "tau09"\nbaseline = "tau05"\nround = 7\nmax = 0.1', "key gates.0.round: round 7 is beyond"),
    ('max = nan', "finite"),
    ('round = 1\nmax = 0.1', "round applies to difference gates"),
])
def test_bad_difference_gates_are_one_line_errors(gate, error):
    head = TWO_ARMS[:TWO_ARMS.index("[[gates]]")]
    with pytest.raises(SuiteError) as e:
        parse_suite(head + f'[[gates]]\nprobe = "cw.rate"\nstat = "rate"\n{gate}\n', "s.toml")
    assert error in str(e.value) and "\n" not in str(e.value)


def test_records_recompute_every_value_they_stand_behind(runs):
    results = run_probes(RunView(runs["crank"]))
    checked = 0
    for m in results.measurements:
        for p in m.series:
            if p.items is not None and p.value is not None:
                assert p.items.value == pytest.approx(p.value, abs=1e-12), (m.probe, m.name, p.round)
                checked += 1
    assert checked > 150
    with_ci = [m for m in results.measurements if m.ci_low is not None]
    without = sorted({m.probe for m in with_ci if not m.item_records()})
    # pool-level statistics (halves), a round found by a rule (its CI: the rule over resamples), z-scores, a
    # skill against a fit refitted in every resample
    assert without == ["attractor.basins", "attractor.collapse_step", "attractor.rationale_diversity", "drift.spike",
                       "forecast.skill"]


def test_sidecar_round_trips_is_deterministic_and_verified(runs, tmp_path):
    run = Path(shutil.copytree(runs["crank"], tmp_path / "run"))
    results = run_probes(RunView(run))
    write_results(run, results)
    first = (run / "probes.items.npz").read_bytes()
    write_results(run, run_probes(RunView(run)))
    assert (run / "probes.items.npz").read_bytes() == first  # same results, same bytes
    back = read_results(run)
    assert set(back.records()) == set(results.records())
    key = ("cw.rate", "rate.delta_vs_round0", 3)
    np.testing.assert_array_equal(back.records()[key].columns, results.records()[key].columns)
    (run / "probes.items.npz").write_bytes(first[:-10] + b"0123456789")
    with pytest.raises(RunError, match=r"probes.items.npz: sha256 .* does not match"):
        read_results(run)


class _MajorityAccuracy(Probe):
    """Accuracy of the pool majority vote (a probe written against the public API only)."""

    id, family, reads = "test.majority_accuracy", "confident_wrong", ("samples",)

    def measure(self, run):
        ids = run.samples(run.rounds[0]).question_ids

        def right(r):
            t = run.samples(r)
            return stats.row_mode(t.answers, t.parsed)[0] == t.truth

        return self.tracked("majority_accuracy", run, right, ids, concern="decrease")


@pytest.fixture
def custom_probe():
    probe(_MajorityAccuracy)
    yield _MajorityAccuracy
    _REGISTRY.pop(_MajorityAccuracy.id)


def test_a_custom_probe_is_compared_paired(runs, custom_probe, tmp_path):
    a, b = (Path(shutil.copytree(runs[n], tmp_path / n)) for n in ("clean", "crank"))
    for run in (a, b):
        write_results(run, run_probes(RunView(run), {custom_probe.id: {}, "drift.accuracy": {}}))
    pair = compare(expand([a, b])).pairs[0]
    mine = [d for d in pair.differences if d.probe == custom_probe.id]
    assert mine and all(d.method == "paired" and d.n_items == SMALL["n_pool"] for d in mine)
    last = next(d for d in mine if d.measurement == "majority_accuracy" and d.round == 3)
    assert last.significant and last.worse == "crank" and last.p_value is not None  # McNemar on yes/no items
    at0 = next(d for d in mine if d.measurement == "majority_accuracy" and d.round == 0)
    assert (at0.diff, at0.ci_low, at0.ci_high) == (0.0, 0.0, 0.0)  # same world, same round-0 model


# ---------------------------------------------------------------- definitions


def test_compare_recomputes_under_one_definition(runs, tmp_path):
    a, b = (Path(shutil.copytree(runs[n], tmp_path / n)) for n in ("clean", "crank"))
    write_results(a, run_probes(RunView(a), {"cw.rate": {"tau": 0.5}}))
    write_results(b, run_probes(RunView(b), {"cw.rate": {"tau": 0.9}}))
    pair = compare(expand([a, b])).pairs[0]
    assert any(r.startswith("cw.rate on B: other parameters (tau: 0.9 → 0.5)") for r in pair.recomputed)
    rate0 = next(d for d in pair.differences if (d.probe, d.measurement, d.round) == ("cw.rate", "rate", 0))
    assert rate0.diff == 0.0 and (rate0.ci_low, rate0.ci_high) == (0.0, 0.0)  # one world, one definition


def test_compare_refuses_other_settings_and_other_domains(runs, tmp_path):
    a = runs["clean"]
    b = Path(shutil.copytree(runs["clean"], tmp_path / "k16"))
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["config"]["loop"]["temperature"] = 1.3
    write_checked_json(b / "manifest.json", manifest)
    pair = compare(expand([a, b])).pairs[0]
    refused = {r.probe: r.reason for r in pair.refused}
    assert "temperature" in refused["cw.rate"] and "drift.reference_nll" not in refused
    assert not any(d.probe == "cw.rate" for d in pair.differences)
    manifest["config"]["domain"] = {"name": "word_problems"}
    write_checked_json(b / "manifest.json", manifest)
    shutil.rmtree(b / "probes.json", ignore_errors=True)
    pair = compare(expand([a, b])).pairs[0]
    assert "different questions" in pair.note and not pair.differences and not pair.headlines


# ---------------------------------------------------------------- false alarms


def test_adjusted_p_values_match_scipy_and_the_holm_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 1, size=rng.integers(1, 40)) ** 3
        np.testing.assert_allclose(stats.adjust_p(p, "bh"), scipy.stats.false_discovery_control(p))
        order = np.argsort(p)
        holm = np.empty_like(p)
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (len(p) - rank) * p[i]))
            holm[i] = running
        np.testing.assert_allclose(stats.adjust_p(p, "holm"), holm)


def test_p_from_ci_agrees_with_the_ci_and_fires_follows_the_adjusted_p(runs):
    results = run_probes(RunView(runs["crank"]))
    tested = [m for m in results.measurements if m.tested]
    assert len(tested) > 30 and results.correction.tested == len(tested)
    for m in tested:
        if m.alarm is not None:  # a conjunction's own rule, with its intersection-union p
            assert m.fires == (m.alarm and m.p_adjusted <= 0.05) and m.p_value == m.details["alarm_p"]
            continue
        excludes = m.ci_low > m.null or m.ci_high < m.null
        assert (m.p_value < 0.05) == excludes or abs(m.p_value - 0.05) < 1e-9, m
        side = {"increase": m.value > m.null, "decrease": m.value < m.null, "either": m.value != m.null}[m.concern]
        assert m.fires == (side and m.p_adjusted <= 0.05)
    assert results.correction.firing <= results.correction.firing_uncorrected
    assert results.correction.describe().endswith("fire (BH, q ≤ 0.05)")
    holm = run_probes(RunView(runs["crank"]), correction="holm")
    assert holm.correction.firing <= results.correction.firing  # Holm is the stricter


def false_alarms(root: Path, n_runs: int, **sizes) -> tuple[int, int]:
    """Runs (of n_runs clean synthetic ones: exchangeable rounds of one model) with any firing measurement,
    (before, after) the false-alarm correction."""
    before = after = 0
    for seed in range(n_runs):
        run = write_synthetic_run(root / f"clean-{seed}", clean_rounds(3), seed=seed, **sizes)
        results = run_probes(RunView(run))
        before += any(m.fires_uncorrected for m in results.measurements)
        after += any(m.fires for m in results.measurements)
    return before, after


def test_clean_synthetic_runs_rarely_fire_after_the_correction(tmp_path):
    before, after = false_alarms(tmp_path, 10, n_pool=120, n_test=80, n_ood=20, n_ref=100)
    assert before >= 3 and after <= 1, (before, after)  # uncorrected, most runs raise something


@pytest.mark.slow
def test_false_alarm_rate_over_100_clean_runs(tmp_path):
    before, after = false_alarms(tmp_path, 100)  # the synthetic default sizes (200 pool, 200 test, ...)
    print(f"false alarms over 100 clean synthetic runs: {before} before, {after} after BH")
    assert after <= 5 < before


# ---------------------------------------------------------------- seeds


def test_the_bootstrap_seed_reaches_every_ci(tmp_path, monkeypatch):
    from probes.library import attractors

    view = RunView(write_synthetic_run(tmp_path / "big", crank_rounds(3), seed=0, n_pool=300, n_test=300,
                                       n_ood=150, n_ref=150))
    seen = []  # the seed of every resampling draw a probe makes
    real_indices, real_halves = stats.resample_indices, attractors.halves
    monkeypatch.setattr(stats, "resample_indices", lambda n, n_boot=stats.N_BOOT, *, seed: (
        seen.append(seed), real_indices(n, n_boot, seed=seed))[1])
    monkeypatch.setattr(attractors, "halves", lambda m, n_boot, seed: (
        seen.append(seed), real_halves(m, n_boot, seed))[1])

    def cis(seed: int) -> dict:
        seen.clear()
        out = {(m.probe, m.name): (m.ci_low, m.ci_high) for pid in registry()
               for m in get_probe(pid)(seed=seed).measure(view) if m.ci_low is not None}
        assert seen and set(seen) == {seed}, (seed, sorted(set(seen)))  # every draw used the probe's seed
        return out

    a, again, other = cis(0), cis(0), cis(7)
    assert repr(sorted(a.items())) == repr(sorted(again.items()))  # the same seed: the same bytes
    moving = {k for k, (lo, hi) in a.items() if hi > lo}
    # a CI of a share of few items lives on a coarse grid, so another seed may land on the same bounds
    changed = [k for k in moving if other[k] != a[k]]
    assert len(moving) > 40 and len(changed) >= 0.75 * len(moving), sorted(set(moving) - set(changed))


def test_stats_refuse_a_forgotten_seed():
    with pytest.raises(TypeError):
        stats.mean_ci(np.ones(3))  # type: ignore[call-arg]


# ---------------------------------------------------------------- stale results


def test_a_parameter_change_recomputes_only_that_probe(runs, tmp_path):
    run = Path(shutil.copytree(runs["crank"], tmp_path / "run"))
    view = RunView(run)
    selection = {"cw.rate": {}, "drift.accuracy": {}}
    first, why = results_for(view, run, selection)
    assert set(why) == {"cw.rate", "drift.accuracy"}
    same, why = results_for(RunView(run), run, selection)
    assert why == {} and same.model_dump() == first.model_dump()
    changed, why = results_for(RunView(run), run, {**selection, "cw.rate": {"tau": 0.9}})
    assert why == {"cw.rate": "parameters changed (tau)"}
    assert next(p for p in changed.probes if p.id == "cw.rate").params["tau"] == 0.9
    assert json.loads((run / "probes.json").read_text())["probes"][0]["params"]["tau"] == 0.9
    data = json.loads((run / "probes.json").read_text())
    data["probes"][1]["code"] = "0" * 64  # as if drift.accuracy's source had changed since
    write_checked_json(run / "probes.json", data)
    _, why = results_for(RunView(run), run, {**selection, "cw.rate": {"tau": 0.9}})
    assert why == {"drift.accuracy": "its code changed"}


def test_check_says_stale_and_recomputes(two_arms):
    _suite, out, _ = two_arms
    probes_json = out / "tau05" / "probes.json"
    data = json.loads(probes_json.read_text())
    data["probes"][0]["inputs"]["0"] = "f" * 64  # as if round 0's artifacts had changed
    write_checked_json(probes_json, data)
    _, why = results_for(RunView(out / "tau05" / "seed-3"), out / "tau05",
                         {p["id"]: p["params"] for p in data["probes"]})
    assert why == {data["probes"][0]["id"]: "the artifacts it reads changed"}


# ---------------------------------------------------------------- shipped suites: findings as gates


def test_every_shipped_suite_encodes_its_finding_as_gates():
    from harness.app.suite import load_suite
    from harness.app.verify import shipped

    for name, path in shipped().items():
        suite, text = load_suite(path), path.read_text()
        header = text[:text.index("[suite]")]
        assert len(suite.gates) >= 2, name
        assert "Question:" in header and "verify-suites" in header, name  # the question, how it was measured
        assert "Found:" in header or "INCOMPLETE" in header, name  # a measured finding, or said plainly: none
        if suite.suite.size == "small":
            assert suite.suite.expected_seconds, name  # verify-suites plans CI's time with it


def test_verify_suites_plans_within_a_budget_and_names_what_it_skips():
    from harness.app.verify import plan

    full = plan([], None, gpu=False)
    assert [n for n, _ in full.run][:2] == ["smoke", "null_loop"]
    assert {n for n, _ in full.skipped} == {"smollm2_lmsi", "smollm2_cpu"}  # large: GPU advised
    tight = plan([], 400, gpu=False)
    assert [n for n, _ in tight.run] == ["smoke"]
    assert any("does not fit the budget" in why for _, why in tight.skipped)
    with pytest.raises(SuiteError, match="no shipped suite 'smok'; did you mean 'smoke'"):
        plan(["smok"], None, gpu=False)
