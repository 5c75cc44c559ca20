"""Attractor probes: does the model's answer distribution collapse onto fixed points and basins?"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pydantic import Field, model_validator

from probes import Probe, RunView, SampleTable, answer_text, probe, stats, top_items
from probes._api import AUTOMATIC
from probes.common import MAX_EVIDENCE, aligned, estimate_fields, point, tracked_names, unvarying, votes_unvarying

_DIGITS = str.maketrans("0123456789", "#" * 10)
_N_SHIFT = 56  # pool n-gram keys: (index of n) << 56 | byte code, so n <= 7
_Z = 1.959963984540054


def template(text: str) -> str:
    """A rationale's shape: every digit replaced by '#', so texts of different questions compare."""
    return text.translate(_DIGITS)


def byte_grid(texts: Sequence[str]) -> np.ndarray:
    """UTF-8 bytes of each text, one row each, zero-padded: uint8 [m, max_len]."""
    enc = [t.encode() for t in texts]
    lens = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
    grid = np.zeros((len(enc), int(lens.max(initial=0))), dtype=np.uint8)
    grid[np.arange(grid.shape[1]) < lens[:, None]] = np.frombuffer(b"".join(enc), dtype=np.uint8)
    return grid


def ngram_codes(grid: np.ndarray, n: int) -> np.ndarray:
    """Each byte n-gram of each row packed into an int64; -1 where it touches a zero byte (padding or a
    sample separator): int64 [m, max_len - n + 1]."""
    width = max(grid.shape[1] - n + 1, 0)
    codes, valid = np.zeros((grid.shape[0], width), np.int64), np.ones((grid.shape[0], width), bool)
    for j in range(n):
        col = grid[:, j:j + width]
        codes |= col.astype(np.int64) << (8 * j)
        valid &= col != 0
    return np.where(valid, codes, -1)


def distinct_n(items: Sequence[Sequence[str]], ns: Sequence[int]) -> np.ndarray:
    """distinct-n of each item's texts: distinct byte n-grams / all n-grams over its texts (no n-gram spans
    two texts), averaged over `ns`; 0 for an item without n-grams. float [m]."""
    grid = byte_grid(["\0".join(s.replace("\0", " ") for s in texts) for texts in items])
    out = []
    for n in ns:
        s = np.sort(ngram_codes(grid, n), axis=1)
        new = s >= 0
        total = new.sum(1)
        new[:, 1:] &= s[:, 1:] != s[:, :-1]
        out.append(new.sum(1) / np.maximum(total, 1))
    return np.mean(out, axis=0)


def compression_ratio(text: str) -> float:
    """zlib-compressed bytes / raw UTF-8 bytes (zlib's default level 6); lower means more repetitive."""
    raw = text.encode()
    return len(zlib.compress(raw)) / len(raw) if raw else 1.0


def _zlib_ratio(raw: bytes) -> float:
    return len(zlib.compress(raw)) / max(len(raw), 1)


