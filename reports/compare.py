"""Compare runs: align them by probe measurement and round, and estimate each difference (B - A) with a 95% CI.

Every measurement is compared by the strongest method its records allow (probes.differences): exactly 0
when both runs computed it from identical artifacts, paired on the per-item records when the two runs hold
the same items (two conditions of one suite do), unpaired when they do not, from the two CIs when a
measurement keeps no per-item values; each difference says which. Before anything is compared the two
runs' definitions are checked: a probe run with other parameters in B is recomputed on B under A's, a
measurement produced under other loop settings (k, temperature, ...) is refused with its reason, and runs of
different domains are not compared at all. Significance is decided after Benjamini-Hochberg across the
pair's differences; a difference of a measurement degenerate in both runs (it has nothing to detect in
either) is marked and left out of that family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from probes import (
    Measurement,
    ProbeInfo,
    ProbeResults,
    SeriesPoint,
    get_probe,
    incomplete,
    measure_probe,
    registry,
    stats,
)
from probes.differences import comparable, difference
from probes.gates import degenerate_difference
from reports.model import Panel
from reports.panel import transition_panel
from reports.sources import Source, probe_results, prompts

COMPARISON_SCHEMA_VERSION = 3  # 3: answers are canonical strings
Q = 0.05
Direction = Literal["higher_is_better", "lower_is_better", "none"]
Method = Literal["identical_inputs", "paired", "unpaired", "from_cis", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Difference(_Model):
    probe: str
    measurement: str
    round: int | None
    a: float | None
    b: float | None
    diff: float | None  # b - a
    ci_low: float | None
    ci_high: float | None
    method: Method
    n_items: int | None = None  # paired: items in common; unpaired: items of a + items of b
    p_value: float | None = None  # exact McNemar for paired yes/no items, else from the CI
    p_adjusted: float | None = None  # Benjamini-Hochberg across the pair's differences
    direction: Direction
    significant: bool  # p_adjusted <= q (for a difference without a p: the CI excludes 0)
    degenerate: str | None = None  # degenerate in both runs (why): never tested, never significant
    worse: str | None  # label of the worse run, when significant and the direction is known
    series_a: list[SeriesPoint] = []  # per-round values of each run (headlines only, for plots)
    series_b: list[SeriesPoint] = []


class Headline(_Model):
    metric: str
    label: str
    difference: Difference
    better: str | None
    verdict: str


class Refusal(_Model):
    probe: str
    reason: str


class PairComparison(_Model):
    a: str
    b: str
    rounds: list[int]
    note: str | None = None  # one line when the runs are not (fully) comparable
    recomputed: list[str] = []  # probes recomputed on B under A's definition, with why
    refused: list[Refusal] = []  # probes not compared, with why
    correction: str = ""  # "k of n differ (BH, q <= 0.05)"
    headlines: list[Headline]
    differences: list[Difference]
    panel: Panel | None = None  # B against A at the last common round, item by item (reports.panel)


class RunRef(_Model):
    label: str
    kind: Literal["run", "condition"]
    path: str
    runs: list[str]
    rounds: list[int]
    incomplete: str | None = None  # why its runs did not finish (a failed round, missing rounds)


class Comparison(_Model):
    schema_version: int = COMPARISON_SCHEMA_VERSION
    tool: str = "loopprobe"
    baseline: str
    runs: list[RunRef]
    pairs: list[PairComparison]


# (key, label, probe, measurement, direction): the five numbers a comparison opens with
HEADLINES = (
    ("test_accuracy", "test accuracy", "drift.accuracy", "test.greedy", "higher_is_better"),
    ("confident_wrong_rate", "confident-wrong rate", "cw.rate", "rate", "lower_is_better"),
    ("ood_accuracy", "ood accuracy", "drift.accuracy", "ood.greedy", "higher_is_better"),
    ("reference_nll", "reference NLL/token", "drift.reference_nll", "nll_per_token", "lower_is_better"),
    ("answer_entropy", "answer entropy", "attractor.answer_entropy", "entropy", "none"),
)
_METHOD_WORDS = {"identical_inputs": "from identical inputs", "paired": "paired", "unpaired": "unpaired",
                 "from_cis": "from CIs"}
_HEADLINE_DIRECTION = {(p, m): d for _, _, p, m, d in HEADLINES}


def _direction(probe: str, m: Measurement, concerns: Mapping[str, str]) -> Direction:
    """Which way is better: a headline's known direction, else the measurement's concern, else (a level,
    which has no null) the concern of its change against round 0."""
    concern = m.concern if m.concern != "none" else concerns.get(f"{m.name}.delta_vs_round0", "none")
    return _HEADLINE_DIRECTION.get((probe, m.name)) or {"increase": "lower_is_better",  # type: ignore[return-value]
                                                        "decrease": "higher_is_better"}.get(concern, "none")


def _worse(diff: float | None, significant: bool, direction: Direction, a: str, b: str) -> str | None:
    if not significant or direction == "none" or diff is None or diff == 0:
        return None
    return b if (diff > 0) == (direction == "lower_is_better") else a


def _domain(source: Source) -> str:
    return (source.view.config.get("domain") or {}).get("name", "arithmetic")


def _aligned(sa: Source, sb: Source) -> tuple[dict[str, tuple[list[Measurement], ProbeInfo]],
                                            dict[str, tuple[list[Measurement], ProbeInfo]], list[str], list[Refusal]]:
    """Per probe, both runs' measurements under one definition (A's): probes missing on one side or run
    with other parameters are recomputed there; what cannot be made comparable is refused."""
    def by_probe(results: ProbeResults):
        return {p.id: ([m for m in results.measurements if m.probe == p.id], p) for p in results.probes}

    pa, pb = by_probe(probe_results(sa)), by_probe(probe_results(sb))
    wanted = list(dict.fromkeys([*pa, *pb, *(p for _, _, p, _, _ in HEADLINES)]))
    recomputed, refused = [], []
    for pid in wanted:
        if pid not in registry():
            if pid not in pa or pid not in pb or comparable(pa[pid][1], pb[pid][1]):
                refused.append(Refusal(probe=pid, reason="not installed here, and recorded differently or in one "
                                                         "run only, so it cannot be recomputed"))
                pa.pop(pid, None), pb.pop(pid, None)
            continue
        known = pa.get(pid) or pb.get(pid)
        params = known[1].params if known else get_probe(pid)().params.model_dump(mode="json")
        for label, side, view in (("A", pa, sa.view), ("B", pb, sb.view)):
            info = side.get(pid, (None, None))[1]
            if info is None or info.params != params:
                why = "not recorded" if info is None else "other parameters (" + ", ".join(
                    f"{k}: {info.params.get(k)} → {v}" for k, v in params.items() if info.params.get(k) != v) + ")"
                try:
                    side[pid] = measure_probe(pid, params, view)
                except Exception as e:  # noqa: BLE001 (a probe that cannot run on this view is refused, not fatal)
                    refused.append(Refusal(probe=pid, reason=f"cannot be computed on {label}: {e}"))
                    pa.pop(pid, None), pb.pop(pid, None)
                    break
                recomputed.append(f"{pid} on {label}: {why}")
        if pid in pa and pid in pb:
            why_not = comparable(pa[pid][1], pb[pid][1])
            if why_not:
                refused.append(Refusal(probe=pid, reason=why_not))
                pa.pop(pid), pb.pop(pid)
    return pa, pb, recomputed, refused


def compare_pair(sa: Source, sb: Source, seed: int = 0, q: float = Q) -> PairComparison:
    a, b = sa.label, sb.label
    rounds = sorted(set(sa.view.rounds) & set(sb.view.rounds))
    if _domain(sa) != _domain(sb):
        note: str | None = (f"{a} is {_domain(sa)} and {b} is {_domain(sb)}: they answer different questions, so no "
                "measurement is compared")
        return PairComparison(a=a, b=b, rounds=rounds, note=note, correction="nothing compared", headlines=[],
                              differences=[])
    pa, pb, recomputed, refused = _aligned(sa, sb)
    rows: list[Difference] = []
    for pid in pa:
        mb = {m.name: m for m in pb[pid][0]}
        concerns = {m.name: m.concern for m in pa[pid][0]}
        for ma in pa[pid][0]:
            if ma.name not in mb:
                continue
            points: Sequence[int | None]
            points = sorted({p.round for p in ma.series} & {p.round for p in mb[ma.name].series} & set(rounds)) \
                or ([ma.round] if ma.round == mb[ma.name].round else [])
            for r in points:
                d = difference(ma, mb[ma.name], r, pa[pid][1], pb[pid][1], seed=seed)
                rows.append(Difference(probe=pid, measurement=ma.name, round=r, a=d.a, b=d.b, diff=d.value,
                                       ci_low=d.ci_low, ci_high=d.ci_high, method=d.method, n_items=d.n_items,  # type: ignore[arg-type]
                                       p_value=d.p_value, direction=_direction(pid, ma, concerns), significant=False,
                                       worse=None, degenerate=degenerate_difference({a: ma, b: mb[ma.name]})))
    tested = [i for i, d in enumerate(rows) if d.p_value is not None and d.diff is not None and d.degenerate is None]
    adjusted = stats.adjust_p([rows[i].p_value for i in tested], "bh")
    for i, p in zip(tested, adjusted):
        row = rows[i]
        significant = bool(p <= q and row.diff != 0)
        rows[i] = row.model_copy(update={"p_adjusted": float(p), "significant": significant,
                                         "worse": _worse(row.diff, significant, row.direction, a, b)})
    headlines = _headlines(rows, pa, pb, rounds, a, b)
    methods = {m: sum(d.method == m for d in rows) for m in ("identical_inputs", "paired", "unpaired", "from_cis")}
    n_sig = sum(d.significant for d in rows)
    idle = sum(d.degenerate is not None for d in rows)
    correction = (f"{n_sig} of {len(tested)} differ (BH, q ≤ {q:g}); compared "
                  + ", ".join(f"{n} {_METHOD_WORDS[m]}" for m, n in methods.items() if n)
                  + (f"; {idle} degenerate in both runs, not tested" if idle else ""))
    note = None
    if methods["unpaired"]:
        note = (f"{a} and {b} hold different items in {methods['unpaired']} of "
                f"{methods['unpaired'] + methods['paired']} item comparisons (other seeds or splits, or items a "
                "probe selects per run): those are unpaired")
    panel = transition_panel(sa.view, rounds[-1], sb.view, rounds[-1], a, b,
                             prompts=lambda ids: prompts(sa, ids)) if rounds else None
    return PairComparison(a=a, b=b, rounds=rounds, note=note, recomputed=recomputed, refused=refused,
                          correction=correction, headlines=headlines, differences=rows, panel=panel)


def _headlines(rows: list[Difference], pa, pb, rounds: list[int], a: str, b: str) -> list[Headline]:
    out = []
    for key, label, pid, name, _ in HEADLINES:
        found = [d for d in rows if d.probe == pid and d.measurement == name and d.round in rounds]
        if not found or all(d.diff is None for d in found):
            continue
        last = max(found, key=lambda d: d.round if d.round is not None else -1)
        ma = next(m for m in pa[pid][0] if m.name == name)
        mb = next(m for m in pb[pid][0] if m.name == name)
        last = last.model_copy(update={"series_a": [p for p in ma.series if p.round in rounds],
                                       "series_b": [p for p in mb.series if p.round in rounds]})
        better, verdict = _verdict(label, last, a, b)
        out.append(Headline(metric=key, label=label, difference=last, better=better, verdict=verdict))
    return out


def _verdict(label: str, d: Difference, a: str, b: str) -> tuple[str | None, str]:
    if d.diff is None:
        return None, f"{label}: undefined in one of the runs"
    if d.degenerate is not None:
        return None, f"{label}: degenerate {d.degenerate}, so not compared"
    how = {"paired": "paired", "unpaired": "unpaired", "identical_inputs": "identical inputs",
           "from_cis": "from CIs"}.get(d.method, d.method)
    ci = "[no CI]" if d.ci_low is None or d.ci_high is None else f"[{d.ci_low:+.4g}, {d.ci_high:+.4g}]"
    items = f", {d.n_items} items" if d.n_items else ""
    nums = (f"{label} at round {d.round}: {a} {d.a:.4g}, {b} {d.b:.4g}; {b} − {a} = {d.diff:+.4g} "
            f"{ci} ({how}{items})")
    if not d.significant:
        excludes = d.ci_low is not None and d.ci_high is not None and (d.ci_low > 0 or d.ci_high < 0)
        if excludes:  # the CI alone would call it; the correction across the pair's differences does not
            return None, f"{nums}: not significant after BH (adjusted p {d.p_adjusted:.2g})"
        return None, f"{nums}: no significant difference"
    if d.worse is None:
        return None, f"{nums}: they differ (no better direction)"
    better = a if d.worse == b else b
    return better, f"{nums}: {better} is better"


def compare(sources: list[Source], seed: int = 0) -> Comparison:
    """Every other source against the first (the baseline)."""
    refs = [RunRef(label=s.label, kind=s.kind, path=str(s.root), runs=[d.name for d in s.run_dirs],  # type: ignore[arg-type]
                   rounds=list(s.view.rounds), incomplete=incomplete(s.view)) for s in sources]
    return Comparison(baseline=sources[0].label, runs=refs,
                      pairs=[compare_pair(sources[0], s, seed) for s in sources[1:]])

