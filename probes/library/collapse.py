"""Collapse and spikes: when does the loop's own proxy part ways with held-out accuracy (the "model collapse
step" of RL with intrinsic rewards), and does any round move a headline metric far more than the rounds before
it said it would (the seed's "sudden capability spikes")?"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import Literal

import numpy as np
from pydantic import Field

from probes import Probe, RunView, _resample, probe, stats, top_items
from probes._api import SeriesPoint
from probes.common import aligned_rounds, confident_wrong, finite, test_accuracy, vote


def _proxy(run: RunView, how: str) -> tuple[str, tuple[str, ...], dict[int, np.ndarray]]:
    """Per pool question and round, what the loop rewards itself with: the recorded mean reward (policy
    gradient), else the majority vote's share (agreement, which self-consistency selects on)."""
    ids, tables = aligned_rounds(run, "pool")
    rewards = {r: run.rewards(r) for r in run.rounds} if how in ("auto", "reward") else {}
    recorded = all(all(q in rewards[r] for q in ids) for r in run.rounds) if rewards else False
    if (how == "reward" or (how == "auto" and all(rewards.values()))) and recorded:
        return "reward", ids, {r: np.array([rewards[r][q] for q in ids]) for r in run.rounds}
    return "agreement", ids, {r: vote(t)[1] for r, t in tables.items()}


def _first_collapse(acc: np.ndarray, proxy: np.ndarray, min_drop: float, min_rise: float) -> np.ndarray:
    """acc, proxy: [B, R] per-round means. Per row, the first round index i >= 1 whose accuracy is at least
    min_drop below the best earlier round's while the proxy is at least min_rise above that round's; R when
    none (censored)."""
    b, n_rounds = acc.shape
    out = np.full(b, n_rounds)
    best = np.zeros(b, dtype=int)
    rows = np.arange(b)
    for i in range(1, n_rounds):
        hit = (acc[:, i] <= acc[rows, best] - min_drop) & (proxy[:, i] >= proxy[rows, best] + min_rise)
        out = np.where((out == n_rounds) & hit, i, out)
        best = np.where(acc[:, i] > acc[rows, best], i, best)
    return out


