"""Forecast skill: does the dataset a round generates forecast where the model goes, h rounds on, better
than not changing, than the trend of the rounds before, and (for accuracy) than the entropy-performance fit?

The seed's claim: "the result is to move the model's median generation in the direction of the dataset. We
can simply look at the dataset ... to get a pretty good idea of the direction ... the compounding effects of
multiple rounds are a different matter." This probe scores that claim per horizon, out of sample."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from harness.summary import CONFIDENT_SHARE
from probes import Probe, RunView, _resample, probe, stats
from probes.common import aligned, finite

MAX_HORIZON = 3
SPLITS = ("pool", "test")
SCORES = (("distribution", ("none", "trend")), ("accuracy", ("none", "trend", "entropy_fit")),
          ("cw_rate", ("none", "trend")), ("entropy", ("none", "trend")))


class _Slots:
    """The answers of some rounds of one split over a joint support: slot j of a question stands for the
    answer its j-th joint entry holds, counted at its first occurrence, so distributions are [n, m] arrays."""

    def __init__(self, tables: list, truth: np.ndarray, missing: int):
        self.joint = np.concatenate([t.answers for t in tables], axis=1)
        m = self.joint.shape[1]
        self.first = np.argmax(self.joint[:, :, None] == self.joint[:, None, :], axis=2) == np.arange(m)
        self.correct = self.first & (self.joint == truth[:, None])
        self.parsed = self.first & (self.joint != missing)

    def dist(self, answers: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = np.ones(answers.shape) if weights is None else weights.astype(float)
        hits = ((self.joint[:, :, None] == answers[:, None, :]) * w[:, None, :]).sum(axis=2)
        total = w.sum(axis=1, keepdims=True)
        return np.where(self.first, hits / np.where(total > 0, total, 1.0), 0.0)

    def metrics(self, d: np.ndarray) -> dict[str, np.ndarray]:
        """Per question: pass@1, confident-wrong (the parsed mode wrong with share >= CONFIDENT_SHARE), entropy."""
        mode = np.argmax(np.where(self.parsed, d, -1.0), axis=1)
        share = d[np.arange(len(d)), mode]
        wrong = ~self.correct[np.arange(len(d)), mode]
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0).sum(axis=1)
        return {"accuracy": (d * self.correct).sum(axis=1),
                "cw_rate": (wrong & (share >= CONFIDENT_SHARE) & (share > 0)).astype(float), "entropy": entropy}


def _chosen(run: RunView, split: str, r: int, table) -> np.ndarray:
    """[n, k] the samples round r's dataset keeps: the recorded selection (pool), or each held-out question's
    own majority answer (test: the label-free direction of self-training; they have no dataset)."""
    if split == "test":
        mode, _share = stats.row_mode(table.answers, table.parsed)
        return (table.answers == mode[:, None]) & table.parsed
    index = {q: i for i, q in enumerate(table.question_ids)}
    chosen = np.zeros(table.answers.shape, dtype=bool)
    for row in run.selected(r):
        if row.get("source", "sample") == "sample" and row["question_id"] in index:
            chosen[index[row["question_id"]], row["sample_index"]] = True
    return chosen


def _entropy_fit(acc: np.ndarray, ent: np.ndarray, ent_next: np.ndarray) -> np.ndarray:
    """R = -a exp(H) + b (Cui et al. 2025) fitted by least squares to the rounds so far, evaluated at
    ent_next: acc and ent are [rounds, B] (B resamples at once), ent_next [B]. Entropies that do not vary
    leave only the mean accuracy to forecast with."""
    x = np.exp(ent)
    dx, dy = x - x.mean(axis=0), acc - acc.mean(axis=0)
    var = (dx * dx).sum(axis=0)
    slope = np.where(var > 1e-12, (dx * dy).sum(axis=0) / np.where(var > 1e-12, var, 1.0), 0.0)
    return acc.mean(axis=0) + slope * (np.exp(ent_next) - x.mean(axis=0))


@probe
class ForecastSkill(Probe):
    """Skill of the dataset forecast of round r+h from round r, per horizon h, against baselines: 1 -
    loss(dataset) / loss(baseline), with a bootstrap CI over questions (null 0: no better than the baseline).

    The dataset forecast of a question's answer distribution is (1 - a_h) P_r + a_h S_r: S_r is the answer
    distribution of what round r's dataset keeps of the question (its selected samples; none kept: no
    change; held-out test questions, never selected, move toward their own majority answer, the label-free
    direction of self-training). The step a_h in [0, 1] is fitted per horizon on one random half of the
    questions (least squares) and scored on the other, and the other way round, so every question is scored
    out of sample. Losses: the Brier score against round r+h's empirical distribution (`distribution`), and
    squared errors of the per-question metrics computed from each forecast: pass@1 (`accuracy`), confident-
    wrong (`cw_rate`) and answer entropy (`entropy`). Baselines: `none` (round r as it is), `trend` (each
    question's change from round r-1 to r continued h rounds; from r = 1), and for accuracy `entropy_fit`
    (the split's mean pass@1 forecast by R = -a exp(H) + b fitted to rounds 0..r, at the entropy's trend;
    from r = 1; the loss is the squared error of the mean, refitted in every bootstrap resample). Losses
    are summed over every r with r + h recorded. Names: `<split>.h<h>.<score>.vs_<baseline>`; concern none.
    A horizon the run is too short for, and a baseline with no pair to score (the trend and the fit need
    a round before r), are not reported; a score whose two losses are both 0 is undefined (value None).
    """

    id = "forecast.skill"
    family = "forecast"
    reads = ("samples", "eval", "selected")
    measurements = tuple(f"{split}.h{h}.{score}.vs_{base}" for split in SPLITS for h in range(1, MAX_HORIZON + 1)
                         for score, bases in SCORES for base in bases)

    class Params(Probe.Params):
        max_horizon: int = Field(MAX_HORIZON, ge=1, le=MAX_HORIZON, description="the longest horizon scored")

    params: Params

    def measure(self, run: RunView):
        out = []
        for split in SPLITS:
            out += self._split(run, split)
        return out

    def _split(self, run: RunView, split: str):
        rounds = list(run.rounds)
        ids = run.samples(rounds[0], split, "sample").question_ids
        tables = {r: aligned(run, r, ids, split, "sample") for r in rounds}
        names = [n for n in type(self).measurements if n.startswith(f"{split}.")]
        if len(ids) < 4 or not tables[rounds[0]].k:
            return [self.measurement(n, None, degenerate=f"too few {split} questions or samples") for n in names]
        half = np.random.default_rng(self.seed).permutation(len(ids)) < len(ids) // 2  # the two halves
        out = []
        for h in range(1, MAX_HORIZON + 1):
            prefix = f"{split}.h{h}."
            pairs = [(i, i + h) for i in range(len(rounds) - h)] if h <= self.params.max_horizon else []
            if not pairs:  # the run is too short for this horizon: nothing to report (as a delta_vs_previous
                continue   # of a one-round run)
            out += self._horizon(run, split, rounds, tables, pairs, half, prefix, ids)
        return out

    def _horizon(self, run, split, rounds, tables, pairs, half, prefix, ids):
        n = len(ids)
        units = []  # per pair: (slots, P_r, S_r, P_next, P_prev or None, i)
        for i, j in pairs:
            r, t = rounds[i], rounds[j]
            prev = tables[rounds[i - 1]] if i > 0 else None
            slots = _Slots([tables[r], tables[t]] + ([prev] if prev is not None else []), tables[r].truth,
                           tables[r].missing)
            chosen = _chosen(run, split, r, tables[r])
            p_r = slots.dist(tables[r].answers)
            s_r = np.where(chosen.any(axis=1)[:, None], slots.dist(tables[r].answers, chosen), p_r)
            units.append((slots, p_r, s_r, slots.dist(tables[t].answers),
                          slots.dist(prev.answers) if prev is not None else None, i))
        alpha = {}  # the step, fitted on each half, used on the other
        for fit_half in (True, False):
            d = sum(((u[1] - u[3]) * (u[2] - u[1]))[half == fit_half].sum() for u in units)
            v = sum(((u[2] - u[1]) ** 2)[half == fit_half].sum() for u in units)
            alpha[not fit_half] = float(np.clip(-d / v, 0.0, 1.0)) if v > 0 else 0.0
        a = np.where(half, alpha[True], alpha[False])[:, None]
        h = pairs[0][1] - pairs[0][0]
        losses = {f"{score}.{base}": np.zeros((n, 2)) for score, bases in SCORES for base in bases if base != "entropy_fit"}
        aggregate = []  # per pair from r = 1: (dataset accuracy forecasts, observed, the rounds' per-question values)
        for slots, p_r, s_r, p_next, p_prev, i in units:
            forecast = (1 - a) * p_r + a * s_r
            f_m, obs, now = slots.metrics(forecast), slots.metrics(p_next), slots.metrics(p_r)
            dataset = {"distribution": ((forecast - p_next) ** 2).sum(axis=1),
                       **{k: (f_m[k] - obs[k]) ** 2 for k in obs}}
            baselines = {"none": {"distribution": ((p_r - p_next) ** 2).sum(axis=1),
                                  **{k: (now[k] - obs[k]) ** 2 for k in obs}}}
            if p_prev is not None:
                trend = np.clip(p_r + h * (p_r - p_prev), 0.0, None) * slots.first
                total = trend.sum(axis=1, keepdims=True)
                trend = np.where(total > 0, trend / np.where(total > 0, total, 1.0), p_r)
                before = slots.metrics(p_prev)
                bounds = {"accuracy": (0.0, 1.0), "cw_rate": (0.0, 1.0), "entropy": (0.0, None)}
                baselines["trend"] = {"distribution": ((trend - p_next) ** 2).sum(axis=1), **{
                    k: (np.clip(now[k] + h * (now[k] - before[k]), *bounds[k]) - obs[k]) ** 2 for k in obs}}
                aggregate.append((f_m["accuracy"], obs["accuracy"], i))
            for base, scored in baselines.items():
                for score, loss in scored.items():
                    losses[f"{score}.{base}"] += np.stack([loss, dataset[score]], axis=1)
        details = {"alpha": {"half_a": alpha[True], "half_b": alpha[False]}, "pairs": [[rounds[i], rounds[j]] for i, j
                                                                                        in pairs]}
        out = []
        for key, columns in losses.items():
            if key.endswith(".trend") and not aggregate:  # no pair from round 1 on: no trend to compare with
                continue
            if not columns[:, 0].any() and not columns[:, 1].any():  # 0 / 0: both forecasts exact everywhere
                out.append(self.measurement(prefix + key.replace(".", ".vs_"), None, degenerate=None,
                                            details={**details, "reason": "both forecasts were exact on every "
                                                     "question: no loss to compare"}))
                continue
            est = self._skill(columns, ids)
            out.append(self.measurement(prefix + key.replace(".", ".vs_"), est, round=rounds[pairs[-1][1]],
                                        details={**details, "loss_baseline": float(columns[:, 0].sum()),
                                                 "loss_dataset": float(columns[:, 1].sum())}, degenerate=None))
        if aggregate:  # the fit needs two rounds up to r: pairs from round 1 on
            out.append(self._entropy_fit(run, split, rounds, tables, aggregate, prefix, ids, details, h))
        return out

    def _means(self, values: np.ndarray) -> np.ndarray:
        """[1 + B]: the mean of per-question values, then its mean in each bootstrap resample of the questions
        (probes._resample: exact sums where the values allow, chunked gathers otherwise)."""
        n = len(values)
        boots = _resample.means(values, stats.resample_indices(n, seed=self.seed), (n, stats.N_BOOT, self.seed))
        return np.concatenate([[values.mean()], boots])

    def _skill(self, columns: np.ndarray, ids) -> stats.Estimate:
        """1 - loss(dataset) / loss(baseline) over the questions, and its percentile bootstrap CI, from the
        resampled means of the two loss columns (their ratio is the ratio of sums)."""
        base, data = self._means(columns[:, 0]), self._means(columns[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            skill = np.where(base > 0, 1.0 - data / np.where(base > 0, base, 1.0), np.nan)
        items = stats.ItemValues(tuple(ids), columns, "skill_score")
        return stats.percentile_interval(float(skill[0]), skill[1:], stats.ALPHA, items)

    def _entropy_fit(self, run, split, rounds, tables, aggregate, prefix, ids, details, h):
        name = prefix + "accuracy.vs_entropy_fit"
        slots_all = _Slots([tables[r] for r in rounds], tables[rounds[0]].truth, tables[rounds[0]].missing)
        per_round = [slots_all.metrics(slots_all.dist(tables[r].answers)) for r in rounds]
        acc = np.stack([self._means(m["accuracy"]) for m in per_round])  # [R, 1 + B]: point, then resamples
        ent = np.stack([self._means(m["entropy"]) for m in per_round])
        err_data, err_fit = np.zeros(acc.shape[1]), np.zeros(acc.shape[1])
        for f_acc, observed, i in aggregate:
            target = self._means(observed)
            ent_next = ent[i] + h * (ent[i] - ent[i - 1])  # the entropy's own trend
            err_fit += (_entropy_fit(acc[: i + 1], ent[: i + 1], ent_next) - target) ** 2
            err_data += (self._means(f_acc) - target) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            skill = np.where(err_fit > 0, 1.0 - err_data / np.where(err_fit > 0, err_fit, 1.0), np.nan)
        value, boots = skill[0], skill[1:][np.isfinite(skill[1:])]
        lo, hi = (np.percentile(boots, [2.5, 97.5]) if len(boots) else (np.nan, np.nan))
        return self.measurement(name, finite(value), ci_low=finite(float(lo)), ci_high=finite(float(hi)),
                                round=rounds[aggregate[-1][2] + h], details=details,
                                degenerate=None)
