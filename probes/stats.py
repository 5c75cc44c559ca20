"""Statistics shared by every probe: bootstrap CIs over questions, paired comparisons of two rounds on the
same items, the per-item quantities probes are made of, and the false-alarm control over many measurements.
Vectorised over items. Every resampling function takes its seed as a required keyword, so a probe cannot
forget it (probes get it from `Probe.bootstrap` and friends, which pass `Params.seed`).

An estimate made from a *registered* statistic over per-item columns with item ids carries those values
(`Estimate.items`, an `ItemValues`): probes.json's sidecar keeps them, and `loopprobe compare` recomputes the
statistic on two runs' items, paired when the items match. Register a statistic of your own with
`@statistic("name")`; an estimate from a plain callable carries no items and is compared from its CI.

Cross-checked in tests/test_stats.py against scipy and scikit-learn and against hand-computed cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import cast

import numpy as np

from probes import _resample
from probes._resample import SumForm

N_BOOT = 2000
ALPHA = 0.05
Z95 = 1.959963984540054

Statistic = Callable[..., np.ndarray]  # [B, n, c] stack of resampled item columns (+ keyword params) -> [B]
STATISTICS: dict[str, Statistic] = {}
DIFFERENCE = "difference:"  # "difference:NAME": NAME of the right half of the columns minus NAME of the left


def statistic(name: str) -> Callable[[Statistic], Statistic]:
    """Register a statistic under `name`: f(x [B, n, c], **params) -> [B]. Registered statistics can be
    recomputed from the item values probes.json's sidecar keeps, so comparisons of them are paired."""
    def register(f: Statistic) -> Statistic:
        known = STATISTICS.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (f.__module__, f.__qualname__):
            raise TypeError(f"statistic {name!r} is already registered by {known.__module__}.{known.__qualname__}")
        STATISTICS[name] = f
        return f
    return register


def get_statistic(name: str) -> Statistic:
    """The registered statistic `name`, or "difference:NAME" (NAME of the last c/2 columns minus NAME of the
    first c/2). A KeyError names the registered ones."""
    if name.startswith(DIFFERENCE):
        inner = get_statistic(name[len(DIFFERENCE):])

        def difference(x: np.ndarray, **params) -> np.ndarray:
            half = x.shape[-1] // 2
            return inner(x[..., half:], **params) - inner(x[..., :half], **params)
        return difference
    if name not in STATISTICS:
        raise KeyError(f"unknown statistic {name!r}; registered: {', '.join(sorted(STATISTICS))}")
    return STATISTICS[name]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


@statistic("mean")
def _mean(x: np.ndarray) -> np.ndarray:
    """Mean of column 0."""
    return x[..., 0].mean(axis=1)


@statistic("mean_difference")
def _mean_difference(x: np.ndarray) -> np.ndarray:
    """Mean of column 1 minus column 0 (paired: after - before)."""
    return (x[..., 1] - x[..., 0]).mean(axis=1)


@statistic("ratio_of_sums")
def ratio_of_sums(x: np.ndarray) -> np.ndarray:
    """Sum of column 1 / sum of column 0 over items (NaN where the denominator is 0)."""
    return _ratio(x[..., 1].sum(axis=1), x[..., 0].sum(axis=1))


def sum_form(name: str, features: Callable[[np.ndarray, np.ndarray], np.ndarray],
             combine: Callable[..., np.ndarray]) -> None:
    """Say that the registered statistic `name` is `combine(S, n)` of S, the sums over a resample of
    `features(columns, drawn)` (see probes._resample.SumForm): its bootstrap then needs no [B, n, c] stack
    when those sums are exact. `combine` must give the statistic's floats exactly."""
    _resample.SUM_FORMS[name] = SumForm(features, combine)


sum_form("ratio_of_sums", lambda x, drawn: x[:, :2], lambda s, n: _ratio(s[:, 1], s[:, 0]))


@statistic("skill_score")
def skill_score(x: np.ndarray) -> np.ndarray:
    """1 - sum(column 1) / sum(column 0): a forecast's loss (column 1) against a baseline's (column 0)."""
    return 1.0 - ratio_of_sums(x)


sum_form("skill_score", lambda x, drawn: x[:, :2], lambda s, n: 1.0 - _ratio(s[:, 1], s[:, 0]))


