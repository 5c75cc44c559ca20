"""The attractors family: hand-computed cases on tiny tables, positive controls on synthetic runs with the
effect planted (hypothesis draws the knobs and the world's seed), negative controls on exchangeable rounds."""

import itertools
import math
import tempfile
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from probes import ProbeError, RunView, SampleTable, get_probe, registry, run_probes
from probes.library.attractors import compression_ratio, distinct_n, halves, largest_basin, pass_curve, template
from probes.testing import BASIN_ANSWER, RoundSpec, clean_rounds, crank_rounds, write_synthetic_run

FAMILY = ["attractor.answer_entropy", "attractor.rationale_diversity", "attractor.fixed_points",
          "attractor.basins", "attractor.pass_at_k"]
# each example writes a run (~0.3 s): few examples, and no shrinking (a failing control reports as drawn)
CONTROL = settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SMALL = {"n_pool": 150, "n_test": 10, "n_ood": 10, "n_ref": 10}
M = SampleTable.missing


# ---------------------------------------------------------------- helpers


class FakeRun:
    """Just what the probes read of a RunView: rounds and each round's pool table."""

    def __init__(self, *tables: SampleTable):
        self.tables, self.rounds = tables, tuple(range(len(tables)))

    def samples(self, r, split="pool", decoding="sample"):
        return self.tables[r]


def table(answers, truth, completions=None) -> SampleTable:
    answers, truth = np.asarray(answers, dtype=np.int64), np.asarray(truth, dtype=np.int64)
    n, k = answers.shape
    parsed = answers != M
    comps = completions or tuple(tuple(f"A: {a}" for a in row) for row in answers)
    return SampleTable(tuple(f"q{i:02d}" for i in range(n)), answers, parsed, parsed & (answers == truth[:, None]),
                       np.zeros((n, k)), np.ones((n, k), np.int64), np.ones((n, k), bool), truth, tuple(comps))


def measure(probe_id, run, **params):
    return {m.name: m for m in get_probe(probe_id)(**params).measure(run)}


def synthetic(rounds, seed=0, **sizes):
    with tempfile.TemporaryDirectory() as d:
        run = RunView(write_synthetic_run(f"{d}/run", rounds, seed=seed, **{**SMALL, **sizes}))
        for r in run.rounds:  # load everything before the directory goes
            run.samples(r)
        return run


@pytest.fixture(scope="module")
def crank():
    return synthetic(crank_rounds())


@pytest.fixture(scope="module")
def clean():
    return synthetic(clean_rounds(), n_pool=200)


# ---------------------------------------------------------------- hand-computed cases


def test_family_is_registered_with_descriptions():
    known = registry()
    for pid in FAMILY:
        assert known[pid].family == "attractors" and known[pid].description()


def test_template_distinct_n_and_compression_by_hand():
    assert template("12+9=21\nA: 21") == "##+#=##\nA: ##"
    assert distinct_n([["abab"]], [2])[0] == pytest.approx(2 / 3)  # ab ba ab
    assert distinct_n([["ab", "ab"]], [2])[0] == pytest.approx(1 / 2)  # no n-gram spans two samples
    assert distinct_n([["abc", "bcd"]], [2])[0] == pytest.approx(3 / 4)  # ab bc | bc cd
    assert distinct_n([["abc", "bcd"]], [2, 3])[0] == pytest.approx((3 / 4 + 1) / 2)
    assert distinct_n([["a"], ["xyxy", "yx"]], [2]).tolist() == pytest.approx([0.0, 2 / 4])
    text = "5+7=12\nA: 12"
    assert compression_ratio(text) == len(zlib.compress(text.encode())) / len(text)
    rng = np.random.default_rng(0)
    noise = "".join(map(str, rng.integers(0, 10, 400)))
    assert compression_ratio(text * 40) < 0.2 < compression_ratio(noise)


@given(st.lists(st.lists(st.text(alphabet="ab1+=\n é", max_size=10), min_size=1, max_size=4), min_size=1,
                max_size=5), st.integers(1, 4))
def test_distinct_n_matches_a_brute_force_count_of_byte_ngrams(items, n):
    want = []
    for texts in items:
        grams = [t.encode()[i:i + n] for t in texts for i in range(len(t.encode()) - n + 1)]
        want.append(len(set(grams)) / len(grams) if grams else 0.0)
    assert distinct_n(items, [n]).tolist() == pytest.approx(want)


@given(st.integers(1, 7).flatmap(lambda k: st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=1,
                                                    max_size=6)))