@probe
class CollapseStep(Probe):
    """The first round at which the loop's proxy keeps rising while held-out accuracy falls: URLVR's "model
    collapse step", where an intrinsic reward goes on improving after it stopped meaning accuracy.

    Proxy: each pool question's mean recorded reward under policy-gradient distillation (majority vote,
    self-certainty, ...), else its majority vote share. Accuracy: test pass@1 (the sampled policy RL
    trains; `accuracy = "greedy"` for greedy). The step is the first round r whose mean accuracy is at
    least `min_drop` below the best earlier round b's while the proxy is at least `min_rise` above round
    b's. Its CI is the 2.5-97.5% range of the same rule over bootstrap resamples of test and pool
    questions (a resample with no collapse counts as one round past the last). It fires (`alarm`) when at
    the step the paired changes against round b both hold: accuracy's CI wholly below 0 and the proxy's
    wholly above 0; its p is the larger of the two, times the rounds searched (Bonferroni).
    `accuracy_drop` and `proxy_rise` are those paired changes with their CIs (at the step, or the last
    round against its best earlier one when there is none). Evidence: test questions that lost most.
    """

    id = "attractor.collapse_step"
    family = "attractors"
    reads = ("samples", "eval", "selected")
    measurements = ("collapse_step", "accuracy_drop", "proxy_rise")

    class Params(Probe.Params):
        accuracy: Literal["pass1", "greedy"] = Field("pass1", description="held-out accuracy: sampled or greedy")
        proxy: Literal["auto", "reward", "agreement"] = Field(
            "auto", description="the recorded reward when there is one (auto), or the majority vote share")
        min_drop: float = Field(0.02, ge=0, description="accuracy below the best earlier round by at least this")
        min_rise: float = Field(0.01, ge=0, description="proxy above that round's by at least this")

    params: Params

    def _resampled_means(self, values: np.ndarray) -> np.ndarray:
        """[B, R]: each round's mean of the per-item values [n, R] in each bootstrap resample of the items."""
        n = len(values)
        idx = stats.resample_indices(n, seed=self.seed)
        return np.stack([_resample.means(np.ascontiguousarray(values[:, j]), idx, (n, stats.N_BOOT, self.seed))
                         for j in range(values.shape[1])], axis=1)

    def measure(self, run: RunView):
        rounds = list(run.rounds)
        test_ids, acc = test_accuracy(run, self.params.accuracy)
        kind, pool_ids, prox = _proxy(run, self.params.proxy)
        if len(rounds) < 2 or not test_ids or not pool_ids or not all(len(acc[r]) for r in rounds):
            reason = "needs two rounds, test decodings and pool samples"
            return [self.measurement(n, None, degenerate=reason) for n in type(self).measurements]
        a = np.stack([acc[r] for r in rounds], axis=1)  # [n_test, R]
        p = np.stack([prox[r] for r in rounds], axis=1)  # [n_pool, R]
        step = int(_first_collapse(a.mean(0)[None], p.mean(0)[None], self.params.min_drop, self.params.min_rise)[0])
        boot = _first_collapse(self._resampled_means(a), self._resampled_means(p), self.params.min_drop,
                               self.params.min_rise)
        found = step < len(rounds)
        i = step if found else len(rounds) - 1
        best = int(np.argmax(a.mean(0)[:i]))  # the earliest best round before i
        drop = self.paired_difference(a[:, best], a[:, i], ids=test_ids)
        rise = self.paired_difference(p[:, best], p[:, i], ids=pool_ids)
        significant = found and drop.ci_high < 0 and rise.ci_low > 0
        p_drop, p_rise = (stats.p_from_ci(e.value, e.ci_low, e.ci_high, 0.0) for e in (drop, rise))
        alarm_p = min(1.0, max(p_drop or 1.0, p_rise or 1.0) * (len(rounds) - 1))
        lo, hi = np.percentile(boot, [2.5, 97.5])
        to_round = {j: r for j, r in enumerate(rounds)}
        details = {"proxy": kind, "accuracy": self.params.accuracy, "best_round": rounds[best],
                   "compared_round": rounds[i], "share_of_resamples_with_collapse": float(np.mean(boot < len(rounds))),
                   "accuracy_by_round": [finite(float(v)) for v in a.mean(0)],
                   "proxy_by_round": [finite(float(v)) for v in p.mean(0)]}
        series = [SeriesPoint(round=r, value=float(a[:, j].mean())) for j, r in enumerate(rounds)]
        return [
            self.measurement(
                "collapse_step", float(rounds[step]) if found else None,
                ci_low=float(to_round.get(int(lo), rounds[-1] + 1)), ci_high=float(to_round.get(int(hi), rounds[-1] + 1)),
                round=rounds[i], alarm=bool(significant), series=series,
                evidence=top_items(test_ids, a[:, best] - a[:, i]),
                details={**details, "alarm_p": alarm_p, "rounds_searched": len(rounds) - 1}, degenerate=None),
            self.measurement("accuracy_drop", drop, round=rounds[i], details=details),
            self.measurement("proxy_rise", rise, round=rounds[i], details=details),
        ]


METRICS = ("accuracy", "cw_rate", "entropy")


def _headline(run: RunView) -> dict[str, tuple[tuple[str, ...], dict[int, np.ndarray]]]:
    """Per metric, item ids and per-round per-item values: test greedy accuracy; per pool question,
    confident-wrong (a wrong majority with share >= CONFIDENT_SHARE) and answer entropy (nats)."""
    test_ids, acc = test_accuracy(run, "greedy")
    pool_ids, tables = aligned_rounds(run, "pool")
    cw = {r: confident_wrong(t) for r, t in tables.items()}
    entropy = {r: stats.row_entropy(t.answers) for r, t in tables.items()}
    return {"accuracy": (test_ids, acc), "cw_rate": (pool_ids, cw), "entropy": (pool_ids, entropy)}