def _resampled(values: np.ndarray, name: str, params: Mapping, n_boot: int, seed: int) -> np.ndarray | None:
    if values.shape[0] < _resample.MIN_ITEMS:
        return None
    return _resample.resampled(values, name, params, resample_indices(values.shape[0], n_boot, seed=seed),
                               (values.shape[0], n_boot, seed), DIFFERENCE)


@dataclass(frozen=True)
class ItemValues:
    """The per-item values behind an estimate: item ids, float columns [n, c] in the ids' order, and the
    registered statistic (with keyword params) that turns a [B, n, c] stack of them into estimates."""

    ids: tuple[str, ...]
    columns: np.ndarray
    statistic: str
    params: Mapping[str, float | int | str] = field(default_factory=dict)

    def __post_init__(self):
        if self.columns.ndim != 2 or self.columns.shape[0] != len(self.ids):
            raise ValueError(f"item columns must be [n_ids, c]; got {self.columns.shape} for {len(self.ids)} ids")

    def evaluate(self, stack: np.ndarray) -> np.ndarray:
        return get_statistic(self.statistic)(stack, **self.params)

    @property
    def value(self) -> float:
        return float(np.asarray(self.evaluate(self.columns[None]))[0])


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    items: ItemValues | None = field(default=None, compare=False, repr=False)

    def as_fields(self) -> dict[str, float]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


NAN = Estimate(float("nan"), float("nan"), float("nan"))


@lru_cache(maxsize=16)
def resample_indices(n: int, n_boot: int = N_BOOT, *, seed: int) -> np.ndarray:
    """The [n_boot, n] bootstrap index matrix for n items; cached, since probes resample the same items
    many times with the same seed (and the same indices make their CIs consistent with each other)."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    idx.setflags(write=False)
    return idx


def _columns(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[:, None] if values.ndim == 1 else values


def _resolve(stat: str | Statistic | None, params: Mapping | None) -> Statistic:
    if stat is None:
        return lambda x: x.mean(axis=1)
    if isinstance(stat, str):
        f = get_statistic(stat)
        return lambda x: f(x, **(params or {}))
    return stat


def percentile_interval(point: float, boots: np.ndarray, alpha: float, items: ItemValues | None) -> Estimate:
    if not np.isfinite(boots).any():
        return NAN if items is None else Estimate(NAN.value, NAN.ci_low, NAN.ci_high, items)
    lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
    return Estimate(point, float(lo), float(hi), items)


def _item_means(name: str, columns: np.ndarray) -> np.ndarray | None:
    """For a statistic that is the mean over items of one per-item value, that value ([n]); else None. Lets
    the bootstrap resample a vector instead of the whole column matrix (same floats, less memory)."""
    if name == "mean":
        return columns[:, 0]
    if name == "mean_difference":
        return columns[:, 1] - columns[:, 0]
    if name.startswith(DIFFERENCE) and name[len(DIFFERENCE):] in ("mean", "mean_difference"):
        half = columns.shape[1] // 2
        right, left = (_item_means(name[len(DIFFERENCE):], c) for c in (columns[:, half:], columns[:, :half]))
        return right - left  # type: ignore[operator]
    return None


def bootstrap(values: np.ndarray, statistic: str | Statistic | None = None, n_boot: int = N_BOOT, *, seed: int,
              alpha: float = ALPHA, ids=None, params: Mapping | None = None) -> Estimate:
    """Percentile bootstrap over the first axis (items). `statistic` is a registered name (the values are
    taken as item columns [n] or [n, c]; with `ids` the estimate carries them as `items`), or a callable
    mapping a [B, n, ...] stack of resamples to [B] values (and [1, n, ...] to the point estimate);
    default: the mean."""
    named = isinstance(statistic, str)
    values = _columns(values) if named else np.asarray(values, dtype=float)
    n = values.shape[0]
    items = (ItemValues(tuple(ids), values, cast(str, statistic), dict(params or {})) if named and ids is not None
             else None)
    if n == 0:
        return NAN if items is None else Estimate(NAN.value, NAN.ci_low, NAN.ci_high, items)
    per_item = _item_means(statistic, values) if named else None  # type: ignore[arg-type]
    if per_item is not None:
        boots = _resample.means(per_item, resample_indices(n, n_boot, seed=seed), (n, n_boot, seed))
        return percentile_interval(float(per_item.mean()), boots, alpha, items)
    stat = _resolve(statistic, params)
    point = float(np.asarray(stat(values[None]))[0])
    fast = _resampled(values, statistic, params or {}, n_boot, seed) if named else None  # type: ignore[arg-type]
    boots = fast if fast is not None else np.asarray(stat(values[resample_indices(n, n_boot, seed=seed)]),
                                                      dtype=float)
    return percentile_interval(point, boots, alpha, items)


def bootstrap_many(values: np.ndarray, statistics: dict[str, str | Statistic | None], n_boot: int = N_BOOT, *,
                   seed: int, alpha: float = ALPHA, ids=None) -> dict[str, Estimate]:
    """`bootstrap` of several statistics over one shared stack of resamples, built once. A statistic given
    as None, or with no finite resample, is undefined: its estimate is NAN."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    stack = None  # the [B, n, c] resamples, built once if a statistic needs them
    out = {}
    for name, f in statistics.items():
        if f is None or not n:
            out[name] = NAN
            continue
        stat = _resolve(f, None)
        items = ItemValues(tuple(ids), _columns(values), f) if isinstance(f, str) and ids is not None else None
        boots = _resampled(values, f, {}, n_boot, seed) if isinstance(f, str) else None
        if boots is None:
            stack = values[resample_indices(n, n_boot, seed=seed)] if stack is None else stack
            boots = np.asarray(stat(stack), dtype=float)
        out[name] = percentile_interval(float(np.asarray(stat(values[None]))[0]), boots, alpha, items)
    return out


