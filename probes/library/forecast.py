"""Forecast probes: what the recorded samples say about where the loop can go before (and while) it goes.

The majority gap asks whether the vote knows more than one sample does (the loop can only distil what
the vote adds); the dataset direction asks whether the training set a round selects predicts where the
next round's samples move.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from probes import Probe, RunView, probe, stats, top_items
from probes.common import aligned, finite, point, unvarying, vote


@probe
class MajorityGap(Probe):
    """Majority-vote accuracy minus pass@1 on the pool before any training (round 0): how much the vote
    knows that a single sample does not, which is all self-consistency training can distil. A gap near
    zero or below says the samples share their errors and the loop can only entrench them.

    Per question, paired (majority right as 0/1 minus the share of right samples), with a bootstrap CI over
    questions. `gap`: round 0, concern none, with a series over rounds (the gap closing in later rounds is
    the vote's knowledge distilled, or lost). `entrenchment_risk`: the same round-0 gap with null =
    min_gap and concern decrease, so it fires when the CI's upper bound is below min_gap, i.e. the vote
    is confidently not worth distilling. Evidence: questions where the majority is wrong although the
    most samples are right. Both rest on the samples' correctness: they are degenerate only when every
    sample is right (or every one wrong) in every round, not when every question is unanimous (a zero gap,
    and the risk it signals).
    """

    id = "forecast.majority_gap"
    family = "forecast"
    reads = ("samples",)
    measurements = ("gap", "entrenchment_risk")

    class Params(Probe.Params):
        min_gap: float = Field(0.02, description="a round-0 gap whose CI lies wholly below this fires")

    params: Params

    def measure(self, run: RunView):
        ids = run.samples(run.rounds[0]).question_ids

        def gap(r: int) -> np.ndarray:
            table = aligned(run, r, ids)
            return vote(table)[0].astype(float) - table.correct.mean(axis=1)

        gaps = {r: gap(r) for r in run.rounds}
        degenerate = unvarying({r: aligned(run, r, ids).correct for r in run.rounds}, "pool sample's correctness",
                               "questions")
        ests = {r: self.mean_ci(g, ids=ids) for r, g in gaps.items()}
        first = run.rounds[0]
        est, ser = ests[first], [point(r, e) for r, e in ests.items()]
        details = {"pass1": finite(float(aligned(run, first, ids).correct.mean())),
                   "majority_accuracy": finite(float(vote(aligned(run, first, ids))[0].mean()))}
        return [
            self.measurement("gap", est, round=first, series=ser, details=details, degenerate=degenerate),
            self.measurement("entrenchment_risk", est, round=first, degenerate=degenerate,
                             null=self.params.min_gap, concern="decrease", evidence=top_items(ids, -gaps[first]),
                             details={**details, "min_gap": self.params.min_gap}),
        ]


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(p / np.where(q > 0, q, 1.0)), 0.0).sum(axis=1)


def direction(prev, chosen: np.ndarray, nxt, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per question: (KL(P_next || S smoothed), KL(P_next || P_prev smoothed), has a selected sample).

    P_prev and P_next are the rows' empirical answer distributions (unparsed counts as one answer), S the
    distribution of the answers of the samples `chosen` [n, k] selected; the forecasts are smoothed by
    adding alpha to every answer of the joint support of P_prev and P_next and renormalising.
    """
    p_prev, p_next = stats.answer_distributions(prev.answers, nxt.answers)
    support = (p_prev > 0) | (p_next > 0)  # one slot per distinct answer
    joint = np.concatenate([prev.answers, nxt.answers], axis=1)
    n_chosen = chosen.sum(axis=1)
    hits = ((joint[:, :, None] == prev.answers[:, None, :]) & chosen[:, None, :]).sum(axis=2)
    s = np.where(support, hits / np.maximum(n_chosen, 1)[:, None], 0.0)

    def smooth(x: np.ndarray) -> np.ndarray:
        x = np.where(support, x + alpha, 0.0)
        return x / x.sum(axis=1, keepdims=True)

    return _kl(p_next, smooth(s)), _kl(p_next, smooth(p_prev)), n_chosen > 0


@probe
class DatasetDirection(Probe):
    """Does round r's selected training set predict where round r+1's sampled answers move? Per question,
    the next round's answer distribution is forecast by the selected samples' answers (the dataset) and
    by round r's own samples ("no change"); the dataset wins where its KL divergence is smaller.

    Forecasts are smoothed by adding alpha to every answer of the joint support (so KL is finite);
    questions without selected samples make no forecast and are skipped; ties count one half.
    `better_share`: the share of questions the dataset wins (null 0.5); `kl_reduction`: the mean of
    KL(next || no change) - KL(next || dataset) (null 0). Both refer to the last consecutive pair, with
    bootstrap CIs over questions and a series over pairs (a point's round is the pair's later round).
    Concern none: even a model that does not change can favour the dataset, whose point mass on the
    majority beats a k-sample distribution that spends mass on one-off answers; read them against a clean
    run, and as "the loop follows its training data" (high) or "it moves elsewhere" (low).
    """

    id = "forecast.dataset_direction"
    family = "forecast"
    reads = ("samples", "selected")
    measurements = ("better_share", "kl_reduction")

    class Params(Probe.Params):
        alpha: float = Field(0.05, gt=0.0, description="probability added to each answer of the joint support")

    params: Params

    def measure(self, run: RunView):
        ids = run.samples(run.rounds[0]).question_ids
        index = {q: i for i, q in enumerate(ids)}
        pairs = list(zip(run.rounds[:-1], run.rounds[1:]))
        wins, reductions, counts = [], [], []
        for a, b in pairs:
            prev, nxt = aligned(run, a, ids), aligned(run, b, ids)
            chosen = np.zeros(prev.answers.shape, dtype=bool)
            for row in run.selected(a):
                if row.get("source", "sample") == "sample":  # rationalizations are not pool samples
                    chosen[index[row["question_id"]], row["sample_index"]] = True
            kl_s, kl_p, has = direction(prev, chosen, nxt, self.params.alpha)
            gain = np.where(np.abs(kl_p - kl_s) < 1e-12, 0.0, kl_p - kl_s)
            wins.append(np.where(has, np.sign(gain) * 0.5 + 0.5, np.nan))
            reductions.append(np.where(has, gain, np.nan))
            counts.append({"from": a, "to": b, "questions": int(has.sum()),
                           "dataset_better": int((gain[has] > 0).sum()), "ties": int((gain[has] == 0).sum())})
        details = {"alpha": self.params.alpha, "pairs": counts}
        if not pairs:
            return [self.measurement(name, None, null=null, details=details)
                    for name, null in (("better_share", 0.5), ("kl_reduction", 0.0))]
        out = []
        for name, null, per_pair in (("better_share", 0.5, wins), ("kl_reduction", 0.0, reductions)):
            ests = [self.mean_ci(v[~np.isnan(v)], ids=[q for q, x in zip(ids, v) if not np.isnan(x)])
                    for v in per_pair]
            last = ests[-1]
            evidence = [] if name == "better_share" else top_items(ids, np.nan_to_num(per_pair[-1], nan=0.0))
            out.append(self.measurement(
                name, last, round=pairs[-1][1], null=null, concern="none",
                series=[point(b, e) for (_, b), e in zip(pairs, ests)], evidence=evidence, details=details))
        return out
