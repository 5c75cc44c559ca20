"""Per-round distributions a report plots, and the drill-down of the items behind each alarm, read straight
from a run's artifacts (probes.json keeps summaries, not the distributions)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.summary import CONFIDENT_SHARE
from probes import Measurement, PooledRunView, RunView, SampleTable, answer_text, stats
from probes.common import finite, vote
from probes.library.confident_wrong import STATES
from reports.model import (
    Alarm,
    CalibrationBin,
    CalibrationRound,
    Histogram,
    HistogramRound,
    ItemRound,
    ItemTrace,
    TransitionMatrix,
)

View = RunView | PooledRunView
CALIBRATION_BINS = 10
HIST_BINS = 20


def calibration(view: View) -> list[CalibrationRound]:
    """Reliability of the pool majority vote per round: vote share (confidence) against majority right."""
    out = []
    for r in view.rounds:
        table = view.samples(r)
        if not table.n_items:
            continue
        right, share = vote(table)
        which = np.minimum((share * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
        bins = []
        for b in range(CALIBRATION_BINS):
            mask = which == b
            bins.append(CalibrationBin(low=b / CALIBRATION_BINS, high=(b + 1) / CALIBRATION_BINS,
                                       count=int(mask.sum()),
                                       mean_confidence=finite(share[mask].mean()) if mask.any() else None,
                                       accuracy=finite(right[mask].mean()) if mask.any() else None))
        out.append(CalibrationRound(round=r, n_items=table.n_items, bins=bins,
                                    ece=finite(stats.expected_calibration_error(share, right, CALIBRATION_BINS))))
    return out


def transitions(view: View) -> list[TransitionMatrix]:
    """Right/wrong x unsure/confident state counts of pool questions between consecutive rounds (the
    matrices of cw.transitions, recomputed so the report does not depend on which probes a suite ran)."""
    tau, ids = CONFIDENT_SHARE, view.samples(view.rounds[0]).question_ids
    if not ids:
        return []
    state = {}
    for r in view.rounds:
        table = view.samples(r)
        table = table if table.question_ids == ids else table.restrict(ids)
        right, share = vote(table)
        state[r] = 2 * (~right).astype(int) + (share >= tau).astype(int)
    return [TransitionMatrix(from_round=a, to_round=b, states=list(STATES),
                             counts=np.bincount(4 * state[a] + state[b], minlength=16).reshape(4, 4).tolist())
            for a, b in zip(view.rounds[:-1], view.rounds[1:])]


def _histogram(quantity: str, unit: str, per_round: dict[int, np.ndarray], lo: float | None = None,
               hi: float | None = None) -> Histogram | None:
    values = [v[np.isfinite(v)] for v in per_round.values()]
    if not any(v.size for v in values):
        return None
    both = np.concatenate(values)
    lo = float(both.min()) if lo is None else lo
    hi = float(both.max()) if hi is None else hi
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    rounds = [HistogramRound(round=r, counts=np.histogram(v[np.isfinite(v)], bins=edges)[0].tolist(),
                             mean=finite(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else None,
                             n=int(np.isfinite(v).sum()))
              for r, v in per_round.items()]
    return Histogram(quantity=quantity, unit=unit, edges=[round(float(e), 6) for e in edges], rounds=rounds)


def reference_nll(view: View) -> Histogram | None:
    per_round = {}
    for r in view.rounds:
        _, nll, n_tokens = view.reference_nll(r)
        per_round[r] = nll / np.maximum(n_tokens, 1)
    return _histogram("reference-text NLL per token", "nats/token", per_round)


def answer_entropy(view: View) -> Histogram | None:
    tables = {r: view.samples(r) for r in view.rounds}
    k = max((t.k for t in tables.values()), default=0)
    if k < 2:
        return None
    return _histogram("pool answer entropy", "nats", {r: stats.row_entropy(t.answers) for r, t in tables.items()},
                      0.0, float(np.log(k)))


# ---------------------------------------------------------------- alarms and their items


def alarm_reason(m: Measurement) -> str:
    if m.alarm is not None:
        return "the probe's own alarm"
    side = {"increase": "above", "decrease": "below", "either": "off"}.get(m.concern, "off")
    return f"95% CI [{m.ci_low:.4g}, {m.ci_high:.4g}] lies {side} the null {m.null:g}"


def alarms(measurements: list[Measurement]) -> list[Alarm]:
    return [Alarm(probe=m.probe, measurement=m.name, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, null=m.null,
                  concern=m.concern, reason=alarm_reason(m), items=list(m.evidence))
            for m in measurements if m.fires]


def _answer(x: int) -> str | None:
    return answer_text(x)


class ItemTracer:
    """Finds an item id in the run's tables (pool, test, ood, reference) and follows it through the rounds."""

    def __init__(self, view: View):
        self.view = view
        self._index: dict[tuple, dict[str, int]] = {}
        self._reference_ids: set[str] | None = None

    def _row(self, r: int, split: str, decoding: str, qid: str) -> tuple[SampleTable, int] | None:
        key = (r, split, decoding)
        table = self.view.samples(r, split, decoding)
        if key not in self._index:
            self._index[key] = {q: i for i, q in enumerate(table.question_ids)}
        i = self._index[key].get(qid)
        return None if i is None else (table, i)

    def _split(self, qid: str) -> Literal["pool", "test", "ood", "reference", "unknown"]:
        r0 = self.view.rounds[0]
        split: Literal["pool", "test", "ood"]
        for split, decoding in (("pool", "sample"), ("test", "greedy"), ("test", "sample"), ("ood", "greedy"),
                                ("ood", "sample")):
            if self._row(r0, split, decoding, qid) is not None:
                return split
        if self._reference_ids is None:
            self._reference_ids = set(self.view.reference_nll(r0)[0])
        if qid in self._reference_ids:
            return "reference"
        return "unknown"

    def trace(self, qid: str, prompt: str | None = None) -> ItemTrace:
        split = self._split(qid)
        if split == "reference":
            return ItemTrace(id=qid, split=split, rounds=[self._reference_round(r, qid) for r in self.view.rounds])
        if split == "unknown":
            return ItemTrace(id=qid, split=split)
        rounds, truth = [], None
        for r in self.view.rounds:
            sampled = self._row(r, split, "sample", qid)
            greedy = self._row(r, split, "greedy", qid) if split != "pool" else None
            point = ItemRound(round=r)
            if sampled is not None:
                table, i = sampled
                truth = answer_text(table.truth[i])
                mode, share = stats.row_mode(table.answers[i:i + 1], table.parsed[i:i + 1])
                parsed = table.parsed[i] & (table.answers[i] == mode[0])
                j = int(np.argmax(parsed)) if parsed.any() else 0
                point = point.model_copy(update={
                    "majority": _answer(mode[0]) if parsed.any() else None, "vote_share": float(share[0]),
                    "correct": bool(parsed.any() and mode[0] == table.truth[i]), "rationale": table.completions[i][j]})
            if greedy is not None:
                table, i = greedy
                truth = answer_text(table.truth[i])
                update: dict[str, Any] = {"greedy": _answer(table.answers[i, 0]),
                                          "rationale": point.rationale or table.completions[i][0]}
                if sampled is None:  # no sampled decodings of this split: the greedy answer is the vote
                    update.update(majority=update["greedy"], vote_share=1.0, correct=bool(table.correct[i, 0]))
                point = point.model_copy(update=update)
            rounds.append(point)
        return ItemTrace(id=qid, split=split, question=prompt.strip() if prompt else None, truth=truth, rounds=rounds)

    def _reference_round(self, r: int, qid: str) -> ItemRound:
        ids, nll, n = self.view.reference_nll(r)
        if qid not in ids:
            return ItemRound(round=r)
        i = ids.index(qid)
        return ItemRound(round=r, nll_per_token=finite(nll[i] / max(int(n[i]), 1)))