def mean_ci(values, *, seed: int, ids=None) -> Estimate:
    return bootstrap(values, "mean", seed=seed, ids=ids)


def paired_difference(before, after, *, seed: int, ids=None) -> Estimate:
    """mean(after - before) over the same items, with a paired bootstrap CI."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.shape != after.shape:
        raise ValueError(f"paired values need the same items: shapes {before.shape} and {after.shape}")
    return bootstrap(np.stack([before, after], axis=1), "mean_difference", seed=seed, ids=ids)


def mcnemar_exact(before: np.ndarray, after: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar test on paired booleans: (right->wrong count, wrong->right count, two-sided p)."""
    before, after = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    lost, gained = int((before & ~after).sum()), int((~before & after).sum())
    n = lost + gained
    if n == 0:
        return lost, gained, 1.0
    tail = sum(math.comb(n, i) for i in range(min(lost, gained) + 1)) / 2**n
    return lost, gained, min(1.0, 2 * tail)


def paired_z(before, after) -> float:
    """z of the mean paired difference (after - before): mean / (sd / sqrt(n)); 0 when it has no spread."""
    d = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    if d.size < 2:
        return 0.0
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if d.mean() == 0 else math.copysign(math.inf, d.mean())
    return float(d.mean() / (sd / math.sqrt(d.size)))


# ---------------------------------------------------------------- tests of many measurements


def p_from_ci(value: float | None, ci_low: float | None, ci_high: float | None, null: float = 0.0,
              alpha: float = ALPHA) -> float | None:
    """Two-sided p-value of "value = null" by inverting a (1 - alpha) CI under a normal approximation on the
    CI's side nearest the null: se = |value - near bound| / z. Hence p <= alpha exactly when the CI excludes
    the null, for any CI (percentile bootstrap, halves, ...). None without a CI."""
    if value is None or ci_low is None or ci_high is None or not all(map(math.isfinite, (value, ci_low, ci_high))):
        return None
    if value == null:
        return 1.0
    z_alpha = NormalDist().inv_cdf(1 - alpha / 2)
    se = abs(value - (ci_low if value > null else ci_high)) / z_alpha
    if se == 0 or (value > null and ci_low > value) or (value < null and ci_high < value):
        return 0.0
    return float(math.erfc(abs(value - null) / se / math.sqrt(2)))


