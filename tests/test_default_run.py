"""The default configuration end to end (~4 min on a 2-core machine): `.ci/run` runs it with `-m slow`."""

import time

import pytest

from harness.config import RunConfig
from harness.loop import run_loop


@pytest.mark.slow
def test_default_configuration_runs_in_budget_with_a_mid_competence_base(tmp_path):
    cfg = RunConfig()
    assert cfg.loop.rounds >= 2 and cfg.domain.pool_size >= 500 and cfg.loop.k >= 8
    t0 = time.perf_counter()
    store = run_loop(cfg, tmp_path / "run", tmp_path / "cache")
    elapsed = time.perf_counter() - t0
    assert store.complete_rounds() == list(range(cfg.loop.rounds + 1))
    base = store.read_round(0)
    assert 0.30 <= base.metrics["test_accuracy"] <= 0.80, base.metrics
    assert base.counts["pool_samples"] == cfg.domain.pool_size * cfg.loop.k
    assert elapsed < 400, f"default run took {elapsed:.0f} s (target: under 300 s on an idle 2-core machine)"

    t0 = time.perf_counter()
    again = run_loop(cfg.model_copy(update={"loop": cfg.loop.model_copy(update={"rounds": 0})}),
                     tmp_path / "again", tmp_path / "cache")
    assert again.read_manifest().base_model["cached"] is True
    assert (tmp_path / "again/round-000/samples.jsonl").read_bytes() == \
        (tmp_path / "run/round-000/samples.jsonl").read_bytes()
    assert time.perf_counter() - t0 < 120