@probe
class Spike(Probe):
    """The largest one-round change of a headline metric against its forecast, in standard errors: the
    seed's "sudden capability spikes". Metrics: test greedy accuracy, the pool's confident-wrong rate, the
    pool's answer entropy.

    Round r's change (x[r] - x[r-1]) is forecast by the mean change of the rounds before it, (x[r-1] -
    x[0]) / (r-1), the trend so far (from round 2 on: a trend needs one change to go on). Both are taken per
    item, so the residual is paired per question and its standard error (sd / sqrt(n) of the per-item
    residuals) carries the forecast's own noise. Per metric the spike is the round with the largest |residual|
    in the metric's units (so a flat round after a jump does not outrank the jump), and `spike` is the
    metric whose spike has the largest |z| (value: that z; CI z +- 1.96; details: metric, the residual); it fires
    (`alarm`) when |z| exceeds the two-sided 5% normal quantile Bonferroni-corrected for the
    metrics x rounds searched. `<metric>.spike`: each metric's spike (signed z), with its series of z by
    round. Evidence: the items with the largest residuals at the spike.
    """

    id = "drift.spike"
    family = "drift"
    reads = ("samples", "eval")
    measurements = ("spike", *(f"{m}.spike" for m in METRICS))

    class Params(Probe.Params):
        alpha: float = Field(0.05, gt=0, lt=1, description="family-wise level over metrics x rounds")

    params: Params

    def measure(self, run: RunView):
        rounds = list(run.rounds)
        if len(rounds) < 3:
            return [self.measurement(n, None, degenerate="needs three rounds (a change to forecast the next from)")
                    for n in type(self).measurements]
        found: dict[str, list[tuple[int, float, float, np.ndarray, tuple[str, ...]]]] = {}
        for metric, (ids, values) in _headline(run).items():
            changes = [values[b] - values[a] for a, b in itertools.pairwise(rounds)]  # per item, round to round
            found[metric] = []
            for i, r in enumerate(rounds[2:], start=1):
                resid = changes[i] - np.mean(changes[:i], axis=0)  # per item: its change minus its mean earlier one
                se = resid.std(ddof=1) / math.sqrt(len(resid)) if len(resid) > 1 else 0.0
                z = float(resid.mean() / se) if se > 0 else 0.0
                found[metric].append((r, z, float(resid.mean()), resid, ids))
        tests = sum(len(v) for v in found.values())
        crit = NormalDist().inv_cdf(1 - self.params.alpha / (2 * tests))
        out = []
        picked = {}  # per metric, the round whose change is furthest from its forecast, in the metric's units
        for metric, rows in found.items():
            picked[metric] = r, z, mean, _, _ = max(rows, key=lambda t: abs(t[2]))
            out.append(self.measurement(
                f"{metric}.spike", z, ci_low=z - 1.96, ci_high=z + 1.96, round=r, degenerate=None,
                series=[SeriesPoint(round=rr, value=zz) for rr, zz, *_ in rows],
                details={"residual": mean, "forecast": "the mean change of the earlier rounds"}))
        metric, (r, z, mean, resid, ids) = max(picked.items(), key=lambda mt: abs(mt[1][1]))
        p = min(1.0, math.erfc(abs(z) / math.sqrt(2)) * tests)
        out.insert(0, self.measurement(
            "spike", z, ci_low=z - 1.96, ci_high=z + 1.96, round=r, alarm=abs(z) > crit, degenerate=None,
            evidence=top_items(ids, np.sign(z) * resid),
            details={"metric": metric, "residual": mean, "critical_z": crit, "tests": tests, "alarm_p": p}))
        return out
