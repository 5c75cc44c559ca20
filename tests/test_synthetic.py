"""The synthetic run writer (probes.testing): each knob plants what it says, measured on the written
artifacts through RunView; every run it writes is intact for `loopprobe verify`; a run without planted
effects is byte for byte what it was before they existed; edit_round keeps hashes and summary true."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from harness.app.audit import audit
from harness.artifacts import DamagedFile, RunStore
from harness.domains.arithmetic import parse_answer
from harness.domains.base import recorded_domain
from probes import RunView, answer_code, get_probe, registry, stats
from probes.testing import (
    RoundSpec,
    SyntheticRun,
    clean_rounds,
    crank_rounds,
    edit_round,
    plants_rule,
    synthetic_questions,
    synthetic_run,
    write_synthetic_run,
)
from probes.testing.strategies import synthetic_runs

SMALL = {"n_pool": 20, "k": 4, "n_test": 20, "n_ood": 10, "eval_k": 2, "n_ref": 10}
SIZES = {"n_pool": 120, "n_test": 60, "n_ood": 30, "n_ref": 10}
RULE_DOMAIN = {"name": "arithmetic", "misconception": "drop_carry_tens", "max_digits": 2, "base_train_size": 100,
               "ood_train_size": 10, "pool_size": 60, "test_size": 60, "ood_size": 30, "reference_size": 0}
DOMAINS = {"sorting": {"name": "sorting"}, "word_problems": {"name": "word_problems"}}


def intact(path: Path) -> Path:
    """The run, after checking it as `loopprobe verify` does: every file matches its recorded sha256."""
    checked, problems = audit(path)
    assert problems == [] and checked > 0, problems
    return path


def write(tmp_path: Path, rounds: list[RoundSpec], name: str = "run", **kw) -> SyntheticRun:
    """A synthetic run (SIZES unless overridden), checked intact: every run these tests write is."""
    run = synthetic_run(tmp_path / name, rounds, **{**SIZES, **kw})
    intact(run.path)
    return run


def tree_digest(root: Path) -> str:
    files = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file()}
    return hashlib.sha256("".join(f"{p} {h}\n" for p, h in sorted(files.items())).encode()).hexdigest()


def within(observed: float, expected: float, n: int, z: float = 4.0) -> bool:
    """observed share is expected's, up to z binomial standard errors of n draws."""
    return abs(observed - expected) <= z * np.sqrt(expected * (1 - expected) / n) + 1e-9


# ---------------------------------------------------------------- unchanged without planted effects

# sha256 over the (path, sha256) of every file, computed with probes/testing.py as it was before the planted
# knobs (issue 14). They rest on numpy's PCG64 streams and pydantic's JSON, which are stable across versions.
BEFORE_THE_KNOBS = {
    "clean": (clean_rounds(2), {}, "52763fd4deda0c7d280fa72b9ec31c5bb1a05b62ca316088825a309dfa9d9828"),
    "crank": (crank_rounds(3), {}, "f7ca6b9896d1f2298b27dd594c9fede8a5f6f445cb43ff03bdedd974f1b79410"),
    "sorting": (crank_rounds(2), {"domain": {"name": "sorting"}},
                "87e5096ca90f35209b182be6e7b57f7d548a0c179fbaca6a6ca0d4e76b987b75"),
}


@pytest.mark.parametrize("case", BEFORE_THE_KNOBS)
def test_a_run_without_planted_effects_is_byte_identical_to_before_they_existed(case, tmp_path):
    rounds, kw, digest = BEFORE_THE_KNOBS[case]
    path = intact(write_synthetic_run(tmp_path / case, rounds, **SMALL, **kw))
    assert tree_digest(path) == digest
    recorded = json.loads((path / "manifest.json").read_text())["config"]["rounds"]
    assert not {"rationale_errors", "majority_share", "plant_answer"} & set(recorded[0])


