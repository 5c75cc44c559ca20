"""The diagnosis rules (reports.diagnosis), the headline trajectories and the round-vs-round panel
(reports.panel): each rule against a synthetic run that plants it (positive control) and one that does not
(negative control); the panel's counts against a hand count on a hand-built run."""

from __future__ import annotations

import numpy as np
import pytest

from harness.summary import CONFIDENT_SHARE
from probes import RunView, run_probes, stats
from probes.testing import RoundSpec, clean_rounds, crank_rounds, write_synthetic_run
from reports import diagnosis
from reports.build import build_report
from reports.diagnosis import PROBES, RULES, diagnose
from reports.html import render_html
from reports.markdown import render_markdown
from reports.model import Panel, PanelExample, PanelPool, Report
from reports.panel import panel_html, panel_markdown, round_panels, transition_panel
from tests.probe_runs import RC, ROUND0, ROUND1, RU, WC, WU, hand_run

SIZES = {"n_pool": 120, "n_test": 100, "n_ood": 20, "n_ref": 20}
# each a 4-round synthetic run planting one diagnosis
RUNS = {
    "crank": crank_rounds(4),
    "degrading": [RoundSpec(p_correct=0.65 - 0.1 * r, attractor=0.0) for r in range(4)],  # wrong answers diffuse
    "improving": [RoundSpec(p_correct=0.4 + 0.15 * r, attractor=0.05) for r in range(4)],
    "improving_cw": [RoundSpec(p_correct=0.5 + 0.1 * r, attractor=0.1 + 0.3 * r, spread=1.5) for r in range(4)],
    "sharpening": [RoundSpec(attractor=0.2 + 0.25 * r) for r in range(4)],  # same accuracy, answers collapse
    "drift": [RoundSpec(ref_shift=0.15 * r) for r in range(4)],  # only the reference texts move (up)
    "shift": [RoundSpec(ref_shift=-0.1 * r) for r in range(4)],  # only the reference texts move (down)
    "stable": clean_rounds(4),
    "single": clean_rounds(1),
}
# rule: (a run that plants it, a run where it must not apply)
CONTROLS = {
    "crank attractor": ("crank", "degrading"),
    "degrading": ("degrading", "crank"),
    "improving": ("improving", "improving_cw"),
    "improving with confident-wrong growth": ("improving_cw", "improving"),
    "sharpening": ("sharpening", "crank"),
    "drift without accuracy change": ("drift", "stable"),
    "shift without accuracy change": ("shift", "drift"),
    "stable": ("stable", "drift"),
    "undetermined": ("single", "stable"),
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """{run name: (measurements of the probes the rules read, rounds)}, each run written on first use."""
    root, cache = tmp_path_factory.mktemp("diag"), {}

    def get(name: str):
        if name not in cache:
            view = RunView(write_synthetic_run(root / name, RUNS[name], **SIZES))
            cache[name] = (run_probes(view, {p: {} for p in PROBES}).measurements, list(view.rounds))
        return cache[name]
    return get


def applies(d) -> list[str]:
    return [d.rule, *d.also]


def test_every_rule_has_controls():
    assert set(CONTROLS) == {r.name for r in RULES} | {"undetermined"}
    assert [n for n, _ in diagnosis.rule_table()] == [r.name for r in RULES] + ["undetermined"]
    assert all(r.description and r.gloss for r in RULES)


@pytest.mark.parametrize("rule", list(CONTROLS))
def test_rule_positive_control(rule, measured):
    d = diagnose(*measured(CONTROLS[rule][0]))
    assert d.rule == rule, d.explanation


@pytest.mark.parametrize("rule", list(CONTROLS))
def test_rule_negative_control(rule, measured):
    d = diagnose(*measured(CONTROLS[rule][1]))
    assert rule not in applies(d), d.explanation


def test_the_explanation_quotes_the_changes_with_cis(measured):
    ms, rounds = measured("crank")
    d = diagnose(ms, rounds)
    assert d.severity == "concern" and (d.from_round, d.to_round) == (0, 3)
    used = {(c.probe, c.measurement): c for c in d.evidence}
    assert set(used) == {("drift.accuracy", "test.greedy.delta_vs_round0"),
                         ("drift.accuracy", "test.pass1.delta_vs_round0"), ("cw.rate", "rate.delta_vs_round0"),
                         ("attractor.answer_entropy", "entropy.delta_vs_round0")}
    assert used[("cw.rate", "rate.delta_vs_round0")].direction == "up"
    assert used[("attractor.answer_entropy", "entropy.delta_vs_round0")].direction == "down"
    for c in d.evidence:  # every number it used, with its CI, is in the one sentence
        assert diagnosis.quote(next(m for m in ms if (m.probe, m.name) == (c.probe, c.measurement))) in d.explanation
    assert d.explanation.count(". ") == 0 and d.explanation.endswith("95% CIs.")


def test_directions_come_from_the_ci_against_zero(measured):
    ms, _ = measured("stable")
    m = next(m for m in ms if m.name == "rate.delta_vs_round0")
    assert diagnosis.direction(m.model_copy(update={"value": 0.1, "ci_low": 0.01, "ci_high": 0.2})) == "up"
    assert diagnosis.direction(m.model_copy(update={"value": -0.1, "ci_low": -0.2, "ci_high": -0.01})) == "down"
    assert diagnosis.direction(m.model_copy(update={"value": 0.1, "ci_low": 0.0, "ci_high": 0.2})) == "flat"
    assert diagnosis.direction(m.model_copy(update={"ci_low": None})) is None


def test_absent_probes_switch_off_the_rules_that_need_them(measured):
    ms, rounds = measured("crank")
    only_accuracy = [m for m in ms if m.probe == "drift.accuracy"]
    d = diagnose(only_accuracy, rounds)  # a suite that ran drift.accuracy alone
    assert d.rule == "degrading" and d.not_checked == ["crank attractor"]
    ms, rounds = measured("improving")
    d = diagnose([m for m in ms if m.probe == "drift.accuracy"], rounds)
    assert d.rule == "undetermined" and "improving" in d.not_checked and "confident-wrong rate" in d.explanation
    d = diagnose([m for m in ms if m.probe != "drift.accuracy"], rounds)
    assert d.rule == "undetermined" and "no test-accuracy change" in d.explanation.lower()
    ms, rounds = measured("stable")
    assert diagnose([m for m in ms if m.probe in ("drift.accuracy", "cw.rate")], rounds).rule == "stable"


def test_greedy_and_pass1_pointing_opposite_ways_is_undetermined(measured):
    ms, rounds = measured("stable")
    flip = {"test.greedy.delta_vs_round0": (0.1, 0.05, 0.15), "test.pass1.delta_vs_round0": (-0.1, -0.15, -0.05)}
    ms = [m.model_copy(update=dict(zip(("value", "ci_low", "ci_high"), flip[m.name]))) if m.name in flip else m
          for m in ms]
    d = diagnose(ms, rounds)
    assert d.rule == "undetermined" and "disagree" in d.explanation


# ---------------------------------------------------------------- the report carries them


def test_report_top_has_diagnosis_headlines_and_round_panels(tmp_path):
    run = write_synthetic_run(tmp_path / "crank", crank_rounds(4), **SIZES)
    report = build_report(run, write_probes=False)
    s = report.sections[0]
    assert s.diagnosis.rule == "crank attractor"
    assert [h.metric for h in s.headlines] == ["test_accuracy", "ood_accuracy", "confident_wrong_rate",
                                               "reference_nll", "answer_entropy"]
    assert all([p.round for p in h.series] == [0, 1, 2, 3] and h.change.ci_low is not None for h in s.headlines)
    assert [(p.round_a, p.round_b) for p in s.panels] == [(0, 1), (1, 2), (2, 3)]
    last = s.panels[-1]
    assert last.pool.became > last.pool.stopped and last.pool.confident_share == CONFIDENT_SHARE
    assert all(e.question.startswith("Q:") and e.rationale_a and e.rationale_b for e in last.pool.became_examples)
    text = report.model_dump_json()
    assert Report.model_validate_json(text).model_dump_json() == text
    html, md = render_html(report), render_markdown(report)
    top = html[:html.index("<h3>Drift</h3>")]  # before the per-probe tables
    assert all(f'data-section="{name}"' in top for name in ("diagnosis", "headlines", "round-panel"))
    assert top.count('<details class="panel" open') == 1 and top.count('<details class="panel"') == 3
    assert md.index("**Diagnosis: crank attractor.**") < md.index("| headline |") < md.index("**round 3 vs round 2**") \
        < md.index("| probe | headline |")


# ---------------------------------------------------------------- the panel against a hand count


TEST0 = [True, True, False, False, True, False]
TEST1 = [True, False, True, False, False, False]


def test_panel_counts_equal_a_hand_count(tmp_path):
    run = hand_run(tmp_path / "hand", [ROUND0, ROUND1], test_right=[TEST0, TEST1])
    view = RunView(run)
    p = transition_panel(view, 0, view, 1, "round 0", "round 1", prompts={"q3": "Q: three\n", "t1": "few\n\nQ: t1"})
    # test items t1 and t4 went right -> wrong, t2 wrong -> right
    assert (p.test.n_items, p.test.right_to_wrong, p.test.wrong_to_right) == (6, 2, 1)
    assert p.test.mcnemar_p == stats.mcnemar_exact(np.array(TEST0), np.array(TEST1))[2]
    assert [e.id for e in p.test.right_to_wrong_examples] == ["t1", "t4"]
    assert [e.id for e in p.test.wrong_to_right_examples] == ["t2"]
    e = p.test.right_to_wrong_examples[0]
    assert (e.truth, e.answer_a, e.answer_b, e.rationale_a, e.rationale_b) == ("10", "10", "11", "A: 10", "A: 11")
    assert e.question == "Q: t1"  # the prompt's last paragraph
    # pool, k = 4: confident-wrong = majority wrong with >= 3 of 4 votes (>= CONFIDENT_SHARE)
    # round 0: q0 q1 q2 (WC); round 1: q0 q1 q3 q7 (WC) -> q3, q7 became, q2 stopped
    assert CONFIDENT_SHARE == 0.6 and (p.pool.confident_wrong_a, p.pool.confident_wrong_b) == (3, 4)
    assert (p.pool.became, p.pool.stopped) == (2, 1)
    cw = [[a == WC for a in rnd] for rnd in (ROUND0, ROUND1)]
    assert p.pool.mcnemar_p == stats.mcnemar_exact(np.array(cw[0]), np.array(cw[1]))[2]
    assert sorted(e.id for e in p.pool.became_examples) == ["q3", "q7"]
    q3 = next(e for e in p.pool.became_examples if e.id == "q3")
    assert (q3.answer_a, q3.share_a, q3.answer_b, q3.share_b, q3.question) == ("10", 0.75, "11", 0.75, "Q: three")
    assert q3.rationale_a == "A: 10" and q3.rationale_b == "A: 11"
    assert [e.id for e in p.pool.stopped_examples] == ["q2"]


def test_panel_is_generic_over_two_views_and_pairs_by_id(tmp_path):
    """Two conditions at one round: same item ids, different answers (and B lacks one test item)."""
    a = RunView(hand_run(tmp_path / "a", [[WC, RC, RU, WU]], test_right=[[True, True, False]]))
    b = RunView(hand_run(tmp_path / "b", [[RC, WC, WC, WU]], test_right=[[False, True]]))
    p = transition_panel(a, 0, b, 0, "cond-a", "cond-b", prompts=lambda ids: {i: f"Q: {i}" for i in ids})
    assert (p.label_a, p.label_b, p.test.n_items) == ("cond-a", "cond-b", 2)  # t2 is only in A
    assert (p.test.right_to_wrong, p.test.wrong_to_right) == (1, 0)
    assert (p.pool.became, p.pool.stopped) == (2, 1) and p.pool.became_examples[0].question == "Q: q1"
    assert transition_panel(a, 0, RunView(hand_run(tmp_path / "c", [[WC]])), 0, "a", "c").test is None


def test_round_panels_cover_every_consecutive_pair(tmp_path):
    view = RunView(hand_run(tmp_path / "three", [ROUND0, ROUND1, ROUND0]))
    panels = round_panels(view)
    assert [(p.round_a, p.round_b) for p in panels] == [(0, 1), (1, 2)] and panels[0].test is None
    assert (panels[1].pool.became, panels[1].pool.stopped) == (1, 2)


def test_panel_renderings_escape_and_show_the_counts():
    ex = PanelExample(id="q<1>", question="<script>alert(1)</script>", truth="3", answer_a="3", answer_b="4",
                      share_a=0.5, share_b=1.0, rationale_a="a | b\n<b>", rationale_b="A: 4")
    p = Panel(label_a="round 0", label_b="round 1", round_a=0, round_b=1,
              pool=PanelPool(n_items=5, confident_share=CONFIDENT_SHARE, confident_wrong_a=0, confident_wrong_b=1,
                             became=1, stopped=0, mcnemar_p=1.0, became_examples=[ex]))
    html = panel_html(p)
    assert html.startswith('<details class="panel" open') and "<script>" not in html and "&lt;script&gt;" in html
    assert "1 became confident-wrong, 0 stopped" in html and "<b>" not in html.split("<pre", 1)[1].split("</pre>")[0]
    assert not panel_html(p, open=False).startswith('<details class="panel" open')
    md = panel_markdown(p)
    assert "**round 1 vs round 0**" in md and "a \\| b ⏎ &lt;b>" in md and "&lt;script>" in md
    assert "| pool questions confident-wrong" in md and "1 became" in md and "\\|" in md
