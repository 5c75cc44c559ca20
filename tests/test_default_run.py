"""The default suite end to end (~4 min on a 2-core machine): `.ci/run` runs it with `-m slow`."""

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.app.cli import app
from harness.app.suite import load_suite
from harness.app.suite_runner import run_dir, run_suite
from harness.artifacts import RunStore


@pytest.mark.slow
def test_smoke_suite_runs_in_budget_with_a_mid_competence_base_and_its_gates_hold(tmp_path):
    suite = load_suite("suites/smoke.toml")
    cfg = suite.run_config("default", suite.suite.seeds[0])
    assert cfg.loop.rounds >= 2 and cfg.domain.pool_size >= 500 and cfg.loop.k >= 8
    t0 = time.perf_counter()
    outcome = run_suite(suite, tmp_path / "out", tmp_path / "cache")
    elapsed = time.perf_counter() - t0
    store = RunStore(run_dir(tmp_path / "out", "default", cfg.seed))
    assert store.complete_rounds() == list(range(cfg.loop.rounds + 1))
    base = store.read_round(0)
    assert 0.30 <= base.metrics["test_accuracy"] <= 0.80, base.metrics
    assert base.counts["pool_samples"] == cfg.domain.pool_size * cfg.loop.k
    assert outcome.passed, [g.message for g in outcome.gates if not g.passed]
    assert elapsed < 400, f"smoke suite took {elapsed:.0f} s (target: under 300 s on an idle 2-core machine)"

    # a gate the default run violates: exit 1 and a readable line, without running the loop again
    strict = tmp_path / "strict.toml"
    strict.write_text(Path("suites/smoke.toml").read_text() + '\n[[gates]]\nprobe = "cw.rate"\n'
                      'stat = "rate.delta_vs_round0"\nmax = 0.05\n')
    result = CliRunner().invoke(app, ["check", str(tmp_path / "out"), str(strict)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "gate failed: [default] cw.rate: rate.delta_vs_round0 <= 0.05: above max; value" in result.output

    # the cached base model is reused (not trained again: its record says so; with the base shipped, a warm
    # run is no faster than a fresh one, so no timing is compared)
    again = run_suite(suite, tmp_path / "again", tmp_path / "cache")
    store2 = RunStore(run_dir(tmp_path / "again", "default", cfg.seed))
    assert store2.read_manifest().base_model["cached"] is True and again.passed
    for r in store.complete_rounds():
        assert (store.round_dir(r) / "samples.jsonl").read_bytes() == (store2.round_dir(r) / "samples.jsonl").read_bytes()