def test_a_planted_effect_changes_only_the_decodings_it_lands_on(tmp_path):
    base = write(tmp_path, clean_rounds(2), "base").view()
    rule = {"domain": RULE_DOMAIN, "n_pool": 60, "n_test": 60}
    for n, spec in enumerate((RoundSpec(rationale_errors=0.5), RoundSpec(plant_answer="99999", plant_rate=0.3),
                              RoundSpec(planted_share=0.5))):
        kw = rule if spec.planted_share else {}
        before = base if not kw else write(tmp_path, clean_rounds(2), "rule-base", **kw).view()
        run = write(tmp_path, [RoundSpec(), spec], f"planted-{n}", **kw)
        view = run.view()
        for split, decoding in (("pool", "sample"), ("test", "greedy"), ("test", "sample"), ("ood", "sample")):
            old, new = before.samples(1, split, decoding), view.samples(1, split, decoding)
            landed = np.zeros_like(old.correct)
            for kind in ("rationale_errors", "plant_answers", "rule_answers"):
                landed |= run.planted.mask(kind, 1, new, split, decoding)
            changed = np.array([[a != b for a, b in zip(x, y)] for x, y in zip(old.completions, new.completions)])
            assert not changed[~landed].any(), (spec, split, decoding)
            # a landed decoding changed, unless it already gave that answer (a fixed wrong answer can be the rule's)
            assert (changed | (old.answers == new.answers))[landed].all()
            assert changed.any() or split == "ood"  # the rule and plant_answer's default: trained questions only
        assert before.samples(0).completions == view.samples(0).completions  # round 0 planted nothing


# ---------------------------------------------------------------- right answer, wrong reason


def _false_steps(completion: str) -> int:
    """How many column lines of an arithmetic rationale are false ("7+8+1=16" true, "7+8+1=13" false)."""
    false = 0
    for line in completion.split("\n")[:-1]:
        m = re.fullmatch(r"(\d+)([+-])(\d+)(?:([+-])1)?=(\d+)", line)
        assert m, line
        a, op, b, carry, s = int(m[1]), m[2], int(m[3]), m[4], int(m[5])
        value = a + b + (carry == "+") if op == "+" else (a - b - (carry == "-")) % 10
        false += value != s
    return false


def test_rationale_errors_keep_the_right_answer_and_break_one_step(tmp_path):
    run = write(tmp_path, [RoundSpec(), RoundSpec(rationale_errors=0.3)])
    view = run.view()
    for split, decoding in (("pool", "sample"), ("test", "greedy"), ("ood", "sample")):
        table = view.samples(1, split, decoding)
        planted = run.planted.mask("rationale_errors", 1, table, split, decoding)
        assert not planted[~table.correct].any()  # only right decodings are planted
        assert within(planted[table.correct].mean(), 0.3, int(table.correct.sum()))
        for i, j in np.argwhere(table.correct):
            text = table.completions[i][j]
            assert answer_code(parse_answer(text)) == table.truth[i]  # still parses to the truth
            assert _false_steps(text) == int(planted[i, j])  # exactly one false column step where planted
    assert not run.planted.mask("rationale_errors", 0, view.samples(0)).any()


@pytest.mark.parametrize("domain", DOMAINS)
def test_rationale_errors_in_other_domains_keep_the_answer_and_change_the_rationale(domain, tmp_path):
    config = DOMAINS[domain]
    run = write(tmp_path, [RoundSpec(rationale_errors=0.5)], n_pool=60, n_test=40, n_ood=20, domain=config)
    view, dom = run.view(), recorded_domain({"domain": config}, 0)
    table = view.samples(0)
    planted = run.planted.mask("rationale_errors", 0, table)
    assert within(planted[table.correct].mean(), 0.5, int(table.correct.sum())) and not planted[~table.correct].any()
    questions = {q.id: q for q in run.questions["pool"]}
    for i, qid in enumerate(table.question_ids):
        gold = dom.reference_rationale(questions[qid])
        for j in np.flatnonzero(table.correct[i]):
            text = table.completions[i][j]
            assert dom.parse(text) == questions[qid].answer and (text != gold) == planted[i, j]


# ---------------------------------------------------------------- vote shares and entropy


@pytest.mark.parametrize("share", [0.25, 0.5, 0.9, 1.0])
def test_majority_share_sets_every_questions_vote_share(share, tmp_path):
    view = write(tmp_path, [RoundSpec(majority_share=share)]).view()
    for split in ("pool", "test"):
        table = view.samples(0, split)
        _, shares = stats.row_mode(table.answers, table.parsed)
        assert abs(shares.mean() - share) < 0.05, (split, shares.mean())
    entropy = stats.row_entropy(view.samples(0).answers).mean()
    assert entropy == 0.0 if share == 1.0 else entropy > 0.0


def test_answer_entropy_falls_as_the_majority_share_rises(tmp_path):
    levels = [0.25, 0.5, 0.75, 1.0]
    view = write(tmp_path, [RoundSpec(majority_share=s) for s in levels]).view()
    ms = {m.name: m for m in get_probe("attractor.answer_entropy")().measure(view)}
    series = [p.value for p in ms["entropy"].series]
    assert series == sorted(series, reverse=True) and series[-1] == 0.0 and series[0] > 1.5  # k = 8: log 8 = 2.08
    assert ms["entropy.delta_vs_round0"].fires


