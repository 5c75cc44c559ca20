"""One measurement in two runs (conditions, or a run and its baseline): B - A at a round, with a 95% CI, by
the strongest method the records allow. Gates on condition differences and `loopprobe compare` use it.

Methods, strongest first:
- "identical_inputs": both runs computed it under one definition, with the same code, from byte-identical
  artifacts in every round up to r: the difference is exactly 0, CI [0, 0] (e.g. two arms at round 0 that
  share their base model);
- "paired": both hold per-item records over the same items: paired bootstrap of the statistic
  (`item_difference`), with the exact McNemar p for a mean of yes/no items;
- "unpaired": records over different items: each run's items resampled independently;
- "from_cis": no records (a pool-level statistic): the two CIs' half-widths taken as independent standard
  errors (normal approximation);
- "none": undefined in one run.

Two runs whose measurement definitions differ are never compared: `comparable` says why not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from probes import stats
from probes._api import Measurement, SeriesPoint
from probes._runner import ProbeInfo


@dataclass(frozen=True)
class Difference:
    value: float | None  # b - a
    ci_low: float | None
    ci_high: float | None
    method: str
    n_items: int | None
    p_value: float | None
    a: float | None
    b: float | None


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def comparable(a: ProbeInfo | None, b: ProbeInfo | None) -> str | None:
    """None when the two runs measured this probe under one definition, else a one-line reason."""
    if a is None or b is None:
        return "not measured in both"
    if a.definition == b.definition:
        return None
    def flat(d: dict, prefix: str = "") -> dict:
        return {k2: v2 for k, v in d.items() for k2, v2 in
                (flat(v, f"{prefix}{k}.").items() if isinstance(v, dict) else [(f"{prefix}{k}", v)])}

    da, db = flat(a.definition), flat(b.definition)
    diffs = [f"{k} {da.get(k)} vs {db.get(k)}" for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)]
    return "defined differently (" + "; ".join(diffs) + ")"


def same_inputs(a: ProbeInfo, b: ProbeInfo, r: int) -> bool:
    """Same definition, same code, byte-identical artifacts in every round up to r."""
    rounds = [k for k in a.inputs if int(k) <= r]
    return (a.definition == b.definition and a.code == b.code and bool(a.code) and str(r) in a.inputs
            and all(a.inputs.get(k) == b.inputs.get(k) for k in rounds)
            and sorted(rounds) == sorted(k for k in b.inputs if int(k) <= r))


def point_at(m: Measurement, r: int | None) -> SeriesPoint | None:
    for p in m.series:
        if p.round == r:
            return p
    if m.round == r or (not m.series and r is None):
        return SeriesPoint(round=m.round if m.round is not None else -1, value=m.value, ci_low=m.ci_low,
                           ci_high=m.ci_high)
    return None


def _from_cis(pa: SeriesPoint, pb: SeriesPoint) -> stats.Estimate:
    diff = pb.value - pa.value  # type: ignore[operator]
    if pa.ci_low is None or pa.ci_high is None or pb.ci_low is None or pb.ci_high is None:
        return stats.Estimate(diff, float("nan"), float("nan"))
    se = math.hypot((pa.ci_high - pa.ci_low) / (2 * stats.Z95), (pb.ci_high - pb.ci_low) / (2 * stats.Z95))
    return stats.Estimate(diff, diff - stats.Z95 * se, diff + stats.Z95 * se)


def _binary_mean(items: stats.ItemValues) -> bool:
    return items.statistic == "mean" and items.columns.shape[1] == 1 and bool(np.isin(items.columns, (0.0, 1.0)).all())


def item_difference(a: stats.ItemValues, b: stats.ItemValues, *, seed: int, alpha: float = stats.ALPHA
                    ) -> tuple[stats.Estimate, str, int]:
    """b - a of one registered statistic from two runs' per-item values: (estimate, method, items).

    "paired" when both hold the same item ids (a paired bootstrap: one resample of the items serves both
    runs, so identical values give exactly 0 with CI [0, 0]); "unpaired" otherwise (each run's items
    resampled independently). A ValueError when the two are not the same statistic of the same columns."""
    if (a.statistic, dict(a.params), a.columns.shape[1]) != (b.statistic, dict(b.params), b.columns.shape[1]):
        raise ValueError(f"different statistics: {a.statistic}{dict(a.params)} and {b.statistic}{dict(b.params)}")
    if len(a.ids) == len(b.ids) and set(a.ids) == set(b.ids):
        xb = b.columns if a.ids == b.ids else b.columns[[{q: i for i, q in enumerate(b.ids)}[q] for q in a.ids]]
        both = np.concatenate([a.columns, xb], axis=1)
        est = stats.bootstrap(both, stats.DIFFERENCE + a.statistic, seed=seed, alpha=alpha, params=a.params)
        return est, "paired", len(a.ids)
    if not len(a.ids) or not len(b.ids):
        return stats.NAN, "unpaired", len(a.ids) + len(b.ids)
    boots = (np.asarray(b.evaluate(b.columns[stats.resample_indices(len(b.ids), seed=seed + 1)]), dtype=float)
             - np.asarray(a.evaluate(a.columns[stats.resample_indices(len(a.ids), seed=seed)]), dtype=float))
    return stats.percentile_interval(b.value - a.value, boots, alpha, None), "unpaired", len(a.ids) + len(b.ids)


def difference(ma: Measurement, mb: Measurement, r: int | None, info_a: ProbeInfo | None = None,
               info_b: ProbeInfo | None = None, *, seed: int = 0) -> Difference:
    """B - A of one measurement at round r (None: a measurement without rounds)."""
    pa, pb = point_at(ma, r), point_at(mb, r)
    va, vb = (pa.value if pa else None), (pb.value if pb else None)
    if va is None or vb is None:
        return Difference(None, None, None, "none", None, None, va, vb)
    if info_a is not None and info_b is not None and r is not None and same_inputs(info_a, info_b, r):
        return Difference(vb - va, 0.0, 0.0, "identical_inputs", None, 1.0 if vb == va else 0.0, va, vb)
    ia, ib = ma.items_at(r), mb.items_at(r)
    p_value = None
    try:
        est, method, n = item_difference(ia, ib, seed=seed) if ia is not None and ib is not None else (
            None, "", None)
    except ValueError:
        est = None
    if est is not None:
        if method == "paired" and _binary_mean(ia) and _binary_mean(ib):  # type: ignore[arg-type]
            order = {q: i for i, q in enumerate(ib.ids)}  # type: ignore[union-attr]
            xb = ib.columns[[order[q] for q in ia.ids], 0]  # type: ignore[union-attr, index]  # numpy stubs
            p_value = stats.mcnemar_exact(ia.columns[:, 0].astype(bool), xb.astype(bool))[2]  # type: ignore[union-attr]
    else:
        est, method, n = _from_cis(pa, pb), "from_cis", None  # type: ignore[arg-type]
    value, lo, hi = _finite(est.value), _finite(est.ci_low), _finite(est.ci_high)
    if p_value is None:
        p_value = stats.p_from_ci(value, lo, hi)
    return Difference(value, lo, hi, method if value is not None else "none", n, p_value, va, vb)
