"""Drift probes: does the loop move the model away from where it started, in accuracy, in the answers it
gives, in how it scores fixed reference texts, and in how long it writes?"""

from __future__ import annotations

import numpy as np

from probes import Probe, RunView, probe, stats, top_items
from probes._api import SeriesPoint
from probes.common import aligned_rounds, point, tracked_names, unvarying


@probe
class Accuracy(Probe):
    """Test and ood accuracy (greedy decoding, and sampled pass@1 as a secondary measure) per round, with
    paired changes against round 0 and the previous round on the same questions (concern: decrease).

    `{split}.greedy` is the share of questions whose greedy answer is right, with a bootstrap CI over
    questions; its deltas carry a paired bootstrap CI (which decides `fires`) and, in `details`, the exact
    McNemar test (`lost`: right->wrong, `gained`: wrong->right, `mcnemar_p`) for the headline comparison and
    per round (`mcnemar_series`). Evidence: questions that went right->wrong. `{split}.pass1` is the mean
    share of right sampled decodings per question.
    """

    id = "drift.accuracy"
    family = "drift"
    reads = ("eval",)
    measurements = tracked_names("test.greedy", "test.pass1", "ood.greedy", "ood.pass1")

    def measure(self, run: RunView):
        out, rounds = [], run.rounds
        for split in ("test", "ood"):
            ids, greedy = aligned_rounds(run, split, "greedy")
            if ids and greedy[rounds[0]].k:
                right = {r: t.correct[:, 0] for r, t in greedy.items()}
                found = self.tracked(f"{split}.greedy", run, right.__getitem__, ids, concern="decrease",
                                      details={"n_questions": len(ids)})
                for m in found[1:]:
                    ref = m.details["reference_round"]
                    lost, gained, p = stats.mcnemar_exact(right[ref], right[rounds[-1]])
                    pairs = [(rounds[0] if m.name.endswith("round0") else rounds[max(0, i - 1)], r)
                             for i, r in enumerate(rounds)]
                    m.details.update(lost=lost, gained=gained, mcnemar_p=p, mcnemar_series=[
                        dict(zip(("round", "lost", "gained", "p"), (r, *stats.mcnemar_exact(right[a], right[r]))))
                        for a, r in pairs])
                out += found
            ids, sampled = aligned_rounds(run, split, "sample")
            if ids and sampled[rounds[0]].k:
                out += self.tracked(f"{split}.pass1", run, lambda r: sampled[r].correct.mean(axis=1),  # noqa: B023
                                    ids, concern="decrease", details={"n_questions": len(ids)})
        return out