def test_a_high_majority_share_with_falling_accuracy_fires_confident_wrong(tmp_path):
    planted = write(tmp_path, [RoundSpec(p_correct=0.7, majority_share=0.8),
                               RoundSpec(p_correct=0.35, majority_share=0.8)], "planted").view()
    ms = {m.name: m for m in get_probe("cw.rate")().measure(planted)}
    assert ms["rate.delta_vs_round0"].fires and ms["rate"].value > 0.4
    clean = write(tmp_path, clean_rounds(2, p_correct=0.5, majority_share=0.8), "clean").view()
    assert not any(m.fires for m in get_probe("cw.rate")().measure(clean))


# ---------------------------------------------------------------- planted answers


def test_planted_share_gives_the_domains_rule_answer_and_drives_misconception_share(tmp_path):
    assert plants_rule(RULE_DOMAIN) and not plants_rule(None) and not plants_rule({"name": "word_problems"})
    run = write(tmp_path, [RoundSpec(attractor=0.0), RoundSpec(planted_share=0.6, attractor=0.0)],
                domain=RULE_DOMAIN, n_pool=60, n_test=60)
    view, dom = run.view(), recorded_domain({"domain": RULE_DOMAIN}, 0)
    table = view.samples(1)
    rule = np.array([answer_code(dom.planted_answer(q)) for q in table.question_ids])
    applies = (rule != answer_code(None))[:, None] & ~table.correct
    gives_rule = table.answers == rule[:, None]
    assert (gives_rule == run.planted.mask("rule_answers", 1, table)).all()
    assert within(gives_rule[applies].mean(), 0.6, int(applies.sum())) and not gives_rule[~applies].any()
    assert not run.planted.mask("rule_answers", 0, view.samples(0)).any()

    rounds = [RoundSpec(p_correct=0.4, majority_share=0.8), RoundSpec(p_correct=0.4, majority_share=0.8,
                                                                      planted_share=1.0)]
    captured = write(tmp_path, rounds, "captured", domain=RULE_DOMAIN, n_pool=60, n_test=60).view()
    ms = {m.name: m for m in get_probe("cw.misconception_share")().measure(captured)}
    assert ms["share.delta_vs_round0"].fires and ms["share"].value > 0.4
    quiet = write(tmp_path, clean_rounds(2, p_correct=0.4, majority_share=0.8), "quiet", domain=RULE_DOMAIN,
                  n_pool=60, n_test=60).view()
    assert not any(m.fires for m in get_probe("cw.misconception_share")().measure(quiet))


def test_planted_share_without_a_rule_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="planted_share needs a domain that plants a rule"):
        synthetic_run(tmp_path / "run", [RoundSpec(planted_share=0.5)], **SMALL)
    assert not (tmp_path / "run").exists()


def test_plant_answer_lands_on_the_chosen_questions_at_its_rate(tmp_path):
    questions = synthetic_questions(n_pool=SIZES["n_pool"], n_test=SIZES["n_test"], n_ood=SIZES["n_ood"])
    chosen = tuple(q.id for q in questions["pool"][:30] + questions["test"][:10])
    run = write(tmp_path, [RoundSpec(plant_answer="99999", plant_questions=chosen, plant_rate=0.75)])
    view, code = run.view(), answer_code("99999")
    for split, decoding in (("pool", "sample"), ("test", "greedy"), ("test", "sample"), ("ood", "sample")):
        table = view.samples(0, split, decoding)
        on = np.isin(table.question_ids, chosen)
        gives = table.answers == code
        assert (gives == run.planted.mask("plant_answers", 0, table, split, decoding)).all()
        assert not gives[~on].any() and not table.correct[gives].any()
        if on.any() and decoding == "sample":
            assert within(gives[on].mean(), 0.75, int(on.sum()) * table.k)

    everywhere = write(tmp_path, [RoundSpec(plant_answer="99999")], "everywhere").view()
    assert (everywhere.samples(0).answers == code).all() and (everywhere.samples(0, "test").answers == code).all()
    assert not (everywhere.samples(0, "ood").answers == code).any()  # default: the trained questions only

    truth = questions["pool"][0]
    right = write(tmp_path, [RoundSpec(plant_answer=truth.answer, plant_questions=(truth.id,))], "right").view()
    row = right.samples(0).question_ids.index(truth.id)
    assert right.samples(0).correct[row].all()  # planting the truth plants right answers


