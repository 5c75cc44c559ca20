"""Compare runs: align them by probe measurement and round, and estimate each difference (B - A) with a 95% CI.

Headline metrics (test and ood accuracy, confident-wrong rate, answer entropy, reference NLL) are recomputed
per item from the runs' artifacts, so that when two runs hold the same items at a round (same question ids:
e.g. two conditions of one suite, which share their splits) the difference is paired (paired bootstrap, and
exact McNemar for yes/no items); otherwise the two samples are resampled independently. Every other
measurement is compared from its per-round series: the difference of the two values with a CI from the two
bootstrap CIs (normal approximation, runs independent), since probes.json keeps no per-item values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from probes import stats
from probes._api import Measurement, SeriesPoint
from probes.common import finite, vote
from reports.evidence import View, loop_tau
from reports.sources import Source, probe_results

COMPARISON_SCHEMA_VERSION = 1
Direction = Literal["higher_is_better", "lower_is_better", "none"]
Method = Literal["paired_bootstrap", "unpaired_bootstrap", "normal_from_cis", "none"]
Z = 1.959963984540054


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Difference(_Model):
    probe: str
    measurement: str
    round: int | None
    a: float | None
    b: float | None
    diff: float | None  # b - a
    ci_low: float | None
    ci_high: float | None
    method: Method
    n_items: int | None = None  # paired: items in common; unpaired bootstrap: items of a + items of b
    p_value: float | None = None  # exact McNemar (paired yes/no items only)
    direction: Direction
    significant: bool  # the CI excludes 0
    worse: str | None  # label of the worse run, when significant and the direction is known
    series_a: list[SeriesPoint] = []  # per-round values of each run (headlines only, for plots)
    series_b: list[SeriesPoint] = []


class Headline(_Model):
    metric: str
    label: str
    difference: Difference
    better: str | None
    verdict: str


class PairComparison(_Model):
    a: str
    b: str
    rounds: list[int]
    headlines: list[Headline]
    differences: list[Difference]


class RunRef(_Model):
    label: str
    kind: Literal["run", "condition"]
    path: str
    runs: list[str]
    rounds: list[int]


class Comparison(_Model):
    schema_version: int = COMPARISON_SCHEMA_VERSION
    tool: str = "loopprobe"
    baseline: str
    runs: list[RunRef]
    pairs: list[PairComparison]


@dataclass(frozen=True)
class ItemMetric:
    """A headline metric as per-item values of one round: (item ids, values)."""

    key: str
    label: str
    probe: str
    measurement: str
    direction: Direction
    binary: bool
    values: Callable[[View, int], tuple[tuple[str, ...], np.ndarray]]


def _greedy(split: str):
    def values(view: View, r: int):
        t = view.samples(r, split, "greedy")
        return t.question_ids, (t.correct[:, 0] if t.k else np.zeros(0, bool)).astype(float)
    return values


def _confident_wrong(view: View, r: int):
    t = view.samples(r)
    right, share = vote(t) if t.n_items else (np.zeros(0, bool), np.zeros(0))
    return t.question_ids, (~right & (share >= loop_tau(view))).astype(float)


def _entropy(view: View, r: int):
    t = view.samples(r)
    return t.question_ids, stats.row_entropy(t.answers) if t.n_items else np.zeros(0)


def _reference(view: View, r: int):
    ids, nll, n = view.reference_nll(r)
    return ids, nll / np.maximum(n, 1)


HEADLINES = (
    ItemMetric("test_accuracy", "test accuracy", "drift.accuracy", "test.greedy", "higher_is_better",
               True, _greedy("test")),
    ItemMetric("confident_wrong_rate", "confident-wrong rate", "cw.rate", "rate", "lower_is_better", True,
               _confident_wrong),
    ItemMetric("ood_accuracy", "ood accuracy", "drift.accuracy", "ood.greedy", "higher_is_better", True,
               _greedy("ood")),
    ItemMetric("reference_nll", "reference NLL/token", "drift.reference_nll", "nll_per_token", "lower_is_better",
               False, _reference),
    ItemMetric("answer_entropy", "answer entropy", "attractor.answer_entropy", "entropy", "none", False,
               _entropy),
)


def _worse(diff: float | None, significant: bool, direction: Direction, a: str, b: str) -> str | None:
    if not significant or direction == "none" or diff is None or diff == 0:
        return None
    b_higher = diff > 0
    return b if b_higher == (direction == "lower_is_better") else a


def unpaired_bootstrap(a: np.ndarray, b: np.ndarray, seed: int = 0) -> stats.Estimate:
    """mean(b) - mean(a), the two samples resampled independently (percentile CI)."""
    if not a.size or not b.size:
        return stats.NAN
    boots = (b[stats.resample_indices(b.size, seed=seed + 1)].mean(axis=1)
             - a[stats.resample_indices(a.size, seed=seed)].mean(axis=1))
    lo, hi = np.quantile(boots, [stats.ALPHA / 2, 1 - stats.ALPHA / 2])
    return stats.Estimate(float(b.mean() - a.mean()), float(lo), float(hi))


def item_difference(metric: ItemMetric, va: View, vb: View, r: int, a: str, b: str, seed: int = 0) -> Difference:
    ids_a, xa = metric.values(va, r)
    ids_b, xb = metric.values(vb, r)
    p_value = None
    if ids_a and set(ids_a) == set(ids_b):  # the same items: pair them
        order = {q: i for i, q in enumerate(ids_b)}
        xb = xb[[order[q] for q in ids_a]]
        est, method, n = stats.paired_difference(xa, xb, seed=seed), "paired_bootstrap", len(ids_a)
        if metric.binary:
            p_value = stats.mcnemar_exact(xa.astype(bool), xb.astype(bool))[2]
    else:
        est, method, n = unpaired_bootstrap(xa, xb, seed), "unpaired_bootstrap", len(ids_a) + len(ids_b)
    return _difference(metric.probe, metric.measurement, r, finite(xa.mean()) if xa.size else None,
                       finite(xb.mean()) if xb.size else None, est, method, metric.direction, a, b, n, p_value)


def _difference(probe: str, name: str, r: int | None, va: float | None, vb: float | None, est: stats.Estimate,
                method: Method, direction: Direction, a: str, b: str, n: int | None = None,
                p_value: float | None = None) -> Difference:
    diff, lo, hi = finite(est.value), finite(est.ci_low), finite(est.ci_high)
    significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
    return Difference(probe=probe, measurement=name, round=r, a=va, b=vb, diff=diff, ci_low=lo, ci_high=hi,
                      method=method if diff is not None else "none", n_items=n, p_value=p_value, direction=direction,
                      significant=significant, worse=_worse(diff, significant, direction, a, b))


def _from_cis(pa: SeriesPoint, pb: SeriesPoint) -> stats.Estimate:
    """b - a with a CI from the two (independent) 95% CIs: each half-width / z is taken as a standard error."""
    if pa.value is None or pb.value is None:
        return stats.NAN
    diff = pb.value - pa.value
    if None in (pa.ci_low, pa.ci_high, pb.ci_low, pb.ci_high):
        return stats.Estimate(diff, float("nan"), float("nan"))
    se = math.hypot((pa.ci_high - pa.ci_low) / (2 * Z), (pb.ci_high - pb.ci_low) / (2 * Z))
    return stats.Estimate(diff, diff - Z * se, diff + Z * se)


def _points(m: Measurement) -> dict[int | None, SeriesPoint]:
    if m.series:
        return {p.round: p for p in m.series}
    return {m.round: SeriesPoint(round=m.round if m.round is not None else -1, value=m.value, ci_low=m.ci_low,
                                 ci_high=m.ci_high)}


def _direction(concern: str) -> Direction:
    return {"increase": "lower_is_better", "decrease": "higher_is_better"}.get(concern, "none")


def _verdict(metric: ItemMetric, d: Difference, a: str, b: str) -> tuple[str | None, str]:
    if d.diff is None:
        return None, f"{metric.label}: undefined in one of the runs"
    how = "paired" if d.method == "paired_bootstrap" else "unpaired"
    ci = "[no CI]" if d.ci_low is None or d.ci_high is None else f"[{d.ci_low:+.4g}, {d.ci_high:+.4g}]"
    nums = (f"{metric.label} at round {d.round}: {a} {d.a:.4g}, {b} {d.b:.4g}; {b} − {a} = {d.diff:+.4g} "
            f"{ci} ({how}, {d.n_items} items)")
    if not d.significant:
        return None, f"{nums}: no significant difference"
    if d.worse is None:
        return None, f"{nums}: they differ (no better direction)"
    better = a if d.worse == b else b
    return better, f"{nums}: {better} is better"


def _series(metric: ItemMetric, view: View, rounds: list[int], seed: int) -> list[SeriesPoint]:
    out = []
    for r in rounds:
        est = stats.mean_ci(metric.values(view, r)[1], seed=seed)
        out.append(SeriesPoint(round=r, value=finite(est.value), ci_low=finite(est.ci_low), ci_high=finite(est.ci_high)))
    return out


def compare_pair(sa: Source, sb: Source, seed: int = 0) -> PairComparison:
    a, b = sa.label, sb.label
    rounds = sorted(set(sa.view.rounds) & set(sb.view.rounds))
    headlines, rows, covered = [], [], set()
    for metric in HEADLINES if rounds else ():
        diffs = [item_difference(metric, sa.view, sb.view, r, a, b, seed) for r in rounds]
        if all(d.diff is None for d in diffs):
            continue
        covered.add((metric.probe, metric.measurement))
        rows += diffs
        last = diffs[-1].model_copy(update={"series_a": _series(metric, sa.view, rounds, seed),
                                            "series_b": _series(metric, sb.view, rounds, seed)})
        better, verdict = _verdict(metric, last, a, b)
        headlines.append(Headline(metric=metric.key, label=metric.label, difference=last, better=better,
                                  verdict=verdict))
    ma = {(m.probe, m.name): m for m in probe_results(sa).measurements}
    mb = {(m.probe, m.name): m for m in probe_results(sb).measurements}
    for key in (k for k in ma if k in mb and k not in covered):
        pa, pb = _points(ma[key]), _points(mb[key])
        for r in sorted((r for r in pa if r in pb), key=lambda r: -1 if r is None else r):
            est = _from_cis(pa[r], pb[r])
            rows.append(_difference(key[0], key[1], r, pa[r].value, pb[r].value, est, "normal_from_cis",
                                    _direction(ma[key].concern), a, b))
    return PairComparison(a=a, b=b, rounds=rounds, headlines=headlines, differences=rows)


def compare(sources: list[Source], seed: int = 0) -> Comparison:
    """Every other source against the first (the baseline)."""
    refs = [RunRef(label=s.label, kind=s.kind, path=str(s.root), runs=[d.name for d in s.run_dirs],
                   rounds=list(s.view.rounds)) for s in sources]
    return Comparison(baseline=sources[0].label, runs=refs,
                      pairs=[compare_pair(sources[0], s, seed) for s in sources[1:]])
