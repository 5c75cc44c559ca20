"""Statistics shared by every probe: bootstrap CIs over questions, paired comparisons of two rounds on the
same items, and the per-item quantities probes are made of. Vectorised over items; seeded.

Cross-checked in tests/test_stats.py against scipy and scikit-learn and against hand-computed cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_BOOT = 2000
ALPHA = 0.05


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float

    def as_fields(self) -> dict[str, float]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


NAN = Estimate(float("nan"), float("nan"), float("nan"))


@lru_cache(maxsize=16)
def resample_indices(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """The [n_boot, n] bootstrap index matrix for n items; cached, since probes resample the same items
    many times with the same seed (and the same indices make their CIs consistent with each other)."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    idx.setflags(write=False)
    return idx


def bootstrap(values: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray] | None = None,
              n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA) -> Estimate:
    """Percentile bootstrap over the first axis (items). `statistic(x)` maps a [B, n, ...] stack of
    resamples to [B] values and [1, n, ...] to the point estimate; default: the mean."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    if n == 0:
        return NAN
    stat = statistic or (lambda x: x.mean(axis=1))
    point = float(np.asarray(stat(values[None]))[0])
    boots = np.asarray(stat(values[resample_indices(n, n_boot, seed)]), dtype=float)
    lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
    return Estimate(point, float(lo), float(hi))


def bootstrap_many(values: np.ndarray, statistics: dict[str, Callable[[np.ndarray], np.ndarray] | None],
                   n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA) -> dict[str, Estimate]:
    """`bootstrap` of several statistics over one shared stack of resamples, built once. A statistic given
    as None, or with no finite resample, is undefined: its estimate is NAN."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    stack = values[resample_indices(n, n_boot, seed)] if n else None
    out = {}
    for name, f in statistics.items():
        boots = np.asarray(f(stack), dtype=float) if f is not None and n else np.full(1, np.nan)
        if not np.isfinite(boots).any():
            out[name] = NAN
            continue
        lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
        out[name] = Estimate(float(np.asarray(f(values[None]))[0]), float(lo), float(hi))
    return out


def mean_ci(values, seed: int = 0) -> Estimate:
    return bootstrap(np.asarray(values, dtype=float), seed=seed)


def paired_difference(before, after, seed: int = 0) -> Estimate:
    """mean(after - before) over the same items, with a paired bootstrap CI."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.shape != after.shape:
        raise ValueError(f"paired values need the same items: shapes {before.shape} and {after.shape}")
    return bootstrap(after - before, seed=seed)


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
    s, starts = row_counts(answers)
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
    n, m = joint.shape
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
