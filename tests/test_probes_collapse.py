"""attractor.collapse_step and drift.spike: positive controls (a planted collapse, a planted jump) fire with
the right round, negative controls (exchangeable rounds) stay quiet, and under the null neither alarms more
often than its level."""

from __future__ import annotations

import pytest

from probes import RunView, get_probe
from probes.testing import RoundSpec, clean_rounds, write_synthetic_run

# agreement rises every round; greedy test accuracy rises, then falls from round 2 on
COLLAPSE = [RoundSpec(p_correct=0.5, test_p=tp, majority_share=ms)
            for tp, ms in [(0.6, 0.5), (0.68, 0.6), (0.7, 0.75), (0.5, 0.9), (0.4, 0.95)]]
JUMP = [RoundSpec(test_p=tp) for tp in (0.5, 0.5, 0.52, 0.85, 0.85)]  # test accuracy jumps at round 3


def measured(tmp_path, name, rounds, probe_id, seed=0, **params):
    write_synthetic_run(tmp_path / name, rounds, seed=seed)
    return {m.name: m for m in get_probe(probe_id)(**params).measure(RunView(tmp_path / name))}


def test_collapse_step_finds_the_round_where_agreement_rises_and_accuracy_falls(tmp_path):
    m = measured(tmp_path, "collapse", COLLAPSE, "attractor.collapse_step", accuracy="greedy")
    step = m["collapse_step"]
    assert step.alarm and step.fires and step.value == 3.0 and step.details["best_round"] == 2
    assert step.ci_low <= 3.0 <= step.ci_high and step.details["proxy"] == "agreement"
    assert m["accuracy_drop"].ci_high < 0 < m["proxy_rise"].ci_low
    assert step.evidence  # the test questions that lost most


@pytest.mark.parametrize("spec", [clean_rounds(5), clean_rounds(5, majority_share=0.6), JUMP],
                         ids=["independent", "agreeing", "accuracy-up"])
def test_collapse_step_stays_quiet_without_a_collapse(tmp_path, spec):
    for accuracy in ("pass1", "greedy"):
        step = measured(tmp_path, f"run-{accuracy}", spec, "attractor.collapse_step", accuracy=accuracy)["collapse_step"]
        assert not step.alarm and not step.fires


def test_spike_finds_the_jump_and_not_the_flat_round_after_it(tmp_path):
    m = measured(tmp_path, "jump", JUMP, "drift.spike")
    assert m["spike"].alarm and m["spike"].details["metric"] == "accuracy" and m["spike"].round == 3
    assert m["spike"].value > 5 and m["accuracy.spike"].round == 3
    assert [p.round for p in m["accuracy.spike"].series] == [2, 3, 4]


def test_spike_stays_quiet_on_exchangeable_rounds(tmp_path):
    for i, spec in enumerate([clean_rounds(5), clean_rounds(5, majority_share=0.6)]):
        assert not measured(tmp_path, f"clean-{i}", spec, "drift.spike")["spike"].alarm


def test_neither_alarms_more_often_than_its_level_under_the_null(tmp_path):
    """20 exchangeable runs (seeds): at a 5% family-wise level, 4 or more alarms of one probe would be a
    false-alarm rate out of line (P(X >= 4 | n=20, p=0.05) = 1.6%). Measured: 1 of 60 (spike) and 0 of 120
    (collapse) with 6 rounds each (/tmp scripts, 2026-12-04)."""
    alarms = {"drift.spike": 0, "attractor.collapse_step": 0}
    for seed in range(20):
        write_synthetic_run(tmp_path / str(seed), clean_rounds(4, majority_share=0.6 if seed % 2 else None),
                            n_pool=120, n_test=120, seed=seed)
        view = RunView(tmp_path / str(seed))
        for probe_id in alarms:
            alarms[probe_id] += bool(get_probe(probe_id)().measure(view)[0].alarm)
    assert all(n < 4 for n in alarms.values()), alarms


def test_both_need_enough_rounds(tmp_path):
    assert measured(tmp_path, "two", clean_rounds(2), "drift.spike")["spike"].degenerate
    assert measured(tmp_path, "one", clean_rounds(1), "attractor.collapse_step")["collapse_step"].degenerate