def test_pass_at_k_matches_a_brute_force_count_of_subsets(correct):
    correct = np.array(correct)
    n, k = correct.shape
    brute = np.array([[np.mean([row[list(s)].any() for s in itertools.combinations(range(k), j)])
                       for j in range(1, k + 1)] for row in correct])
    answers = np.where(correct, 7, 8)
    assert pass_curve(table(answers, [7] * n)) == pytest.approx(brute)
    got = measure("attractor.pass_at_k", FakeRun(table(answers, [7] * n)))
    assert got["pass@1"].value == pytest.approx(brute[:, 0].mean())
    assert got["area"].value == pytest.approx(brute.mean())
    assert got["reversal"].alarm is False  # one round: nothing to compare


def test_reversal_alarm_by_hand():
    spread_out = table(np.tile([7, 7, 0, 0, 0, 0, 0, 0], (40, 1)), [7] * 40)  # every question 2/8 right
    sharpened = table(np.repeat([[7] * 8, [0] * 8], 20, axis=0), [7] * 40)  # half 8/8, half 0/8
    found = measure("attractor.pass_at_k", FakeRun(spread_out, sharpened))
    rev = found["reversal"]
    assert rev.alarm and rev.fires and set(rev.details["falling"]) == {"area", "pass@k"}
    assert rev.details["pass@1.delta_vs_round0"]["value"] == pytest.approx(0.25)
    assert rev.details["pass@k.delta_vs_round0"]["value"] == pytest.approx(-0.5)
    area0 = np.mean([1 - math.comb(6, j) / math.comb(8, j) for j in range(1, 9)])
    assert found["area.delta_vs_round0"].value == pytest.approx(0.5 - area0) and found["area.delta_vs_round0"].fires
    assert found["pass@k.delta_vs_round0"].fires
    assert not measure("attractor.pass_at_k", FakeRun(sharpened, spread_out))["reversal"].alarm  # pass@1 falls
    assert not measure("attractor.pass_at_k", FakeRun(spread_out, spread_out))["reversal"].alarm


def test_fixed_points_by_hand():
    truth = [1, 2, 3, 4, 5, 6]
    rounds = [[[1] * 4, [9] * 4, [7] * 4, [4, 4, 4, 3], [6, 6, 6, 5], [M] * 4],
              [[1] * 4, [9] * 4, [7] * 4, [6] * 4, [6, 6, 6, 5], [M] * 4],
              [[1] * 4, [9] * 4, [8] * 4, [6] * 4, [6, 6, 6, 5], [M] * 4]]
    run = FakeRun(*(table(a, truth) for a in rounds))
    got = measure("attractor.fixed_points", run)
    wrong = got["wrong_share"]
    assert wrong.value == pytest.approx(2 / 6) and wrong.evidence == ["q01", "q03"]
    assert [p.value for p in wrong.series] == pytest.approx([2 / 6, 2 / 6])  # pairs (0,1): q1 q2; (1,2): q1 q3
    assert got["right_share"].value == pytest.approx(1 / 6) and not got["right_share"].fires
    assert got["wrong_share.delta_vs_first_pair"].value == pytest.approx(0.0)
    loose = measure("attractor.fixed_points", run, threshold=0.75)["wrong_share"]
    assert loose.value == pytest.approx(3 / 6) and loose.evidence == ["q01", "q04", "q03"]  # longest stuck first
    single = measure("attractor.fixed_points", FakeRun(table(rounds[0], truth)))
    assert single["wrong_share"].value is None and not single["wrong_share"].fires


def test_basins_by_hand():
    truth = [10, 20, 30, 40, 50, 60]
    right = table(np.repeat(np.array(truth)[:, None], 3, axis=1), truth)
    answers = [[1000, 1000, 10], [5, 1000, 1000], [1000] * 3, [77, 77, 40], [50] * 3, [M] * 3]
    texts = [["1+1=2\nA: 1000", "1+1=2\nA: 1000", "A: 10"], ["x\nA: 5", "3+4=7\nA: 1000", "A: 1000"],
             ["12+4=16\nA: 1000"] * 3, ["1+2=3\nA: 77"] * 3, ["A: 50"] * 3, ["junk"] * 3]
    got = measure("attractor.basins", FakeRun(right, table(answers, truth, texts)))
    basin = got["answer_basin.largest_share"]
    assert basin.value == pytest.approx(3 / 6) and basin.evidence == ["q00", "q01", "q02"]
    assert basin.details["key"] == "1000" and basin.details["size"] == 3
    assert got["answer_basin.growth_vs_round0"].value == pytest.approx(3 / 6)
    shape = got["template_basin.largest_share"]  # q00 and q01's first 1000-sample share a shape; q02 is wider
    assert shape.value == pytest.approx(2 / 6) and shape.evidence == ["q00", "q01"]
    assert shape.details["key"] == "#+#=#\nA: ####"
    assert got["template_basin.largest_share"].series[0].value == 0.0
    assert largest_basin(np.array([0, 0, 1, -1]), np.array([[0, 1, 2, 3], [2, 3, 2, 3]])).tolist() == [0.5, 0.5]