def test_bad_knobs_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="rationale_errors"):
        RoundSpec(rationale_errors=1.5)
    with pytest.raises(ValueError, match="majority_share"):
        RoundSpec(majority_share=0.0)
    with pytest.raises(ValueError, match="needs plant_answer"):
        RoundSpec(plant_questions=("add:1+2",))
    with pytest.raises(ValueError, match="'add:1\\+2', not a question of this run"):
        synthetic_run(tmp_path / "run", [RoundSpec(plant_answer="3", plant_questions=("add:1+2",))], **SMALL)
    run = write(tmp_path, [RoundSpec()], "ok", **SMALL)
    with pytest.raises(ValueError, match="unknown planted effect"):
        run.planted.mask("typo", 0, run.view().samples(0))


# ---------------------------------------------------------------- editing a recorded round


def test_edit_round_keeps_hashes_and_summary_true_to_the_edited_rows(tmp_path):
    path = write(tmp_path, clean_rounds(2)).path
    before = RunStore(path).read_round(1)

    def wrong_and_unfinished(row):
        return row.model_copy(update={"parsed_answer": "7", "correct": False, "finished": False})

    record = edit_round(path, 1, samples=wrong_and_unfinished, selected=lambda row: None)
    intact(path)
    view = RunView(path)
    assert not view.samples(1).correct.any() and not view.samples(1).finished.any() and view.selected(1) == []
    assert record.metrics["pool_pass1"] == 0.0 < before.metrics["pool_pass1"]
    assert record.counts["kept_samples"] == 0 and record.training == before.training
    assert RunStore(path).read_round(1).metrics == record.metrics
    assert view.samples(0).correct.any()  # other rounds untouched


def test_edit_round_checks_rows_and_refuses_a_damaged_round(tmp_path):
    path = write(tmp_path, clean_rounds(1), **SMALL).path
    with pytest.raises(ValidationError):
        edit_round(path, 0, samples=lambda row: row.model_copy(update={"split": "nowhere"}))
    intact(path)  # nothing written
    samples = path / "round-000" / "samples.jsonl"
    samples.write_text(samples.read_text().replace('"finished":true', '"finished":false', 1))  # by hand
    assert any("samples.jsonl" in p for p in audit(path)[1])
    with pytest.raises(DamagedFile, match="samples.jsonl"):
        edit_round(path, 0, samples=lambda row: row)


# ---------------------------------------------------------------- hypothesis strategies

# Writing the run is part of drawing an example, hence too_slow is not a health problem here.
def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@examples(25)
@given(synthetic_runs())
def test_every_builtin_probe_measures_any_generated_run_with_its_value_inside_its_ci(run):
    intact(run.path)
    view = run.view()
    for pid, cls in registry().items():
        for m in cls().measure(view):
            for v in (m.value, m.ci_low, m.ci_high):
                assert v is None or np.isfinite(v), (pid, m.name)
            if m.value is not None and m.ci_low is not None and m.ci_high is not None:
                assert m.ci_low - 1e-9 <= m.value <= m.ci_high + 1e-9, (pid, m.name, m.ci_low, m.value, m.ci_high)


@examples(12)
@given(synthetic_runs(domain={"name": "sorting", "misconception": "drop_duplicates"}, n_rounds=2))
def test_generated_runs_plant_what_their_specs_ask_and_their_ledger_says(run):
    view, dom = run.view(), recorded_domain({"domain": {"name": "sorting", "misconception": "drop_duplicates"}}, 0)
    for r, spec in enumerate(run.rounds):
        table = view.samples(r)
        rationale, rule, plant = (run.planted.mask(kind, r, table) for kind in
                                  ("rationale_errors", "rule_answers", "plant_answers"))
        assert table.correct[rationale].all() and (spec.rationale_errors > 0 or not rationale.any())
        rule_codes = np.array([answer_code(dom.planted_answer(q)) for q in table.question_ids])
        assert (table.answers == rule_codes[:, None])[rule].all() and not table.correct[rule].any()
        assert spec.planted_share > 0 or not rule.any()
        assert (table.answers[plant] == answer_code(spec.plant_answer)).all()
        if spec.plant_answer is None:
            assert not plant.any()
        elif spec.plant_rate == 1.0:
            on = np.isin(table.question_ids, spec.plant_questions or table.question_ids)
            assert plant[on].all()
