"""Confident-wrong probes: does the loop grow, keep and train on majorities that are confidently wrong?

A pool question is *confident* in round r when its majority answer's vote share (votes for the majority /
all k samples, unparsed ones included, as the loop counts it) is at least tau, and *right* when the majority
answer equals the truth. Confident-wrong (CW) questions are the ones a self-consistency filter turns into
wrong training data. tau is each probe's own parameter, defaulting to harness.summary.CONFIDENT_SHARE (the
round table's definition too), never to the loop's selection tau: runs that select differently are still
measured under one definition.

A share of confident-wrong (or transitioning, or rule-captured) questions rests on the votes it is decided
from (probes.common.votes_unvarying): it is degenerate only when every question's vote is the same in every
round, not when the event never happens while the votes vary.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from harness.summary import CONFIDENT_SHARE
from probes import Probe, RunView, probe, stats, top_items
from probes.common import aligned, confident_wrong, estimate_fields, point, tracked_names, vote, votes_unvarying
from probes.stats import ratio_of_sums

STATES = ("right_unsure", "right_confident", "wrong_unsure", "wrong_confident")  # index = 2 * wrong + confident


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


class _TauParams(Probe.Params):
    tau: float = Field(CONFIDENT_SHARE, ge=0.0, le=1.0, strict=True,
                       description="confidence threshold: a majority share >= tau is confident (default: "
                                   "harness.summary.CONFIDENT_SHARE, shared with the round table)")


class _TransitionParams(_TauParams):
    min_count: int = Field(10, ge=1, description="fewest questions in a conditional rate's denominator")


@probe
class ConfidentWrongRate(Probe):
    """Share of pool questions that are confidently wrong (majority answer wrong with vote share >= tau);
    a rise means the loop is manufacturing wrong answers it will select as training data.

    Per round with a bootstrap CI over questions, and paired changes against round 0 and the previous round
    (concern: increase). Evidence: the questions newly confident-wrong in the last round.
    """

    id = "cw.rate"
    family = "confident_wrong"
    reads = ("samples",)
    measurements = tracked_names("rate")
    Params = _TauParams
    params: _TauParams

    def measure(self, run: RunView):
        tau, ids = self.params.tau, run.samples(run.rounds[0]).question_ids

        def cw(r: int) -> np.ndarray:
            return confident_wrong(aligned(run, r, ids), tau)

        out = self.tracked("rate", run, cw, ids, concern="increase", details={"tau": tau},
                           degenerate=votes_unvarying(run, ids))
        new = cw(run.rounds[-1]) - cw(run.rounds[0])
        out[0] = out[0].model_copy(update={"evidence": top_items(ids, new)})
        return out


@probe
class ConfidentWrongTransitions(Probe):
    """How questions move between right/wrong x unsure/confident from one round to the next; a rising
    persistence of confident-wrong (P(CW at r+1 | CW at r)) means wrong majorities, once trained on, stay.

    details["pairs"] holds the 4x4 transition count matrix of every consecutive pair (rows: state at r,
    columns: state at r+1, states in details["states"]). `persistence` and `inflow` (P(CW at r+1 | not CW
    at r)) refer to the last pair, with bootstrap CIs over questions and a series over pairs (a point's
    round is the pair's later round); a pair whose denominator has fewer than min_count questions has no
    estimate. Their `.delta_vs_first` (last pair minus the first pair with an estimate, bootstrap over
    questions; concern: increase) needs two such pairs. The levels have no null: hard questions stay
    wrong even when nothing changes.
    """

    id = "cw.transitions"
    family = "confident_wrong"
    reads = ("samples",)
    measurements = ("persistence", "persistence.delta_vs_first", "inflow", "inflow.delta_vs_first")
    Params = _TransitionParams
    params: _TransitionParams

    def measure(self, run: RunView):
        tau, ids = self.params.tau, run.samples(run.rounds[0]).question_ids
        state = {}
        for r in run.rounds:
            right, share = vote(aligned(run, r, ids))
            state[r] = 2 * (~right).astype(int) + (share >= tau).astype(int)
        pairs = list(zip(run.rounds[:-1], run.rounds[1:]))
        matrices = [{"from": a, "to": b, "counts": np.bincount(4 * state[a] + state[b], minlength=16)
                     .reshape(4, 4).tolist()} for a, b in pairs]
        details = {"tau": tau, "states": list(STATES), "pairs": matrices, "min_count": self.params.min_count}
        if not pairs:
            return [self.measurement(name, None, details=details) for name in ("persistence", "inflow")]
        cw = {r: (s == 3).astype(float) for r, s in state.items()}
        cols = {  # per pair: [n, 2] = (in the condition at r, in it at r and CW at r+1)
            "persistence": [np.stack([cw[a], cw[a] * cw[b]], axis=1) for a, b in pairs],
            "inflow": [np.stack([1 - cw[a], (1 - cw[a]) * cw[b]], axis=1) for a, b in pairs],
        }
        a, b = pairs[-1]
        degenerate = votes_unvarying(run, ids)
        evidence = {"persistence": top_items(ids, cw[a] * cw[b]), "inflow": top_items(ids, (1 - cw[a]) * cw[b])}
        out = []
        for name, per_pair in cols.items():
            ok = [x[:, 0].sum() >= self.params.min_count for x in per_pair]
            ests = [self.bootstrap(x, "ratio_of_sums", ids=ids) if good else None for x, good in zip(per_pair, ok)]
            last = ests[-1] or stats.NAN
            out.append(self.measurement(name, last, round=b, concern="none", degenerate=degenerate,
                                        series=[point(q, e or stats.NAN) for (_, q), e in zip(pairs, ests)],
                                        evidence=evidence[name], details=details))
            supported = [i for i, good in enumerate(ok) if good]
            if len(pairs) > 1:
                est, ref = stats.NAN, None
                if len(supported) > 1 and supported[-1] == len(pairs) - 1:
                    ref = pairs[supported[0]]
                    both = np.concatenate([per_pair[supported[0]], per_pair[-1]], axis=1)
                    est = self.bootstrap(both, "difference:ratio_of_sums", ids=ids)
                out.append(self.measurement(f"{name}.delta_vs_first", est, round=b, degenerate=degenerate,
                                            concern="increase", evidence=evidence[name],
                                            details={"first_pair": ref and list(ref), "last_pair": [a, b]}))
        return out


# ---------------------------------------------------------------- calibration metrics over bootstrap stacks


def _ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> np.ndarray:
    """ECE of each row of [B, n]: sum over bins of |sum(conf - correct)| / n (equal-width bins)."""
    B, n = conf.shape
    which = np.minimum((conf * bins).astype(int), bins - 1) + bins * np.arange(B)[:, None]
    sums = np.bincount(which.ravel(), weights=(conf - correct).ravel(), minlength=B * bins).reshape(B, bins)
    return np.abs(sums).sum(axis=1) / max(n, 1)


def _brier(conf: np.ndarray, correct: np.ndarray) -> np.ndarray:
    return ((conf - correct) ** 2).mean(axis=1)


def _auroc(level: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """AUROC of each row of [B, n] (scores given as integer levels in score order; ties count one half)."""
    B, _n = level.shape
    L = int(level.max()) + 1 if level.size else 1
    flat = (level.astype(int) + L * np.arange(B)[:, None]).ravel()
    pos = np.bincount(flat, weights=correct.ravel(), minlength=B * L).reshape(B, L)
    neg = np.bincount(flat, weights=(1 - correct).ravel(), minlength=B * L).reshape(B, L)
    return _auroc_of_counts(pos, neg)


def _auroc_of_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUROC from [B, L] counts of right and wrong items per score level."""
    below = np.cumsum(neg, axis=1) - neg
    return _ratio((pos * (below + 0.5 * neg)).sum(axis=1), pos.sum(axis=1) * neg.sum(axis=1))


def _one_hot(at: np.ndarray, values: np.ndarray, width: int) -> np.ndarray:
    """[n, width]: values[i] in column at[i] (rows with at[i] >= width stay 0)."""
    out = np.zeros((len(at), width))
    keep = at < width
    out[np.flatnonzero(keep), at[keep]] = values[keep]
    return out


def _auroc_features(x: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Right and wrong indicators by level, [n, 2L]; L as `_auroc` takes it, from the levels resamples draw."""
    level, correct = x[:, 2].astype(int), x[:, 1]
    width = int(x[drawn, 2].max()) + 1 if drawn.any() else 1
    return np.concatenate([_one_hot(level, correct, width), _one_hot(level, 1 - correct, width)], axis=1)


def _ece_features(x: np.ndarray, drawn: np.ndarray, bins: int = 10) -> np.ndarray:
    conf, correct = x[:, 0], x[:, 1]
    return _one_hot(np.minimum((conf * bins).astype(int), bins - 1), conf - correct, bins)


# Over item columns (vote share, majority right, share level): registered so comparisons recompute them.
stats.statistic("ece")(lambda x: _ece(x[..., 0], x[..., 1]))
stats.statistic("brier")(lambda x: _brier(x[..., 0], x[..., 1]))
stats.statistic("auroc")(lambda x: _auroc(x[..., 2], x[..., 1]))
# The same from sums over each resample (probes._resample: exact, so the same floats, without the stack).
stats.sum_form("ece", _ece_features, lambda s, n: np.abs(s).sum(axis=1) / max(n, 1))
stats.sum_form("brier", lambda x, drawn: ((x[:, 0] - x[:, 1]) ** 2)[:, None], lambda s, n: s[:, 0] / n)
stats.sum_form("auroc", _auroc_features, lambda s, n: _auroc_of_counts(s[:, :s.shape[1] // 2], s[:, s.shape[1] // 2:]))
METRICS = {"ece": "increase", "brier": "increase", "auroc": "decrease"}


@probe
class Calibration(Probe):
    """How well the majority's vote share predicts whether the majority is right: ECE (10 equal-width
    bins), Brier score and AUROC over pool questions; worse calibration means the loop grows confident
    without growing right.

    Per round with bootstrap CIs over questions; `.delta_vs_round0` (last round minus round 0, paired
    bootstrap over questions): concern increase for ECE and Brier, decrease for AUROC.
    """

    id = "cw.calibration"
    family = "confident_wrong"
    reads = ("samples",)
    measurements = tuple(f"{name}{suffix}" for name in METRICS for suffix in ("", ".delta_vs_round0"))

    def measure(self, run: RunView):
        ids = run.samples(run.rounds[0]).question_ids
        cols = {}
        for r in run.rounds:
            right, share = vote(aligned(run, r, ids))
            level = np.unique(share, return_inverse=True)[1].reshape(-1)
            cols[r] = np.stack([share, right.astype(float), level.astype(float)], axis=1)
        first, last = run.rounds[0], run.rounds[-1]
        mixed = {r: 0 < c[:, 1].sum() < len(c) for r, c in cols.items()}  # AUROC needs both outcomes

        def defined(name: str, *rounds: int) -> bool:
            return name != "auroc" or all(mixed[r] for r in rounds)

        ests = {r: self.bootstrap_many(cols[r], {name: name if defined(name, r) else None for name in METRICS},
                                       ids=ids) for r in run.rounds}
        deltas = self.bootstrap_many(np.concatenate([cols[first], cols[last]], axis=1), {
            name: f"{stats.DIFFERENCE}{name}" if defined(name, first, last) else None for name in METRICS},
            ids=ids) if last != first else {}
        out = []
        for name, concern in METRICS.items():
            out.append(self.measurement(name, ests[last][name], round=last,
                                        series=[point(r, ests[r][name]) for r in run.rounds]))
            if name in deltas:
                out.append(self.measurement(f"{name}.delta_vs_round0", deltas[name], round=last, concern=concern,
                                            details={"reference_round": first}))
        return out


@stats.statistic("selection_amplification")
def selection_amplification(x: np.ndarray) -> np.ndarray:
    """Columns (selected, selected wrong, samples, wrong): wrong share of the selected over that of all samples."""
    return _ratio(ratio_of_sums(x[..., :2]), ratio_of_sums(x[..., 2:4]))


stats.sum_form("selection_amplification", lambda x, drawn: x[:, :4],
               lambda s, n: _ratio(_ratio(s[:, 1], s[:, 0]), _ratio(s[:, 3], s[:, 2])))


@probe
class LabelNoise(Probe):
    """Share of the selected training set that is wrong, against the wrong share among all of the round's
    samples: their ratio is the selection's error amplification (> 1: the filter enriches errors).

    Round r's selected.jsonl is joined to round r's samples by (question_id, sample_index). `amplification`
    (null 1, concern increase) and `selected_wrong` per round, ratios of sums with bootstrap CIs over
    questions; `selected_wrong.delta_vs_round0` (bootstrap over questions; concern increase). Evidence:
    the questions contributing the most wrong training samples in the last round.
    """

    id = "cw.label_noise"
    family = "confident_wrong"
    reads = ("samples", "selected")
    measurements = ("amplification", "selected_wrong", "selected_wrong.delta_vs_round0")

    def measure(self, run: RunView):
        ids = run.samples(run.rounds[0]).question_ids
        index = {q: i for i, q in enumerate(ids)}
        cols, counts = {}, {}
        for r in run.rounds:
            table = aligned(run, r, ids)
            chosen = np.zeros(table.answers.shape, dtype=bool)
            for row in run.selected(r):
                if row.get("source", "sample") == "sample":  # rationalizations are not pool samples
                    chosen[index[row["question_id"]], row["sample_index"]] = True
            wrong = ~table.correct
            # per question: selected, selected wrong, all samples, all wrong
            cols[r] = np.stack([chosen.sum(1), (chosen & wrong).sum(1), np.full(len(ids), table.k),
                                wrong.sum(1)], axis=1).astype(float)
            counts[r] = {"selected": int(chosen.sum()), "selected_wrong": int((chosen & wrong).sum()),
                         "samples": int(wrong.size), "wrong": int(wrong.sum())}

        first, last = run.rounds[0], run.rounds[-1]
        ests = {r: self.bootstrap_many(cols[r], {"amplification": "selection_amplification",
                                                 "selected_wrong": "ratio_of_sums"}, ids=ids)
                for r in run.rounds}
        details = {"counts": {str(r): c for r, c in counts.items()}}
        evidence = top_items(ids, cols[last][:, 1])
        out = [self.measurement(name, ests[last][name], round=last,
                                null=null, concern=concern, series=[point(r, ests[r][name]) for r in run.rounds],
                                evidence=evidence, details=details)
               for name, null, concern in (("amplification", 1.0, "increase"), ("selected_wrong", 0.0, "none"))]
        if last != first:
            both = np.concatenate([cols[first][:, :2], cols[last][:, :2]], axis=1)
            est = self.bootstrap(both, f"{stats.DIFFERENCE}ratio_of_sums", ids=ids)
            out.append(self.measurement("selected_wrong.delta_vs_round0", est, round=last, concern="increase",
                                        evidence=evidence,
                                        details={"reference_round": first}))
        return out


@probe
class AgreementVsAccuracy(Probe):
    """Alarm when the samples agree more (mean majority vote share rises) while accuracy falls over the
    same rounds: the signature of a loop that sharpens onto wrong answers.

    Round 0 to the last round, paired over questions: the alarm is raised when the vote-share rise has a
    CI above 0 and pool pass@1 or test greedy accuracy has a fall with a CI below 0 (and neither has a
    rise with a CI above 0). Value and CI: the vote-share change; the three changes are in details, with
    `alarm_p`, the conjunction's p-value (an intersection-union test) that the run's false-alarm correction
    adjusts: the alarm fires when it survives the correction too.
    """

    id = "cw.agreement_vs_accuracy"
    family = "confident_wrong"
    reads = ("samples", "eval")
    measurements = ("agreement_up_accuracy_down",)

    def measure(self, run: RunView):
        first, last = run.rounds[0], run.rounds[-1]
        if first == last:
            return [self.measurement("agreement_up_accuracy_down", None, round=last, concern="increase")]
        ids = run.samples(first).question_ids
        t0, t1 = aligned(run, first, ids), aligned(run, last, ids)
        deltas = {"vote_share": self.paired_difference(vote(t0)[1], vote(t1)[1], ids=ids),
                  "pool_pass1": self.paired_difference(t0.correct.mean(1), t1.correct.mean(1), ids=ids)}
        test_ids = run.samples(first, "test", "greedy").question_ids
        if test_ids:
            g0, g1 = (aligned(run, r, test_ids, "test", "greedy").correct[:, 0] for r in (first, last))
            deltas["test_greedy"] = self.paired_difference(g0, g1, ids=test_ids)
        agree = deltas["vote_share"]
        acc = [e for name, e in deltas.items() if name != "vote_share"]
        alarm = bool(agree.ci_low > 0 and any(e.ci_high < 0 for e in acc) and not any(e.ci_low > 0 for e in acc))
        falls = t1.correct.mean(1) - t0.correct.mean(1)
        return [self.measurement(
            "agreement_up_accuracy_down", agree, round=last, concern="increase",
            alarm=alarm, evidence=top_items(ids, (vote(t1)[1] - vote(t0)[1]) * (falls < 0)),
            details={"reference_round": first, "alarm_p": stats.conjunction_p([agree], acc),
                     "deltas": {k: estimate_fields(e) for k, e in deltas.items()}})]


@probe
class MisconceptionShare(Probe):
    """Share of the pool questions where the run's planted misconception applies whose majority answer is
    the one the misconception gives: is the planted rule error itself amplified by the loop?

    Asks the run's domain for the planted rule's answer to each question (the PlantsRule capability, e.g.
    arithmetic's `misconception`); in a domain without one, or a run without a planted rule, the
    measurements are undefined. Per round with a bootstrap CI over the applicable questions, and paired changes against
    round 0 and the previous round (concern: increase). Evidence: questions newly captured by the rule.
    """

    id = "cw.misconception_share"
    family = "confident_wrong"
    reads = ("samples",)
    measurements = tracked_names("share")

    def measure(self, run: RunView):
        from harness.domains.base import PlantsRule, recorded_domain
        from probes import answer_code

        name = (run.config.get("domain") or {}).get("misconception")
        domain = recorded_domain(run.config, int(run.config.get("seed", 0)))
        ids = run.samples(run.rounds[0]).question_ids
        if not isinstance(domain, PlantsRule):
            return [self.measurement("share", None, details={"misconception": name, "applicable": 0})]
        prefixes = tuple(f"{v.name}/" for v in getattr(run, "views", ()))  # a pooled view's run prefixes
        planted, keep = [], []
        for qid in ids:
            own = next((qid[len(p):] for p in prefixes if qid.startswith(p)), qid)
            answer = domain.planted_answer(own)
            keep.append(answer is not None)
            planted.append(answer_code(answer))
        keep_ids = tuple(q for q, k in zip(ids, keep) if k)
        if not keep_ids:
            return [self.measurement("share", None, details={"misconception": name, "applicable": 0})]
        target = np.array([p for p, k in zip(planted, keep) if k], dtype=np.int64)

        def captured(r: int) -> np.ndarray:
            table = aligned(run, r, keep_ids)
            mode, share = stats.row_mode(table.answers, table.parsed)
            return ((mode == target) & (share > 0)).astype(float)

        out = self.tracked("share", run, captured, keep_ids, concern="increase",
                           details={"misconception": name, "applicable": len(keep_ids)},
                           degenerate=votes_unvarying(run, keep_ids))
        new = captured(run.rounds[-1]) - captured(run.rounds[0])
        out[0] = out[0].model_copy(update={"evidence": top_items(keep_ids, new)})
        return out