def test_halves_draw_without_replacement():
    idx = halves(11, 30, seed=1)
    assert idx.shape == (30, 5) and all(len(set(row)) == 5 for row in idx) and idx.max() < 11


def _largest_basin_by_full_count(group, idx):
    """Every group counted in every subset: what largest_basin's pruned count must equal."""
    b, m = idx.shape
    n_groups = int(group.max(initial=-1)) + 1
    if n_groups == 0 or m == 0:
        return np.zeros(b)
    g = group[idx]
    rows = np.broadcast_to(np.arange(b)[:, None], g.shape)[g >= 0]
    return np.bincount(rows * n_groups + g[g >= 0], minlength=b * n_groups).reshape(b, n_groups).max(1) / m


def test_largest_basin_counts_exactly_what_counting_every_group_gives():
    rng = np.random.default_rng(0)
    for _ in range(300):
        m, n_groups, b = int(rng.integers(1, 400)), int(rng.integers(0, 60)), int(rng.integers(1, 40))
        group = rng.integers(-1, n_groups, size=m) if n_groups else np.full(m, -1)
        if rng.random() < 0.5 and n_groups > 2:  # a few large groups of near-equal size: the pruning's hard case
            group = np.where(rng.random(m) < 0.5, rng.integers(0, 3, size=m), group)
        idx = np.argsort(rng.random((b, m)), axis=1)[:, :max(m // 2, 1)]
        assert np.array_equal(largest_basin(group, idx), _largest_basin_by_full_count(group, idx))


@pytest.mark.parametrize("m,n_boot,seed", [(1, 4, 0), (2, 5, 1), (11, 30, 1), (2000, 50, 3), (25_001, 20, 7)])
def test_halves_are_the_smallest_keys_of_a_full_argsort(m, n_boot, seed):
    """The partition gives the very halves a full argsort of the same keys gives (ascending)."""
    keys = np.random.default_rng(seed).random((n_boot, m))
    assert np.array_equal(halves(m, n_boot, seed), np.sort(np.argsort(keys, axis=1)[:, :max(m // 2, 1)], axis=1))


def test_bad_parameters_are_probe_errors():
    with pytest.raises(ProbeError):
        get_probe("attractor.rationale_diversity")(n_min=4, n_max=2)
    with pytest.raises(ProbeError):
        get_probe("attractor.fixed_points")(threshold=0.0)


# ---------------------------------------------------------------- positive controls


@CONTROL
@given(attractor=st.floats(0.6, 1.0), filler=st.integers(12, 24), seed=st.integers(0, 999))
def test_diversity_falls_when_rationales_narrow(attractor, filler, seed):
    run = synthetic([RoundSpec(), RoundSpec(attractor=attractor, diverse_text=False, extra_tokens=filler)], seed)
    got = measure("attractor.rationale_diversity", run)
    for name in ("question.distinct_n", "question.compression_ratio", "pool.distinct_n", "pool.compression_ratio"):
        delta = got[f"{name}.delta_vs_round0"]
        assert delta.fires and delta.value < 0, name
        assert got[name].series[1].value < got[name].series[0].value


@CONTROL
@given(p=st.floats(0.2, 0.4), spread=st.floats(1.0, 1.5), attractor=st.floats(0.97, 1.0), seed=st.integers(0, 999))
def test_wrong_fixed_points_fire_when_the_loop_locks_on(p, spread, attractor, seed):
    locked = RoundSpec(p_correct=p, spread=spread, attractor=attractor)
    run = synthetic([RoundSpec(), locked, locked], seed)
    got = measure("attractor.fixed_points", run)
    assert got["wrong_share"].fires and got["wrong_share.delta_vs_first_pair"].fires
    assert got["wrong_share"].value > got["wrong_share"].series[0].value
    last, before = run.samples(2), run.samples(1)
    rows = [last.question_ids.index(q) for q in got["wrong_share"].evidence]
    assert rows and all(len(set(last.answers[i])) == 1 and not last.correct[i].any() for i in rows)
    assert (last.answers[rows] == before.answers[rows]).all()


@CONTROL
@given(share=st.floats(0.3, 0.7), attractor=st.floats(0.8, 1.0), p=st.floats(0.3, 0.5), seed=st.integers(0, 999))
def test_basins_grow_when_questions_share_a_wrong_answer(share, attractor, p, seed):
    run = synthetic([RoundSpec(), RoundSpec(basin_share=share, attractor=attractor, p_correct=p)], seed)
    got = measure("attractor.basins", run)
    assert got["answer_basin.growth_vs_round0"].fires
    # synthetic wrong samples keep the gold rationale, so only the answer line joins a template basin: weak
    assert got["template_basin.growth_vs_round0"].value > 0
    basin = got["answer_basin.largest_share"]
    assert basin.details["key"] == str(BASIN_ANSWER) and basin.value > 0.1
    last = run.samples(1)
    for q in basin.evidence:  # a plurality of each one's samples says BASIN_ANSWER (ties: first seen)
        counts = np.unique(last.answers[last.question_ids.index(q)], return_counts=True)
        assert dict(zip(*counts))[BASIN_ANSWER] == counts[1].max()


@CONTROL
@given(p0=st.floats(0.4, 0.5), s0=st.floats(0.2, 0.5), p1=st.floats(0.95, 1.0), s1=st.floats(2.8, 3.5),
       seed=st.integers(0, 999))
def test_reversal_alarm_when_pass1_rises_while_coverage_falls(p0, s0, p1, s1, seed):
    # the later model is sure on easy questions and gives up on hard ones: pass@1 up, pass@8 down
    run = synthetic([RoundSpec(p_correct=p0, spread=s0), RoundSpec(p_correct=p1, spread=s1)], seed)
    got = measure("attractor.pass_at_k", run)
    assert got["reversal"].alarm and got["reversal"].fires
    assert got["pass@1.delta_vs_round0"].ci_low > 0 and got["pass@k.delta_vs_round0"].fires


def test_crank_fires_across_the_family(crank):
    got = {m.name: m for m in run_probes(crank, {pid: {} for pid in FAMILY}).measurements}
    for name in ("question.distinct_n.delta_vs_round0", "pool.compression_ratio.delta_vs_round0",
                 "answer_basin.growth_vs_round0", "area.delta_vs_round0", "pass@k.delta_vs_round0"):
        assert got[name].fires, name
    assert got["wrong_share"].value > 0 and got["wrong_share"].evidence  # a few questions lock in at 8/8
    assert got["answer_basin.largest_share"].details["key"] == str(BASIN_ANSWER)
    assert not got["reversal"].alarm  # accuracy falls too: a collapse, not a reversal


# ---------------------------------------------------------------- negative controls


def test_clean_rounds_stay_quiet(clean):
    found = run_probes(clean, {pid: {} for pid in FAMILY}).measurements
    assert len(found) == 28
    assert [m.name for m in found if m.fires] == []
    for m in found:  # values are floats or None, never NaN
        for v in (m.value, m.ci_low, m.ci_high, *(p.value for p in m.series)):
            assert v is None or math.isfinite(v)
    by_name = {m.name: m for m in found}
    for name in ("answer_basin.growth_vs_round0", "pool.distinct_n.delta_vs_round0", "area.delta_vs_round0"):
        assert by_name[name].ci_low <= 0 <= by_name[name].ci_high


def test_a_stable_but_locked_model_reports_its_level_and_no_change():
    run = synthetic(clean_rounds(3, p_correct=0.3, attractor=0.9, basin_share=0.3), seed=1)
    fixed = measure("attractor.fixed_points", run)
    assert fixed["wrong_share"].value > 0  # stuck questions exist in every pair...
    assert not fixed["wrong_share.delta_vs_first_pair"].fires  # ...but no more of them than before
    basins = measure("attractor.basins", run)
    assert basins["answer_basin.largest_share"].value > 0.05  # a standing basin ...
    assert not basins["answer_basin.growth_vs_round0"].fires and not basins["template_basin.growth_vs_round0"].fires


@pytest.mark.slow
def test_family_runs_well_under_three_seconds_on_500_questions():
    run = synthetic(crank_rounds(), n_pool=500)
    t0 = time.perf_counter()
    run_probes(run, {pid: {} for pid in FAMILY})
    assert time.perf_counter() - t0 < 3.0
