"""Bootstrap resamples of many items, fast, giving the very floats the plain way gives (a gather of every
resample, `values[idx]`, then numpy's reduction).

Two ways, both bit-identical to the plain one:

- exact sums: a per-item column whose values are multiples of one power of two, small enough that no sum
  of n of them leaves float64's 53 bits (0/1 flags, shares of k = 8 votes, token counts, their differences),
  sums exactly in any order. So its sum over every resample is one product with the resamples' count matrix
  (how often each resample draws each item), whatever order numpy's pairwise summation would have used.
- chunks: any other column is gathered and reduced a few resamples at a time (each resample is reduced on
  its own, so the floats are the same), which keeps the [B, n] gather in cache instead of in fresh pages.

A statistic of sums of per-item features (ratio of sums, ECE, Brier, AUROC) registers a `SumForm`, so its
resamples are made from exact sums too when its features allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

MIN_ITEMS = 2048  # below it the plain gather is cheap: it is used as it always was
CHUNK = 32  # resamples gathered at once
_COUNTS: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}  # (n, n_boot, seed) -> counts, drawn
_MAX_COUNTS = 2  # count matrices kept (each n_boot x n float64: 400 MB at 25,000 items)
_ASKED: set[tuple[int, int, int]] = set()  # keys a mean was resampled for: a second one builds the counts


@dataclass(frozen=True)
class SumForm:
    """A statistic of per-resample sums: `combine(S, n, **params)` of S [B, m], the sums over each resample
    of `features(values, drawn)` [n, m] (`drawn`: bool [n], the items some resample draws), must give the
    statistic's floats exactly whenever the sums are exact."""

    features: Callable[[np.ndarray, np.ndarray], np.ndarray]
    combine: Callable[..., np.ndarray]


SUM_FORMS: dict[str, SumForm] = {}  # registered statistics (probes.stats.sum_form) with a sum form


def exactly_summable(x: np.ndarray, n: int) -> bool:
    """True when every sum of n values of x is exact in float64 in any order: finite, no -0.0, all multiples
    of one power of two 2**-s with n * max |x| * 2**s < 2**53."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or not np.isfinite(x).all() or bool((np.signbit(x) & (x == 0)).any()):
        return False
    nonzero = x[x != 0]
    if nonzero.size == 0:
        return True
    mantissa, exponent = np.frexp(nonzero)  # x = mantissa * 2**exponent, 0.5 <= |mantissa| < 1
    ints = np.abs(np.ldexp(mantissa, 53)).astype(np.int64)  # x = ints * 2**(exponent - 53), exactly
    trailing = np.frexp((ints & -ints).astype(np.float64))[1] - 1  # zero bits at the bottom of each
    scale = int(np.max(53 - exponent - trailing))  # s: x * 2**s are all integers
    return bool(n * np.ldexp(np.abs(nonzero).max(), scale) < 2.0 ** 53)


def counts(idx: np.ndarray, key: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(float64 [B, n]: how often resample b draws item i, bool [n]: drawn by some resample) of the index
    matrix idx [B, n]; kept for the last few keys (n, n_boot, seed)."""
    if key not in _COUNTS:
        b, n = idx.shape
        out = np.empty((b, n))
        for s in range(0, b, 64):
            block = idx[s:s + 64]
            flat = (block + (np.arange(len(block)) * n)[:, None]).ravel()
            out[s:s + len(block)] = np.bincount(flat, minlength=len(block) * n).reshape(len(block), n)
        out.setflags(write=False)
        while len(_COUNTS) >= _MAX_COUNTS:
            del _COUNTS[next(iter(_COUNTS))]
        _COUNTS[key] = (out, np.asarray(out.any(axis=0)))
    return _COUNTS[key]


def exact_sums(features: np.ndarray, idx: np.ndarray, key: tuple[int, int, int], build: bool = True
               ) -> np.ndarray | None:
    """[B, m] sums of features [n, m] over each resample, exactly; None when they would not be exact (or
    their count matrix is not built and `build` is False)."""
    n = features.shape[0]
    if n < MIN_ITEMS or (not build and key not in _COUNTS) or not exactly_summable(features, n):
        return None
    c, _ = counts(idx, key)
    return c @ np.ascontiguousarray(features, dtype=np.float64) + 0.0  # + 0.0: a -0.0 sum reads as numpy's 0.0


def means(per_item: np.ndarray, idx: np.ndarray, key: tuple[int, int, int]) -> np.ndarray:
    """per_item[idx].mean(axis=1), the same floats, without the [B, n] gather where it can."""
    n = len(per_item)
    if n < MIN_ITEMS:
        return per_item[idx].mean(axis=1)
    # the count matrix costs a few gathers: built for items resampled again (the pool), not for a one-off subset
    sums = exact_sums(per_item[:, None], idx, key, build=key in _ASKED)
    _ASKED.add(key)
    if sums is not None:
        return sums[:, 0] / n  # numpy's mean: the sum divided by the count
    out = np.empty(len(idx))
    for s in range(0, len(idx), CHUNK):
        out[s:s + CHUNK] = per_item[idx[s:s + CHUNK]].mean(axis=1)
    return out


def drawn(idx: np.ndarray, key: tuple[int, int, int]) -> np.ndarray:
    return counts(idx, key)[1]


def resampled(values: np.ndarray, name: str, params: Mapping, idx: np.ndarray, key: tuple[int, int, int],
              difference_prefix: str) -> np.ndarray | None:
    """The [B] resampled values of the statistic `name` with a SumForm (or "difference:NAME" of one) over
    values [n, c], from exact sums; None when it has none or its sums would not be exact (the caller
    resamples the plain way)."""
    difference = name.startswith(difference_prefix)
    form = SUM_FORMS.get(name[len(difference_prefix):] if difference else name)
    if form is None or values.shape[0] < MIN_ITEMS:
        return None
    half = values.shape[1] // 2
    parts = [values[:, :half], values[:, half:]] if difference else [values]
    features = [form.features(part, drawn(idx, key)) for part in parts]
    sums = exact_sums(np.concatenate(features, axis=1), idx, key)
    if sums is None:
        return None
    out, at = [], 0
    for f in features:
        out.append(np.asarray(form.combine(np.ascontiguousarray(sums[:, at:at + f.shape[1]]), len(values), **params),
                              dtype=float))
        at += f.shape[1]
    return out[1] - out[0] if difference else out[0]  # "difference:": the right half's minus the left's
