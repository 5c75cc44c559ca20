"""The regime call: can rounds 0 and 1 alone say where a loop is going (improving, the crank attractor, or
drift), and how much of the full run's cost does that call save?"""

from __future__ import annotations

from probes import Probe, RunView, probe
from probes.common import aligned_rounds, confident_wrong, finite, test_accuracy

REGIMES = {1.0: "improving", 0.0: "drift", -1.0: "crank"}


def _per_item(run: RunView) -> dict[str, dict]:
    """Per-round per-item values, with their item ids: test pass@1 and greedy accuracy per test question,
    confident-wrong (probes.common.confident_wrong) per pool question."""
    pool_ids, pools = aligned_rounds(run, "pool")
    out = {how: dict(zip(("ids", "by_round"), test_accuracy(run, how))) for how in ("pass1", "greedy")}
    return {**out, "cw": {"ids": pool_ids, "by_round": {r: confident_wrong(t) for r, t in pools.items()}}}


@probe
class Regime(Probe):
    """The run's regime called from rounds 0 and 1 only, scored against the change from round 0 to the last
    round. From the paired changes (CIs over questions): crank, when the pool's confident-wrong rate rose
    (CI wholly above 0) and greedy test accuracy did not (its CI reaches 0 or below: more confidently wrong,
    not more right: the self-reinforcing attractor); else improving, when test pass@1 or greedy accuracy
    rose (CI wholly above 0); else drift.

    `call`: the regime of the round 0 -> 1 changes (1 improving, 0 drift, -1 crank; the name in
    `details`); `final`: the same rule on round 0 -> last; `hit`: 1 when they agree (over a map of
    conditions, a suite gate `across = "mean"` gives the hit rate with its CI). `cost_share`: the wall time of
    rounds 0 and 1 over that of every round (from round.json), what the call costs as a share of the run.
    The changes and their CIs are in `details`. A run of fewer than three rounds has nothing to forecast.
    """

    id = "forecast.regime"
    family = "forecast"
    reads = ("samples", "eval")
    measurements = ("call", "final", "hit", "cost_share")

    def _classify(self, values: dict[str, dict], a: int, b: int) -> tuple[float, dict]:
        change = {k: self.paired_difference(v["by_round"][a], v["by_round"][b], ids=v["ids"])
                  for k, v in values.items()}
        up = {k: e.ci_low > 0 for k, e in change.items()}
        code = -1.0 if up["cw"] and not up["greedy"] else 1.0 if up["pass1"] or up["greedy"] else 0.0
        return code, {"rounds": [a, b], "regime": REGIMES[code],
                      **{f"{k}_change": [finite(e.value), finite(e.ci_low), finite(e.ci_high)] for k, e in change.items()}}

    def measure(self, run: RunView):
        rounds = list(run.rounds)
        values = _per_item(run)
        if len(rounds) < 3 or not all(len(v["ids"]) for v in values.values()):
            why = "needs three rounds (0 and 1 to call from, a later one to score against), test and pool samples"
            return [self.measurement(n, None, degenerate=why) for n in type(self).measurements]
        call, called = self._classify(values, rounds[0], rounds[1])
        final, happened = self._classify(values, rounds[0], rounds[-1])
        seconds = {r: sum(sum(one.round_record(r).get("seconds", {}).values()) for one in run.runs) for r in rounds}
        total = sum(seconds.values())
        share = (seconds[rounds[0]] + seconds[rounds[1]]) / total if total > 0 else None
        details = {"call": called, "final": happened}
        return [
            self.measurement("call", call, round=rounds[1], details=details, degenerate=None),
            self.measurement("final", final, round=rounds[-1], details=details, degenerate=None),
            self.measurement("hit", float(call == final), round=rounds[-1], details=details, degenerate=None),
            self.measurement("cost_share", share, round=rounds[-1], degenerate=None,
                             details={"seconds_by_round": {str(r): s for r, s in seconds.items()}}),
        ]

