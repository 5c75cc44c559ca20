"""forecast.skill: a run whose rounds follow their own dataset (a planted answer gaining share round after
round) gives positive skill against "no change" out of sample; a run that moves away from its dataset gets
a fitted step of 0 and so no skill; the skill statistic, the halves and the horizons behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from probes import RunView, get_probe, stats
from probes.testing import RoundSpec, write_synthetic_run

FOLLOWS = [RoundSpec(plant_answer="999", plant_rate=x) for x in (0.5, 0.65, 0.8, 0.95)]
AWAY = [RoundSpec(plant_answer="999", plant_rate=x) for x in (0.95, 0.8, 0.65, 0.5)]


def skill(tmp_path, name, rounds):
    write_synthetic_run(tmp_path / name, rounds, seed=0)
    return {m.name: m for m in get_probe("forecast.skill")().measure(RunView(tmp_path / name))}


def test_a_run_that_follows_its_dataset_is_forecast_by_it(tmp_path):
    m = skill(tmp_path, "follows", FOLLOWS)
    for h in (1, 2):
        dist = m[f"pool.h{h}.distribution.vs_none"]
        assert dist.ci_low > 0, (h, dist.value, dist.ci_low)  # out of sample, better than no change
        assert 0 < dist.details["alpha"]["half_a"] <= 1 and 0 < dist.details["alpha"]["half_b"] <= 1
        assert m[f"pool.h{h}.entropy.vs_none"].ci_low > 0
    assert m["test.h1.distribution.vs_none"].ci_low > 0  # held-out questions move toward their majority too
    assert "pool.h3.distribution.vs_trend" not in m  # one pair 3 apart (0 -> 3), no round before it


def test_a_run_that_moves_away_from_its_dataset_gets_no_skill(tmp_path):
    m = skill(tmp_path, "away", AWAY)
    for name in ("pool.h1.distribution.vs_none", "pool.h2.distribution.vs_none", "pool.h1.accuracy.vs_none"):
        assert m[name].details["alpha"] == {"half_a": 0.0, "half_b": 0.0}  # the fitted step: stay put
        assert m[name].value == 0.0 and m[name].ci_high <= 0.0
    assert m["test.h1.distribution.vs_none"].ci_high < 0.05


def test_skill_score_is_one_minus_the_loss_ratio_with_the_bootstrap_of_its_sums():
    rng = np.random.default_rng(0)
    losses = np.stack([rng.random(3000) + 0.5, rng.random(3000)], axis=1)  # baseline, forecast
    est = stats.bootstrap(losses, "skill_score", seed=0, ids=[str(i) for i in range(3000)])
    assert est.value == pytest.approx(1 - losses[:, 1].sum() / losses[:, 0].sum())
    plain = stats.bootstrap(losses, lambda x: 1 - x[..., 1].sum(axis=1) / x[..., 0].sum(axis=1), seed=0)
    assert (est.ci_low, est.ci_high) == pytest.approx((plain.ci_low, plain.ci_high), rel=1e-12)


def test_horizons_and_baselines_a_run_is_too_short_for_are_not_reported(tmp_path):
    m = skill(tmp_path, "two", FOLLOWS[:2])
    assert m["pool.h1.distribution.vs_none"].degenerate is None
    assert {n for n in m if ".h2." in n or ".h3." in n or "trend" in n or "entropy_fit" in n} == set()


def test_the_entropy_fit_is_numpys_least_squares_line_in_exp_entropy():
    from probes.library.forecast_skill import _entropy_fit

    rng = np.random.default_rng(1)
    acc, ent, ent_next = rng.random((4, 5)), rng.random((4, 5)), rng.random(5)
    got = _entropy_fit(acc, ent, ent_next)
    for b in range(5):
        slope, intercept = np.polyfit(np.exp(ent[:, b]), acc[:, b], 1)
        assert got[b] == pytest.approx(slope * np.exp(ent_next[b]) + intercept, rel=1e-10)
    flat = _entropy_fit(acc, np.ones((4, 5)), ent_next)  # no variation in entropy: the mean accuracy
    np.testing.assert_allclose(flat, acc.mean(axis=0))
