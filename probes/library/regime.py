"""The regime call: can rounds 0 and 1 alone say where a loop is going (improving, the crank attractor, or
drift), and how much of the full run's cost does that call save?"""

from __future__ import annotations

from harness.summary import CONFIDENT_SHARE
from probes import Probe, RunView, probe
from probes.common import aligned_rounds, finite, vote

REGIMES = {1.0: "improving", 0.0: "drift", -1.0: "crank"}


def _per_item(run: RunView) -> tuple[dict, dict]:
    """(test ids, per-round pass@1 per test question), (pool ids, per-round confident-wrong per pool question)."""
    test_ids, tests = aligned_rounds(run, "test", "sample")
    pool_ids, pools = aligned_rounds(run, "pool")
    pass1 = {r: t.correct.mean(axis=1) for r, t in tests.items()}
    cw = {}
    for r, t in pools.items():
        right, share = vote(t)
        cw[r] = ((~right) & (share >= CONFIDENT_SHARE)).astype(float)
    return {"ids": test_ids, "by_round": pass1}, {"ids": pool_ids, "by_round": cw}


@probe
class Regime(Probe):
    """The run's regime called from rounds 0 and 1 only, scored against the change from round 0 to the last
    round: improving (test pass@1 rose: the paired change's CI wholly above 0), else crank (the pool's
    confident-wrong rate rose: its CI wholly above 0; the self-reinforcing attractor), else drift.

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

    def _classify(self, pass1: dict, cw: dict, a: int, b: int) -> tuple[float, dict]:
        gain = self.paired_difference(pass1["by_round"][a], pass1["by_round"][b], ids=pass1["ids"])
        entrench = self.paired_difference(cw["by_round"][a], cw["by_round"][b], ids=cw["ids"])
        code = 1.0 if gain.ci_low > 0 else -1.0 if entrench.ci_low > 0 else 0.0
        return code, {"rounds": [a, b], "regime": REGIMES[code],
                      "pass1_change": [finite(gain.value), finite(gain.ci_low), finite(gain.ci_high)],
                      "cw_change": [finite(entrench.value), finite(entrench.ci_low), finite(entrench.ci_high)]}

    def measure(self, run: RunView):
        rounds = list(run.rounds)
        pass1, cw = _per_item(run)
        if len(rounds) < 3 or not len(pass1["ids"]) or not len(cw["ids"]):
            why = "needs three rounds (0 and 1 to call from, a later one to score against), test and pool samples"
            return [self.measurement(n, None, degenerate=why) for n in type(self).measurements]
        call, called = self._classify(pass1, cw, rounds[0], rounds[1])
        final, happened = self._classify(pass1, cw, rounds[0], rounds[-1])
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

