"""Reports: report.json/md/html of a run and of a suite output, and comparisons of runs (planted effects on
synthetic runs), through the library and the CLI."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.app.cli import app
from probes import PooledRunView, RunView, run_probes, write_results
from probes.gates import GateSpec, SuiteOutcome, evaluate
from probes.testing import clean_rounds, crank_rounds, write_synthetic_run
from reports.build import REPORT_FILES, build_report, write_report
from reports.compare import Comparison, compare
from reports.compare_render import comparison_html, comparison_markdown
from reports.html import plot_ids
from reports.model import REPORT_SCHEMA_VERSION, Report
from reports.sources import expand
from tests.probe_runs import ROUND0, ROUND1, hand_run

runner = CliRunner()
# the scale of a real 3-round run of the embedded model (suites/smoke.toml): 500 pool questions x 8 samples,
# 300 test and 300 ood questions (greedy + 8 samples), 200 reference texts
REAL_SCALE = {"n_pool": 500, "n_test": 300, "n_ood": 300, "n_ref": 200, "eval_k": 8}
SMALL = {"n_pool": 120, "n_test": 80, "n_ood": 30, "n_ref": 20}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {"clean": write_synthetic_run(root / "clean", clean_rounds(4), **SMALL),
           "crank": write_synthetic_run(root / "crank", crank_rounds(4), **SMALL)}
    out["clean-copy"] = Path(shutil.copytree(out["clean"], root / "clean-copy"))
    out["clean-seed1"] = write_synthetic_run(root / "clean-seed1", clean_rounds(4), seed=1, **SMALL)
    return out


def make_suite_output(out: Path, seeds=(0, 1)) -> Path:
    """OUT/<condition>/seed-<n>/ for a clean and a crank condition, their pooled probes.json and a suite.json
    with one gate (the confident-wrong rate may not rise), as `loopprobe run SUITE` lays them out."""
    conditions, gates = {}, []
    gate = GateSpec(probe="cw.rate", stat="rate.delta_vs_round0", max=0.05)
    for name, rounds in (("clean", clean_rounds(4)), ("crank", crank_rounds(4))):
        views = [RunView(write_synthetic_run(out / name / f"seed-{s}", rounds, seed=s, **SMALL)) for s in seeds]
        results = run_probes(PooledRunView(views) if len(views) > 1 else views[0])
        write_results(out / name, results)
        conditions[name] = results
        gates.append(evaluate(gate, name, results.measurements))
    outcome = SuiteOutcome(suite="planted", seeds=list(seeds), conditions=conditions, gates=gates)
    (out / "suite.json").write_text(outcome.model_dump_json(indent=1))
    return out


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory) -> Path:
    return make_suite_output(tmp_path_factory.mktemp("suite") / "out")


# ---------------------------------------------------------------- report of one run


def test_report_of_a_three_round_run_writes_all_three_files_in_under_10_seconds(tmp_path):
    run = write_synthetic_run(tmp_path / "run", crank_rounds(4), **REAL_SCALE)
    t0 = time.perf_counter()
    result = runner.invoke(app, ["report", str(run)])
    seconds = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    assert seconds < 10, f"loopprobe report took {seconds:.1f} s"
    for name in REPORT_FILES:
        assert (run / name).stat().st_size > 0
    assert (run / "probes.json").exists()  # the probes ran (no probes.json yet) and were kept
    report = Report.model_validate_json((run / "report.json").read_text())
    assert report.kind == "run" and report.sections[0].rounds == [0, 1, 2, 3]
    html = (run / "report.html").read_text()
    ids = plot_ids(report)
    assert all(f'data-plot="{i}"' in html for i in ids) and html.count("data-plot=") == len(ids)
    for name in ("calibration", "transitions", "reference-nll", "answer-entropy", "trajectory-cw.rate",
                 "trajectory-drift.accuracy"):
        assert f"s0-{name}" in ids
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch: opens offline


def test_report_json_round_trips_and_is_deterministic(runs, tmp_path):
    a, b = build_report(runs["crank"], write_probes=False), build_report(runs["crank"], write_probes=False)
    text = a.model_dump_json(indent=1)
    assert text == b.model_dump_json(indent=1)
    assert Report.model_validate_json(text).model_dump_json(indent=1) == text
    assert a.schema_version == REPORT_SCHEMA_VERSION and str(runs["crank"].parent) not in text  # no absolute paths
    write_report(a, tmp_path / "one")
    write_report(b, tmp_path / "two")
    for name in REPORT_FILES:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_report_content_of_a_planted_crank(runs):
    report = build_report(runs["crank"], write_probes=False)
    section = report.sections[0]
    assert report.verdict.status == "no_gates" and report.verdict.firing > 0
    rate = next(p for p in section.probes if p.id == "cw.rate")
    assert rate.headline == "rate" and rate.get("rate").trend == "up"
    assert rate.get("rate.delta_vs_round0").fires
    # the drill-down: every alarm's items are traced through every round, with question, truth and a rationale
    alarm = next(a for a in section.alarms if a.probe == "cw.rate")
    items = {i.id: i for i in section.items}
    traced = [items[i] for i in alarm.items]
    assert traced and all(i.split == "pool" and i.question.startswith("Q:") and i.truth is not None for i in traced)
    assert all(len(i.rounds) == 4 and i.rounds[-1].rationale and i.rounds[-1].vote_share >= 0.6 for i in traced)
    assert all(i.rounds[-1].correct is False for i in traced)  # newly confident-wrong in the last round
    ref = next(a for a in section.alarms if a.probe == "drift.reference_nll")
    assert items[ref.items[0]].split == "reference" and items[ref.items[0]].rounds[0].nll_per_token > 0
    # distributions: a calibration and entropy histogram per round, transitions between consecutive rounds
    assert [c.round for c in section.calibration] == [0, 1, 2, 3]
    assert [(t.from_round, t.to_round) for t in section.transitions] == [(0, 1), (1, 2), (2, 3)]
    assert sum(map(sum, section.transitions[0].counts)) == SMALL["n_pool"]
    assert section.answer_entropy.rounds[-1].mean < section.answer_entropy.rounds[0].mean


def test_report_markdown_is_a_ci_summary(runs):
    from reports.markdown import render_markdown

    md = render_markdown(build_report(runs["crank"], write_probes=False))
    assert md.startswith("## loopprobe run `crank`: no gates")
    line = next(x for x in md.splitlines() if x.startswith("| `cw.rate` |"))
    assert "rate" in line and "↑" in line and "rate.delta_vs_round0" in line  # value, CI, trend, what fires


def test_report_of_a_hand_built_run_with_greedy_only_test_items(tmp_path):
    run = hand_run(tmp_path / "hand", [ROUND0, ROUND1], test_right=[[True, True, False], [True, False, False]])
    report = build_report(run)
    section = report.sections[0]
    assert section.rounds == [0, 1] and section.transitions[0].counts
    test_alarm_items = [i for i in section.items if i.split == "test"]
    for item in test_alarm_items:  # no sampled test decodings: the greedy answer stands in for the vote
        assert item.rounds[0].greedy is not None and item.rounds[0].vote_share == 1.0
    assert "report.html" in [p.name for p in write_report(report, tmp_path / "out")]


def test_stale_probes_json_is_recomputed(runs, tmp_path):
    run = Path(shutil.copytree(runs["clean"], tmp_path / "run"))
    results = run_probes(RunView(run), {"cw.rate": {}})
    write_results(run, results.model_copy(update={"rounds": [0, 1]}))  # as if written before a resume
    report = build_report(run)
    assert [p.id for p in report.sections[0].probes] == ["cw.rate"]  # the recorded selection, recomputed
    assert report.sections[0].rounds == [0, 1, 2, 3]
    assert json.loads((run / "probes.json").read_text())["rounds"] == [0, 1, 2, 3]


# ---------------------------------------------------------------- report of a suite output


def test_report_of_a_suite_output_has_gates_and_a_section_per_condition(suite_out, tmp_path):
    result = runner.invoke(app, ["report", str(suite_out), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    report = Report.model_validate_json((tmp_path / "rep" / "report.json").read_text())
    assert report.kind == "suite" and report.name == "planted"
    assert [s.name for s in report.sections] == ["clean", "crank"]
    assert report.sections[1].runs == ["seed-0", "seed-1"]
    assert report.verdict.status == "failed" and report.verdict.gates_failed == 1
    assert [g.passed for g in report.gates] == [True, False]
    crank = report.sections[1]
    items = {i.id: i for i in crank.items}
    pooled = [i for i in items.values() if i.split == "pool"]
    assert pooled and all(i.id.startswith("seed-") and i.question for i in pooled)  # prompts of pooled ids
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "FAILED" in md and "❌" in md and "### condition crank" in md
    one = build_report(suite_out / "crank", write_probes=False)  # one condition: its seeds pooled
    assert one.kind == "condition" and one.sections[0].runs == ["seed-0", "seed-1"] and not one.gates


# ---------------------------------------------------------------- compare


def headline(c: Comparison, metric: str):
    return next(h for h in c.pairs[0].headlines if h.metric == metric)


def test_compare_names_the_planted_crank_worse_with_a_ci_that_excludes_zero(runs):
    c = compare(expand([runs["clean"], runs["crank"]]))
    assert c.baseline == "clean" and c.pairs[0].rounds == [0, 1, 2, 3]
    cw = headline(c, "confident_wrong_rate")
    d = cw.difference
    assert d.method == "paired" and d.n_items == SMALL["n_pool"] and d.round == 3
    assert d.ci_low > 0 and d.significant and d.worse == "crank" and cw.better == "clean"
    assert "clean is better" in cw.verdict
    acc = headline(c, "test_accuracy")
    assert acc.difference.ci_high < 0 and acc.better == "clean" and acc.difference.p_value < 0.05
    round0 = next(x for x in c.pairs[0].differences if x.measurement == "rate" and x.round == 0)
    assert round0.worse is None  # round 0 is the same model in both synthetic runs... up to sampling
    others = [x for x in c.pairs[0].differences if x.method == "from_cis"]
    assert others and any(x.worse == "crank" for x in others)


def test_compare_of_identical_runs_finds_no_significant_difference(runs):
    c = compare(expand([runs["clean"], runs["clean-copy"]]))
    assert all(h.better is None and "no significant difference" in h.verdict for h in c.pairs[0].headlines)
    assert not any(d.significant for d in c.pairs[0].differences)


def test_compare_of_runs_on_different_items_is_unpaired(runs):
    c = compare(expand([runs["clean"], runs["clean-seed1"]]))
    for metric in ("test_accuracy", "confident_wrong_rate"):
        h = headline(c, metric)
        assert h.difference.method == "unpaired" and h.difference.n_items in (160, 240)  # 80 test, 120 pool items each
        assert not h.difference.significant, h.verdict  # exchangeable rounds of the same model
    assert "different items" in c.pairs[0].note


def test_compare_cli_on_a_suite_output_writes_md_html_json(suite_out, tmp_path):
    files = {k: tmp_path / f"cmp.{k}" for k in ("md", "html", "json")}
    args = ["compare", str(suite_out)] + [x for k, p in files.items() for x in (f"--{k}", str(p))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "B = crank vs A = clean" in result.output and "B worse" in result.output
    assert "confident-wrong rate at round 3" in result.output and "clean is better" in result.output
    c = Comparison.model_validate_json(files["json"].read_text())
    assert [r.label for r in c.runs] == ["clean", "crank"] and c.runs[0].kind == "condition"
    cw = headline(c, "confident_wrong_rate").difference
    assert cw.method == "paired" and cw.worse == "crank"  # both conditions hold seed-0/ and seed-1/ items
    assert "clean is better" in files["md"].read_text()
    html = files["html"].read_text()
    assert 'data-plot="p0-headlines"' in html and 'data-plot="p0-differences"' in html
    assert comparison_markdown(c) == files["md"].read_text() and comparison_html(c) == html


def test_compare_condition_directories_and_runs_together(suite_out, runs):
    c = compare(expand([suite_out / "clean", runs["crank"]]))
    assert [r.kind for r in c.runs] == ["condition", "run"]
    assert headline(c, "test_accuracy").difference.method == "unpaired"  # prefixed vs bare ids


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("args, expected", [
    (["report", "{tmp}/missing"], "no such directory"),
    (["report", "{tmp}"], "no manifest.json, suite.json or seed-*/ runs here"),
    (["compare", "{tmp}/missing", "{tmp}"], "no such directory"),
    (["compare", "{clean}"], "only one run or condition to compare"),
    (["compare", "{clean}", "{tmp}"], "no manifest.json"),
])
def test_bad_input_is_a_one_line_error(args, expected, tmp_path, runs):
    args = [a.format(tmp=tmp_path, clean=runs["clean"]) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output


def test_damaged_probes_json_is_a_one_line_error(runs, tmp_path):
    run = Path(shutil.copytree(runs["clean"], tmp_path / "run"))
    (run / "probes.json").write_text("{not json")
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 2 and "probes.json:1: not valid JSON" in result.output
    assert len(result.output.strip().splitlines()) == 1