def adjust_p(p_values, method: str = "bh") -> np.ndarray:
    """Multiplicity-adjusted p-values: "bh" (Benjamini-Hochberg, false discovery rate), "holm" (Holm-Bonferroni,
    family-wise error rate) or "none". A hypothesis is rejected at level q when its adjusted p <= q."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    if method == "bh":
        adj = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    elif method == "holm":
        adj = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:
        raise ValueError(f"unknown correction {method!r}; use 'bh', 'holm' or 'none'")
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


# ---------------------------------------------------------------- per-item quantities (vectorised rows)


def row_counts(answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For an [n, k] array, each row's sorted values and a mask of where a new value starts: run lengths
    of the sorted rows give the answer counts without a Python loop."""
    s = np.sort(answers, axis=1)
    starts = np.ones_like(s, dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    return s, starts


def row_entropy(answers: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of the empirical distribution of each row's values: [n, k] -> [n]."""
    answers = np.asarray(answers)
    n, k = answers.shape
    if k == 0:
        return np.zeros(n)
    _s, starts = row_counts(answers)
    run_id = np.cumsum(starts, axis=1) - 1  # which distinct value each position belongs to
    counts = np.zeros((n, k))
    np.add.at(counts, (np.repeat(np.arange(n), k), run_id.ravel()), 1)
    p = counts / k
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(np.where(p > 0, p * np.log(p), 0.0)).sum(axis=1)


def row_mode(answers: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most frequent valid value and its share of the row (invalid entries vote for nothing).
    Ties go to the value seen first in the row, as the loop's majority vote does."""
    answers = np.asarray(answers)
    n, k = answers.shape
    valid = np.ones_like(answers, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    eq = (answers[:, :, None] == answers[:, None, :]) & valid[:, None, :] & valid[:, :, None]
    votes = eq.sum(axis=2)  # [n, k]: how many valid samples agree with sample j
    best = votes.argmax(axis=1)  # first index with the maximum count = first-seen among ties
    share = votes[np.arange(n), best] / max(k, 1)
    return answers[np.arange(n), best], share


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) between rows of two [n, m] probability arrays."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    m = 0.5 * (p + q)

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log(a / b), 0.0).sum(axis=-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def answer_distributions(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise empirical distributions of two [n, k1] and [n, k2] answer arrays over their joint support:
    returns [n, m] probabilities for each (m = k1 + k2 slots; unused slots are zero)."""
    a, b = np.asarray(a), np.asarray(b)
    joint = np.concatenate([a, b], axis=1)
    _n, m = joint.shape
    eq_a = joint[:, :, None] == a[:, None, :]
    eq_b = joint[:, :, None] == b[:, None, :]
    first = np.argmax(joint[:, :, None] == joint[:, None, :], axis=2) == np.arange(m)  # first slot per value
    pa = np.where(first, eq_a.sum(axis=2) / max(a.shape[1], 1), 0.0)
    pb = np.where(first, eq_b.sum(axis=2) / max(b.shape[1], 1), 0.0)
    return pa, pb


def auroc(scores, labels) -> float:
    """Area under the ROC curve of `scores` for boolean `labels` (Mann-Whitney, ties count one half)."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def expected_calibration_error(confidence, correct, bins: int = 10) -> float:
    """ECE with equal-width bins on [0, 1]; the top bin includes 1."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return float("nan")
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total)


def brier(confidence, correct) -> float:
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    return float(np.mean((confidence - correct) ** 2)) if confidence.size else float("nan")


def pass_at_k(n: int, c: np.ndarray, k: int) -> np.ndarray:
    """Unbiased pass@k per item from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    c = np.asarray(c, dtype=int)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}")
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i): one value per possible c, then a lookup
    table = np.array([0.0 if n - j < k else np.prod(1.0 - k / np.arange(n - j + 1, n + 1)) for j in range(n + 1)])
    return 1.0 - table[c]


def conjunction_p(all_of: list[Estimate], any_of: Sequence[Estimate] = (), null: float = 0.0) -> float:
    """p-value of an alarm that needs every change in `all_of` and at least one in `any_of`: an
    intersection-union test (the largest p of the conjunction), with Bonferroni over the alternatives."""
    def p(e: Estimate) -> float:
        found = p_from_ci(e.value, e.ci_low, e.ci_high, null)
        return 1.0 if found is None else found

    parts = [p(e) for e in all_of]
    if any_of:
        parts.append(min(1.0, len(any_of) * min(p(e) for e in any_of)))
    return max(parts) if parts else 1.0
