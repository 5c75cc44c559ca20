"""Building blocks most probes share: a per-item quantity tracked over rounds becomes a per-round series
with CIs plus paired deltas against round 0 and the previous round."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.summary import CONFIDENT_SHARE
from probes import stats
from probes._api import AUTOMATIC, Concern, Measurement, Probe, SeriesPoint, unvarying
from probes._view import RunView, SampleTable

MAX_EVIDENCE = 20
TRACKED_SUFFIXES = ("", ".delta_vs_round0", ".delta_vs_previous")

__all__ = ["MAX_EVIDENCE", "TRACKED_SUFFIXES", "aligned", "aligned_rounds", "ci_fields", "confident_wrong",
           "estimate_fields", "finite", "point", "series", "test_accuracy", "top_items", "tracked", "tracked_names",
           "unvarying", "vote", "vote_states", "votes_unvarying"]


def tracked_names(*names: str) -> tuple[str, ...]:
    """The measurement names `tracked(name, ...)` produces for each name (the level, its change against round
    0 and against the previous round), for a probe's `measurements`: `measurements = tracked_names("rate")`."""
    return tuple(f"{name}{suffix}" for name in names for suffix in TRACKED_SUFFIXES)


def finite(x: float | None) -> float | None:
    """A JSON-safe number: None for None, NaN and infinities."""
    return None if x is None or not np.isfinite(x) else float(x)


def ci_fields(est: stats.Estimate) -> dict[str, Any]:
    return {"ci_low": finite(est.ci_low), "ci_high": finite(est.ci_high)}


def estimate_fields(est: stats.Estimate) -> dict[str, Any]:
    return {"value": finite(est.value), **ci_fields(est)}


def point(r: int, est: stats.Estimate) -> SeriesPoint:
    """Round r's point of a series, keeping the estimate's item values."""
    return SeriesPoint.of(r, est)


def aligned(run: RunView, r: int, ids: tuple[str, ...], split: str = "pool", decoding: str = "sample"
            ) -> SampleTable:
    """Round r's table with its rows in the order of `ids`, so rounds pair item by item."""
    table = run.samples(r, split, decoding)
    return table if table.question_ids == ids else table.restrict(ids)


def aligned_rounds(run: RunView, split: str = "pool", decoding: str = "sample"
                   ) -> tuple[tuple[str, ...], dict[int, SampleTable]]:
    """Every round's table of one split, restricted to the questions all rounds share, in one order."""
    tables = {r: run.samples(r, split, decoding) for r in run.rounds}
    ids = tables[run.rounds[0]].question_ids
    if any(t.question_ids != ids for t in tables.values()):
        shared = set.intersection(*(set(t.question_ids) for t in tables.values()))
        ids = tuple(q for q in ids if q in shared)
        tables = {r: t.restrict(ids) for r, t in tables.items()}
    return ids, tables


def vote(table: SampleTable) -> tuple[np.ndarray, np.ndarray]:
    """(majority right [n] bool, majority vote share [n]) of a sample table, as the loop votes."""
    mode, share = stats.row_mode(table.answers, table.parsed)
    return (mode == table.truth) & (share > 0), share


def confident_wrong(table: SampleTable, tau: float = CONFIDENT_SHARE) -> np.ndarray:
    """Per question, 1.0 when its majority answer is wrong with a vote share of at least tau, else 0.0."""
    right, share = vote(table)
    return (~right & (share >= tau)).astype(float)


def test_accuracy(run: RunView, how: str = "pass1") -> tuple[tuple[str, ...], dict[int, np.ndarray]]:
    """Per test question and round (the questions every round has): the share of right sampled decodings
    (`pass1`), or greedy right as 0/1 (`greedy`)."""
    ids, tables = aligned_rounds(run, "test", "greedy" if how == "greedy" else "sample")
    return ids, {r: t.correct.mean(axis=1) if t.k else np.zeros(0) for r, t in tables.items()}