def _js(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row JS divergence (nats) between the empirical answer distributions of two [n, *] arrays."""
    return stats.js_divergence(*stats.answer_distributions(a, b))


def _excess(before: np.ndarray, after: np.ndarray, h: int) -> np.ndarray:
    """Per question: mean JS over the 4 cross-round pairs of half-samples minus mean JS over the 2
    within-round pairs. Every term compares two sets of h samples, so under "same model" it has mean 0."""
    a0, b0, a1, b1 = before[:, :h], before[:, h:2 * h], after[:, :h], after[:, h:2 * h]
    cross = (_js(a0, a1) + _js(a0, b1) + _js(b0, a1) + _js(b0, b1)) / 4
    return cross - (_js(a0, b0) + _js(a1, b1)) / 2


@probe
class AnswerJS(Probe):
    """Jensen-Shannon divergence (nats) of each question's sampled pool answer distribution between the
    last round and round 0 (and the previous round), over and above the divergence sampling noise alone
    gives (concern: increase).

    Two draws of k samples from the same model have a nonzero JS (k=8 is a small sample), so the raw mean
    JS (`js_vs_round0`, `js_vs_previous`; concern none) cannot say whether anything changed. The test is
    the split-half excess (`*.excess`): each round's k samples split into halves A and B (h = k//2 each;
    the odd one out is dropped), and per question

        excess = mean(JS(A0,Ar), JS(A0,Br), JS(B0,Ar), JS(B0,Br)) - mean(JS(A0,B0), JS(Ar,Br)).

    Every term is the JS between two independent sets of h samples, so when both rounds are the same model
    all four halves are exchangeable and the excess has mean exactly 0 per question; a changed distribution
    raises the cross-round terms only (like an energy distance). The mean excess over questions gets a
    bootstrap CI over questions (the pairing is within question) and fires when it lies above 0. Unparsed
    samples count as one shared answer. Evidence: questions with the largest excess.
    """

    id = "drift.answer_js"
    family = "drift"
    reads = ("samples",)
    measurements = ("js_vs_round0", "js_vs_round0.excess", "js_vs_previous", "js_vs_previous.excess")

    def measure(self, run: RunView):
        rounds = run.rounds
        ids, tables = aligned_rounds(run, "pool")
        ans = {r: t.answers for r, t in tables.items()}
        h = min(t.k for t in tables.values()) // 2
        out = []
        for label in ("js_vs_round0", "js_vs_previous"):
            if len(rounds) < 2 or not ids or h < 1:
                out += [self.measurement(label, None, details={"reason": "needs two rounds, questions, k >= 2"}),
                        self.measurement(f"{label}.excess", None, concern="increase")]
                continue
            raw_ser, ex_ser = [SeriesPoint(round=rounds[0], value=0.0, ci_low=0.0, ci_high=0.0)], [
                SeriesPoint(round=rounds[0], value=0.0, ci_low=0.0, ci_high=0.0)]
            for i, r in enumerate(rounds[1:], start=1):
                ref = rounds[0] if label == "js_vs_round0" else rounds[i - 1]
                raw, excess = _js(ans[ref], ans[r]), _excess(ans[ref], ans[r], h)
                raw_ser.append(point(r, self.mean_ci(raw, ids=ids)))
                ex_ser.append(point(r, self.mean_ci(excess, ids=ids)))
            within = {r: float(_js(ans[r][:, :h], ans[r][:, h:2 * h]).mean()) for r in (ref, rounds[-1])}
            last, exl = raw_ser[-1], ex_ser[-1]
            out.append(self.measurement(
                label, last.value, ci_low=last.ci_low, ci_high=last.ci_high, round=rounds[-1], series=raw_ser,
                details={"reference_round": ref, "k": 2 * h, "half_k": h,
                         "within_round_half_js": {str(r): v for r, v in within.items()}}))
            out.append(self.measurement(
                f"{label}.excess", exl.value, ci_low=exl.ci_low, ci_high=exl.ci_high, round=rounds[-1],
                concern="increase", series=ex_ser, evidence=top_items(ids, excess),
                details={"reference_round": ref, "half_k": h, "n_questions": len(ids)}))
        return out


@stats.statistic("tail_mass")
def tail_mass(x: np.ndarray, quantile: float) -> np.ndarray:
    """[B, n, 2] (round 0, round r) -> [B]: share of items whose round-r value exceeds round 0's `quantile`
    percentile, the percentile recomputed in each resample (so its own uncertainty is in the CI)."""
    threshold = np.quantile(x[..., 0], quantile, axis=1)
    return (x[..., 1] > threshold[:, None]).mean(axis=1)


@probe
class ReferenceNLL(Probe):
    """NLL per token of the fixed reference texts under each round's model: the mean shift against round 0
    and the previous round (paired over texts; concern: increase), and the tail mass of Shumailov et al.

    `nll_per_token` details hold the 5/50/95th percentiles per round. `tail_mass` is the share of texts
    whose NLL/token in the last round exceeds round 0's `tail_quantile` percentile (null 1 - tail_quantile,
    0.05 by default; concern: increase); its bootstrap resamples texts and recomputes round 0's percentile
    in each resample, so the threshold's own uncertainty is in the CI. Evidence: texts newly in the tail.
    """

    id = "drift.reference_nll"
    family = "drift"
    reads = ("reference",)
    measurements = (*tracked_names("nll_per_token"), "tail_mass")

    class Params(Probe.Params):
        tail_quantile: float = 0.95

    params: Params

    def measure(self, run: RunView):
        rounds, q = run.rounds, self.params.tail_quantile
        per_round = {}
        for r in rounds:
            tids, nll, ntok = run.reference_nll(r)
            per_round[r] = dict(zip(tids, nll / np.maximum(ntok, 1)))
        ids = tuple(t for t in sorted(per_round[rounds[0]]) if all(t in per_round[r] for r in rounds))
        if not ids:
            return [self.measurement("nll_per_token", None, details={"reason": "no reference texts"})]
        x = {r: np.array([per_round[r][t] for t in ids]) for r in rounds}
        quantiles = [dict(round=r, **dict(zip(("q05", "q50", "q95"), map(float, np.quantile(x[r], [.05, .5, .95])))))
                     for r in rounds]
        out = self.tracked("nll_per_token", run, x.__getitem__, ids, concern="increase",
                           details={"quantiles": quantiles, "n_texts": len(ids)})

        ser = [point(r, self.bootstrap(np.stack([x[rounds[0]], x[r]], axis=1), "tail_mass", ids=ids,
                                       params={"quantile": q})) for r in rounds]
        threshold = float(np.quantile(x[rounds[0]], q))
        last = x[rounds[-1]]
        new = (last > threshold) & (x[rounds[0]] <= threshold)
        out.append(self.measurement(
            "tail_mass", ser[-1].value, ci_low=ser[-1].ci_low, ci_high=ser[-1].ci_high, round=rounds[-1],
            null=1.0 - q, concern="increase", series=ser, evidence=top_items(ids, np.where(new, last - threshold, 0)),
            details={"threshold": threshold, "quantile": q, "in_tail": int((last > threshold).sum()),
                     "n_texts": len(ids)}))
        return out


@probe
class Length(Probe):
    """Completion length (tokens) of the sampled pool answers: per-question mean length per round, with
    paired changes against round 0 and the previous round (concern: either), and the unfinished share
    (samples that hit the token budget; concern: increase).

    Length drift is a symptom of a loop that rewards padding or rambling; unfinished samples cannot be
    parsed and drop out of the majority vote. Evidence: questions whose completions grew most. `unfinished`
    counts lengths that reached the budget, so it is degenerate only when the lengths themselves never vary
    (none reaching the budget while lengths vary is a finding, not a measurement with nothing to detect).
    """

    id = "drift.length"
    family = "drift"
    reads = ("samples",)
    measurements = tracked_names("length", "unfinished")

    def measure(self, run: RunView):
        ids, tables = aligned_rounds(run, "pool")
        if not ids:
            return []
        budget = (run.config.get("loop") or {}).get("max_new_tokens")
        length = {r: t.n_tokens.mean(axis=1) for r, t in tables.items()}
        out = self.tracked("length", run, length.__getitem__, ids, concern="either",
                           details={"max_new_tokens": budget})
        base = float(length[run.rounds[0]].mean())
        for m in out[1:]:
            m.details["relative"] = None if m.value is None or base == 0 else m.value / base
        lengths = unvarying({r: t.n_tokens for r, t in tables.items()}, "completion's length", "questions")
        out += self.tracked("unfinished", run, lambda r: (~tables[r].finished).mean(axis=1), ids,
                            concern="increase", details={"max_new_tokens": budget}, degenerate=lengths)
        return out