def halves(m: int, n_boot: int, seed: int) -> np.ndarray:
    """Random halves of m questions, drawn without replacement: int [n_boot, max(m // 2, 1)], each row's
    indices ascending.

    Pool-level statistics (compression, distinct n-grams, the largest basin) are not means: a resample with
    replacement repeats questions, which compress and deduplicate away and make up basins. Halves repeat
    nothing, and a statistic's spread over halves approximates its sampling spread over the full pool (for a
    mean, up to a factor m/(m-1)), so `_normal` puts a CI of +-1.96 such spreads around the full-pool value.
    """
    keys, h = np.random.default_rng(seed).random((n_boot, m)), max(m // 2, 1)
    # the h smallest keys of each row, as a full argsort would give them (53-bit keys do not tie), ascending:
    # a partition, not a sort, of the n_boot x m keys
    first = np.argpartition(keys, h - 1, axis=1)[:, :h] if h < m else np.argsort(keys, axis=1)[:, :h]
    return np.sort(first, axis=1)


def _normal(value: float, spread: np.ndarray) -> stats.Estimate:
    sd = float(np.std(spread, ddof=1)) if len(spread) > 1 else float("nan")
    return stats.Estimate(float(value), float(value) - _Z * sd, float(value) + _Z * sd)


def _level_and_change(probe: Probe, name: str, change: str, concern: str, per_round: dict,
                      degenerate=AUTOMATIC, **fields) -> list:
    """From (full-pool value, values over halves) per round: `name`, the last round's value with a series
    per round, and `change`, the last round minus the first on the same halves (concern: `concern`).

    Both rest on the level: degenerate (unless the probe says) when it is one number over the whole pool and
    every half in every round, so a change of exactly 0 on an unchanged pool is not."""
    (first, base), last = next(iter(per_round.items())), list(per_round)[-1]
    if degenerate is AUTOMATIC:
        degenerate = unvarying({r: np.append(v[0], v[1]) for r, v in per_round.items()}, "half of the pool",
                               "halves and the whole pool")
    ests = {r: _normal(*v) for r, v in per_round.items()}
    deltas = {r: _normal(v[0] - base[0], v[1] - base[1]) for r, v in per_round.items()}
    return [probe.measurement(name, round=last, series=[point(r, e) for r, e in ests.items()], **fields,
                              degenerate=degenerate, **estimate_fields(ests[last])),
            probe.measurement(change, round=last, concern=concern, series=[point(r, e) for r, e in deltas.items()],
                              **{**fields, "details": {"reference_round": first, **fields.get("details", {})}},
                              degenerate=degenerate, **estimate_fields(deltas[last]))]


@probe
class AnswerEntropy(Probe):
    """Mean per-question entropy (nats) of the sampled pool answers; a fall means the samples collapse
    onto fewer answers, which is an attractor forming when accuracy does not rise with it.

    Unparsed samples count as one shared answer. Measured per round with a bootstrap CI over questions,
    and as paired changes against round 0 and the previous round (concern: decrease).
    """

    id = "attractor.answer_entropy"
    family = "attractors"
    reads = ("samples",)
    measurements = tracked_names("entropy")

    def measure(self, run: RunView):
        ids = run.samples(run.rounds[0]).question_ids
        return self.tracked("entropy", run, lambda r: stats.row_entropy(aligned(run, r, ids).answers), ids,
                            concern="decrease")


@probe
class RationaleDiversity(Probe):
    """Diversity of the sampled rationales: distinct-n (byte, i.e. character, n-grams, n = n_min..n_max,
    averaged over n) and zlib compression ratio, within each question's k samples and across the pool; a
    fall means the loop narrows what the model writes.

    `question.*`: per question over its raw samples (no n-gram spans two samples), mean over questions,
    tracked like the other probes (paired deltas vs round 0 and the previous round). `pool.*`: one number
    per round over every pool sample in template view (digits -> '#', so questions compare by the shape of
    their rationales; questions joined in id order), with a CI from `pool_boot` random halves of the pool
    (see `halves`) and the change vs round 0 on the same halves. Concern: decrease. Distinct-n falls with
    repeated filler too: longer texts of the same n-grams are less diverse per n-gram.
    """

    id = "attractor.rationale_diversity"
    family = "attractors"
    reads = ("samples",)
    measurements = (*tracked_names("question.distinct_n", "question.compression_ratio"), "pool.distinct_n",
                    "pool.distinct_n.delta_vs_round0", "pool.compression_ratio",
                    "pool.compression_ratio.delta_vs_round0")

    class Params(Probe.Params):
        n_min: int = Field(2, ge=1, le=7)
        n_max: int = Field(4, ge=1, le=7)
        pool_boot: int = Field(50, ge=2, description="halves for the pool CIs (one zlib call each)")

        @model_validator(mode="after")
        def _ordered(self):
            if self.n_min > self.n_max:
                raise ValueError(f"n_min ({self.n_min}) exceeds n_max ({self.n_max})")
            return self

    params: Params

    def measure(self, run: RunView):
        p = self.params
        ns, ids = list(range(p.n_min, p.n_max + 1)), run.samples(run.rounds[0]).question_ids
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def per_question(r: int) -> tuple[np.ndarray, np.ndarray]:
            if r not in cache:
                comp = aligned(run, r, ids).completions
                cache[r] = (distinct_n(comp, ns), np.array([compression_ratio("\n".join(c)) for c in comp]))
            return cache[r]

        out = self.tracked("question.distinct_n", run, lambda r: per_question(r)[0], ids, "decrease",
                           details={"ngrams": "bytes (characters)", "n": ns})
        out += self.tracked("question.compression_ratio", run, lambda r: per_question(r)[1], ids, "decrease")
        idx = halves(len(ids), p.pool_boot, p.seed)  # ascending: a half keeps the id order
        w = np.zeros((len(idx), len(ids)), np.float32)
        w[np.arange(len(idx))[:, None], idx] = 1.0
        # name -> round -> (full pool, halves)
        pool: dict[str, dict[int, tuple[float, np.ndarray]]] = {"distinct_n": {}, "compression_ratio": {}}
        for r in run.rounds:
            comp = aligned(run, r, ids).completions
            pool["distinct_n"][r] = self._pool_distinct([template("\0".join(c)) for c in comp], ns, w)
            tpl = [template("\n".join(c)).encode() for c in comp]
            texts = [b"\n".join(tpl)] + [b"\n".join([tpl[i] for i in row]) for row in idx]
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as threads:  # zlib runs without the GIL
                ratios = np.array(list(threads.map(_zlib_ratio, texts)))
            pool["compression_ratio"][r] = (ratios[0], ratios[1:])
        for name, per_round in pool.items():
            out += _level_and_change(self, f"pool.{name}", f"pool.{name}.delta_vs_round0", "decrease", per_round,
                                     details={"view": "template (digits -> '#')", "n": ns})
        return out

    @staticmethod
    def _pool_distinct(texts: list[str], ns: list[int], w: np.ndarray) -> tuple[float, np.ndarray]:
        """Pool distinct-n (mean over ns) of all the texts and of each subset (0/1 rows of w [B, m])."""
        unique, which_text = np.unique(np.array(texts, dtype=object), return_inverse=True)
        grid = byte_grid(list(unique))  # the n-grams of each distinct text, once
        rows, keys, totals = [], [], []
        for i, n in enumerate(ns):
            c = ngram_codes(grid, n)
            q, pos = np.nonzero(c >= 0)
            rows.append(q)
            keys.append(c[q, pos] | (i << _N_SHIFT))
            totals.append((c >= 0).sum(1))
        types, inv = np.unique(np.concatenate(keys), return_inverse=True)
        present = np.zeros((len(unique), len(types)), np.float32)
        present[np.concatenate(rows), inv] = 1.0
        weights = np.vstack([np.ones((1, len(texts)), np.float32), w])  # row 0: the whole pool
        seen = (weights @ present[which_text]) > 0
        grams = weights @ np.array(totals, dtype=np.float32).T[which_text]
        n_of = types >> _N_SHIFT
        vals = np.mean([seen[:, n_of == i].sum(1) / np.maximum(grams[:, i], 1) for i in range(len(ns))], axis=0)
        return float(vals[0]), vals[1:]


@probe
class FixedPoints(Probe):
    """Questions stuck on a fixed point: vote share (the majority answer's share of the k samples) at least
    `threshold` in two consecutive rounds with the same majority answer; wrong ones are the attractor.

    `wrong_share`: share of questions that are wrong fixed points in the last pair of rounds (CI over
    questions; concern: increase, so it fires whenever wrong fixed points reliably exist), series per pair
    (a point's round is the later round of its pair); evidence: those ids, the longest stuck first.
    `wrong_share.delta_vs_first_pair`: last pair minus first pair (paired; concern: increase; needs three
    rounds). `right_share`: the same for right fixed points (no concern).
    """

    id = "attractor.fixed_points"
    family = "attractors"
    reads = ("samples",)
    measurements = ("wrong_share", "right_share", "wrong_share.delta_vs_first_pair")

    class Params(Probe.Params):
        threshold: float = Field(0.95, gt=0.0, le=1.0)

    params: Params

    def measure(self, run: RunView):
        p, ids = self.params, run.samples(run.rounds[0]).question_ids
        modes = {}
        for r in run.rounds:
            t = aligned(run, r, ids)
            mode, share = stats.row_mode(t.answers, t.parsed)
            modes[r] = (mode, share >= p.threshold, mode == t.truth)
        pairs = list(zip(run.rounds[:-1], run.rounds[1:]))
        if not pairs:
            why = {"reason": "fixed points need two rounds"}
            return [self.measurement(n, None, details=why) for n in ("wrong_share", "right_share")]
        wrong, right = {}, {}
        for a, b in pairs:
            fixed = modes[a][1] & modes[b][1] & (modes[a][0] == modes[b][0])
            wrong[b], right[b] = fixed & ~modes[b][2], fixed & modes[b][2]
        first, last = pairs[0][1], pairs[-1][1]
        degenerate = votes_unvarying(run, ids)
        streak, alive = np.zeros(len(ids)), np.ones(len(ids), bool)
        for _, b in reversed(pairs):  # pairs in a row, up to the last, stuck on the same wrong answer
            alive &= wrong[b] & (modes[b][0] == modes[last][0])
            streak += alive
        evidence = [ids[i] for i in np.argsort(-streak, kind="stable")[:MAX_EVIDENCE] if wrong[last][i]]
        out = []
        for name, flags, concern in (("wrong_share", wrong, "increase"), ("right_share", right, "none")):
            ests = {b: self.mean_ci(flags[b].astype(float), ids=ids) for _, b in pairs}
            out.append(self.measurement(
                name, round=last, concern=concern, series=[point(b, e) for b, e in ests.items()], **estimate_fields(ests[last]),
                evidence=evidence if name == "wrong_share" else [], degenerate=degenerate,
                details={"threshold": p.threshold, "pair": list(pairs[-1]), "count": int(flags[last].sum())}))
        if len(pairs) > 1:
            est = self.paired_difference(wrong[first], wrong[last], ids=ids)
            out.append(self.measurement(
                "wrong_share.delta_vs_first_pair", round=last, concern="increase", evidence=evidence,
                degenerate=degenerate,
                series=[point(b, self.paired_difference(wrong[first], wrong[b], ids=ids)) for _, b in pairs],
                **estimate_fields(est), details={"first_pair": list(pairs[0]), "last_pair": list(pairs[-1])}))
        return out


def largest_basin(group: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Share of the questions of each subset (row of idx) that fall in its largest group (group ids >= 0;
    -1: in none): float [len(idx)]."""
    b, m = idx.shape
    n_groups = int(group.max(initial=-1)) + 1
    if n_groups == 0 or m == 0:
        return np.zeros(b)
    # Count only the k largest groups of the whole pool: a subset holds at most a group's full size, so once
    # every subset's best count among them reaches the next group's full size, no other group can beat it.
    sizes = np.bincount(group[group >= 0], minlength=n_groups)
    order = np.argsort(-sizes, kind="stable")
    k = min(8, n_groups)
    while True:
        slot = np.full(n_groups + 1, -1, np.int64)  # group id (-1 -> the last entry) -> its candidate slot
        slot[order[:k]] = np.arange(k)
        c = slot.astype(np.int8 if k < 128 else np.int64)[group][idx]
        if k < 128:  # a few candidates: one pass of byte compares each
            best = np.max([np.count_nonzero(c == j, axis=1) for j in range(k)], axis=0)
        else:
            rows = np.broadcast_to(np.arange(b)[:, None], c.shape)[c >= 0]
            best = np.bincount(rows * k + c[c >= 0], minlength=b * k).reshape(b, k).max(1)
        if k == n_groups or best.min() >= sizes[order[k]]:
            return best / m
        k = min(4 * k, n_groups)


@probe
class Basins(Probe):
    """Basins: one wrong majority answer (or one rationale template of a wrong majority) shared by many
    questions. Different questions have different true answers, so a shared wrong value is a real signal.

    `answer_basin.largest_share`: share of questions whose majority answer is wrong and equals the most
    common such value (CI from random halves of the pool, see `halves`; series per round); evidence: its
    question ids. `answer_basin.growth_vs_round0`: last round minus round 0 (the largest basin of each
    round; the same halves in both; concern: increase). `template_basin.*`: the same over the template
    (digits -> '#') of the first sample giving each question's wrong majority answer.
    """

    id = "attractor.basins"
    family = "attractors"
    reads = ("samples",)
    measurements = ("answer_basin.largest_share", "answer_basin.growth_vs_round0", "template_basin.largest_share",
                    "template_basin.growth_vs_round0")

    def measure(self, run: RunView):
        ids = run.samples(run.rounds[0]).question_ids
        m = len(ids)
        idx = halves(m, stats.N_BOOT, self.params.seed)
        # name -> round -> (full, halves, labels, group)
        found: dict[str, dict[int, tuple]] = {"answer_basin": {}, "template_basin": {}}
        for r in run.rounds:
            t = aligned(run, r, ids)
            mode, share = stats.row_mode(t.answers, t.parsed)
            wrong = (share > 0) & (mode != t.truth)
            first = np.argmax(t.answers == mode[:, None], axis=1)
            tpl = np.array([template(t.completions[i][first[i]]) if wrong[i] else "" for i in range(m)], object)
            for name, keys in (("answer_basin", mode), ("template_basin", tpl)):
                group = np.full(m, -1, np.int64)
                labels, group[wrong] = np.unique(keys[wrong], return_inverse=True)
                whole = largest_basin(group, np.arange(m)[None])[0]
                found[name][r] = (whole, largest_basin(group, idx), labels, group)
        out, degenerate = [], votes_unvarying(run, ids)
        for name, per_round in found.items():
            _, _, labels, group = per_round[run.rounds[-1]]
            counts = np.bincount(group[group >= 0], minlength=len(labels))
            top = int(counts.argmax()) if len(labels) else -1
            evidence = [ids[i] for i in np.flatnonzero(group == top)[:MAX_EVIDENCE]] if top >= 0 else []
            key = None if top < 0 else answer_text(labels[top]) if name == "answer_basin" else str(labels[top])
            details = {"key": key, "size": int(counts.max(initial=0)), "n_questions": m}
            out += _level_and_change(self, f"{name}.largest_share", f"{name}.growth_vs_round0", "increase",
                                     {r: v[:2] for r, v in per_round.items()}, degenerate=degenerate,
                                     evidence=evidence, details=details)
        return out


def pass_curve(t: SampleTable) -> np.ndarray:
    """Unbiased pass@j for j = 1..k of each question: float [n, k]."""
    c = t.correct.sum(axis=1)
    curve = [stats.pass_at_k(t.k, c, j) for j in range(1, t.k + 1)]
    return np.stack(curve, axis=1) if curve else np.zeros((len(c), 0))


@probe
class PassAtK(Probe):
    """Unbiased pass@1..k of the pool samples per round and the area under that curve (mean of pass@j over
    j = 1..k); the self-improvement reversal is pass@1 rising while the top of the curve falls (the loop
    sharpens onto fewer answers and stops covering questions it used to solve at some k).

    `pass@1` and `area` are tracked per question like the other probes (paired deltas vs round 0 and the
    previous round; concern: none for pass@1, decrease for the area; `area`'s details hold each round's mean
    pass@j curve); `pass@k.delta_vs_round0` at k = samples per question (paired; concern: decrease).
    `reversal` sets `alarm` when, from round 0 to the last round, pass@1 rises (CI above 0) while the area or
    pass@k falls (CI below 0); its details hold the three deltas with their CIs, and `alarm_p`, the p-value of
    the conjunction (the largest of its parts, Bonferroni over area and pass@k) that the run's false-alarm
    correction adjusts with the other measurements: the alarm fires when it survives the correction too.
    """

    id = "attractor.pass_at_k"
    family = "attractors"
    reads = ("samples",)
    measurements = (*tracked_names("pass@1", "area"), "pass@k.delta_vs_round0", "reversal")

    def measure(self, run: RunView):
        ids = run.samples(run.rounds[0]).question_ids
        curves = {r: pass_curve(aligned(run, r, ids)) for r in run.rounds}
        first, last = run.rounds[0], run.rounds[-1]
        k = curves[last].shape[1]
        per_item = {"pass@1": lambda r: curves[r][:, 0], "area": lambda r: curves[r].mean(axis=1),
                    "pass@k": lambda r: curves[r][:, -1]}
        curve_means = {str(r): [float(v) for v in c.mean(axis=0)] for r, c in curves.items()}
        out = self.tracked("pass@1", run, per_item["pass@1"], ids, "none", details={"k": k})
        out += self.tracked("area", run, per_item["area"], ids, "decrease",
                            details={"k": k, "curve_by_round": curve_means})
        deltas = {name: self.paired_difference(f(first), f(last), ids=ids) for name, f in per_item.items()}
        if len(run.rounds) > 1:
            out.append(self.measurement(
                "pass@k.delta_vs_round0", deltas["pass@k"], round=last, concern="decrease",
                evidence=top_items(ids, curves[first][:, -1] - curves[last][:, -1]),
                details={"k": k, "reference_round": first}))
        falling = [name for name in ("area", "pass@k") if deltas[name].ci_high < 0]
        alarm = bool(len(run.rounds) > 1 and deltas["pass@1"].ci_low > 0 and falling)
        alarm_p = stats.conjunction_p([deltas["pass@1"]], [deltas["area"], deltas["pass@k"]])
        out.append(self.measurement(
            "reversal", None, round=last, alarm=alarm,
            details={"alarm_p": alarm_p if len(run.rounds) > 1 else None, "reference_round": first, "k": k,
                     "falling": falling if alarm else [],
                     **{f"{name}.delta_vs_round0": estimate_fields(d) for name, d in deltas.items()}}))
        return out