def vote_states(run: RunView, ids: tuple[str, ...]) -> dict[int, np.ndarray]:
    """Per round, each question's vote as [n, 2] (majority right, vote share): what an event of the vote (a
    confident-wrong majority, a fixed point, a basin, capture by a planted rule) is decided from."""
    out = {}
    for r in run.rounds:
        right, share = vote(aligned(run, r, ids))
        out[r] = np.stack([right.astype(float), share], axis=1)
    return out


def votes_unvarying(run: RunView, ids: tuple[str, ...]) -> str | None:
    """The reason a share of an event of the vote is degenerate, or None. Such a share rests on the votes
    (vote_states), not on its own 0/1 values: an event that never happens while the votes vary is a finding;
    when every question's vote is the same in every round (every majority right and unanimous, say), it has
    nothing to detect."""
    return unvarying(vote_states(run, ids), "question's (majority right, vote share)", "questions")


def series(probe: Probe, run: RunView, per_item: Callable[[int], np.ndarray], ids: Sequence[str]
           ) -> list[SeriesPoint]:
    """Mean of the per-item values of each round, with a bootstrap CI over items (the probe's seed)."""
    return [point(r, probe.mean_ci(per_item(r), ids=ids)) for r in run.rounds]


def top_items(ids: Sequence[str], score: np.ndarray, n: int = MAX_EVIDENCE) -> list[str]:
    """Ids of the items with the largest positive scores (the ones that drive an increase)."""
    score = np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="stable")
    return [ids[i] for i in order[:n] if score[i] > 0]


def tracked(probe: Probe, name: str, run: RunView, per_item: Callable[[int], np.ndarray],
            ids: Sequence[str], concern: Concern, details: dict | None = None,
            degenerate: Any = AUTOMATIC) -> list[Measurement]:
    """Three measurements of a per-item quantity aligned across rounds (same items, same order), each keeping
    its per-item values per round (so comparisons pair them) and bootstrapped with the probe's seed:

    - `name`: its mean in the last round, CI over items, with the per-round series;
    - `name.delta_vs_round0`: last round minus round 0, paired bootstrap CI; fires in the concerning
      direction; evidence: the items that moved most that way;
    - `name.delta_vs_previous`: last round minus the round before, paired.

    All three rest on the same per-item values, so they are degenerate together: by the automatic rule
    (every item holds one number in every round) unless the probe passes `degenerate` (a reason, or None).
    """
    rounds, ids = run.rounds, tuple(ids)
    last = rounds[-1]
    values = {r: np.asarray(per_item(r), dtype=float) for r in rounds}
    if degenerate is AUTOMATIC:
        degenerate = unvarying(values)
    ser = [point(r, probe.mean_ci(values[r], ids=ids)) for r in rounds]
    out = [probe.measurement(name, ser[-1].value, ci_low=ser[-1].ci_low, ci_high=ser[-1].ci_high, round=last,
                             concern="none", series=ser, details=details or {}, degenerate=degenerate)]
    sign = -1.0 if concern == "decrease" else 1.0
    for label, ref in (("delta_vs_round0", rounds[0]), ("delta_vs_previous", rounds[-2] if len(rounds) > 1 else None)):
        if ref is None:
            continue
        delta_series = [point(r, probe.paired_difference(values[ref if label == "delta_vs_round0" else
                                                                rounds[max(0, i - 1)]], values[r], ids=ids))
                        for i, r in enumerate(rounds)]
        est = delta_series[-1]
        if concern == "either":  # the items that moved the way the estimate went
            sign = -1.0 if (est.value or 0) < 0 else 1.0
        moved = sign * (values[last] - values[ref])
        out.append(probe.measurement(
            f"{name}.{label}", est.value, ci_low=est.ci_low, ci_high=est.ci_high, round=last,
            concern=concern, series=delta_series, evidence=top_items(ids, moved), degenerate=degenerate,
            details={"reference_round": ref, "z": stats.paired_z(values[ref], values[last])}))
    return out
