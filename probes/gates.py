"""Gates turn measurements into a verdict: each holds when a measurement (its value or a CI bound) lies
within the bounds a suite sets. Two forms:

- a measurement of a condition (every condition, or the one named): `probe`, `stat`, `min`/`max`, `use`;
- a mean over conditions (`across = "mean"`): the measurement `stat` of every condition whose name matches
  `condition` (a shell pattern; default every condition), averaged, with a 95% CI over conditions (Wilson's
  score interval when every value is 0 or 1, e.g. a hit rate; else a bootstrap over conditions);
- a difference between conditions: `condition` (B) minus `baseline` (A) of the measurement `stat` at
  `round` (default: the last round both have), paired on the per-item records when the items match
  (probes.differences); `use = "ci_low"` with `min`, or `"ci_high"` with `max`, gates its direction with a
  conservative bound.

A gate on a run that did not complete every round it was configured for never holds, nor does a gate on a
degenerate measurement (one with nothing to detect, `Measurement.degenerate`; a difference is degenerate
when the measurement is in both conditions): it would hold vacuously."""

from __future__ import annotations

import difflib
import fnmatch
import math
from typing import Annotated, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, model_validator

from probes._api import Measurement, ProbeError
from probes._runner import ProbeResults
from probes.differences import comparable, difference


class GateSpec(BaseModel):
    """What a gate checks (the suite's [[gates]] entry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probe: str
    stat: str
    max: Annotated[float, Strict(), AllowInfNan(False)] | None = Field(None, description="a finite number")
    min: Annotated[float, Strict(), AllowInfNan(False)] | None = Field(None, description="a finite number")
    use: Literal["value", "ci_low", "ci_high"] = "value"
    condition: str | None = None
    baseline: str | None = Field(None, description="gate condition minus this condition (needs condition)")
    round: Annotated[int, Strict()] | None = Field(None, ge=0, le=100,
                                                   description="difference gates: the round (default: the last)")
    across: Literal["mean"] | None = Field(None, description="the mean over the conditions `condition` matches "
                                                             "(a shell pattern; default all), CI over conditions")

    @model_validator(mode="after")
    def _bounded(self) -> GateSpec:
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{bound} must be a finite number, got {value}")
        if self.max is None and self.min is None:
            raise ValueError("a gate needs max or min")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) exceeds max ({self.max})")
        if self.baseline is not None and self.condition is None:
            raise ValueError("a difference gate (baseline) needs the condition it subtracts the baseline from")
        if self.baseline is not None and self.baseline == self.condition:
            raise ValueError("baseline and condition must differ")
        if self.across is not None and self.baseline is not None:
            raise ValueError("a gate across conditions (across) takes no baseline")
        if self.round is not None and self.baseline is None:
            raise ValueError("round applies to difference gates (with baseline) only")
        return self

    def describe(self) -> str:
        bounds = " and ".join(b for b in (f">= {self.min:g}" if self.min is not None else "",
                                          f"<= {self.max:g}" if self.max is not None else "") if b)
        what = self.stat if self.use == "value" else f"{self.stat} ({self.use})"
        if self.across is not None:
            what = f"{what} [{self.across} over {self.condition or 'every condition'}]"
        if self.baseline is not None:
            at = "" if self.round is None else f" at round {self.round}"
            what = f"{what} [{self.condition} − {self.baseline}{at}]"
        return f"{self.probe}: {what} {bounds}"


class GateResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gate: GateSpec
    condition: str
    passed: bool
    observed: float | None
    measurement: Measurement
    message: str


def find_measurement(measurements: list[Measurement], probe: str, stat: str) -> Measurement:
    """The measurement `stat` of `probe`; a ProbeError naming the nearest valid name when absent."""
    of_probe = [m for m in measurements if m.probe == probe]
    for m in of_probe:
        if m.name == stat:
            return m
    names = [m.name for m in of_probe]
    if not names:
        raise ProbeError(f"gate on probe {probe!r}: the probe produced no measurements (was it run?)")
    near = difflib.get_close_matches(stat, names, n=1, cutoff=0.4)
    hint = f"did you mean {near[0]!r}?" if near else f"its measurements: {', '.join(names)}"
    raise ProbeError(f"gate on {probe}: no measurement {stat!r}; {hint}")


def difference_measurement(gate: GateSpec, a: ProbeResults, b: ProbeResults, seed: int = 0) -> Measurement:
    """The condition difference a difference gate bounds, as a Measurement (B - A, paired where possible)."""
    ma, mb = find_measurement(a.measurements, gate.probe, gate.stat), find_measurement(b.measurements, gate.probe,
                                                                                        gate.stat)
    info = {p.id: p for p in a.probes}.get(gate.probe), {p.id: p for p in b.probes}.get(gate.probe)
    why = comparable(*info)
    if why:
        raise ProbeError(f"gate on {gate.probe} {gate.stat} [{gate.condition} − {gate.baseline}]: {why}")
    rounds = sorted(set(a.rounds) & set(b.rounds))
    r = gate.round if gate.round is not None else (rounds[-1] if rounds else None)
    if r not in rounds:
        raise ProbeError(f"gate on {gate.probe} {gate.stat}: round {r} is not a round of both {gate.baseline} "
                         f"and {gate.condition} (both have {rounds})")
    d = difference(ma, mb, r, *info, seed=seed)
    sides = {name: m.degenerate for name, m in ((gate.baseline, ma), (gate.condition, mb)) if m.degenerate}
    degenerate = degenerate_difference({gate.baseline or "A": ma, gate.condition or "B": mb})
    return Measurement(probe=gate.probe, name=f"{gate.stat} [{gate.condition} − {gate.baseline}]", value=d.value,
                       ci_low=d.ci_low, ci_high=d.ci_high, round=r, p_value=d.p_value, degenerate=degenerate,
                       details={"method": d.method, "n_items": d.n_items, "a": d.a, "b": d.b,
                                "baseline": gate.baseline, "condition": gate.condition, "degenerate_in": sides})


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (95% by default)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def across_measurement(gate: GateSpec, results: dict[str, ProbeResults], seed: int = 0) -> Measurement:
    """The mean of `gate.stat` over the conditions `gate.condition` matches, with its CI over conditions."""
    from probes import stats

    names = [c for c in results if fnmatch.fnmatchcase(c, gate.condition or "*")]
    if not names:
        raise ProbeError(f"gate on {gate.probe} {gate.stat}: no condition matches {gate.condition!r}")
    found = {c: find_measurement(results[c].measurements, gate.probe, gate.stat) for c in names}
    values = {c: m.value for c, m in found.items()}
    missing = [c for c, m in found.items() if m.value is None or m.degenerate is not None]
    details = {"values": values, "conditions": len(names)}
    if missing:
        return Measurement(probe=gate.probe, name=f"{gate.stat} [mean]", value=None, details=details,
                           degenerate=f"undefined or degenerate in {', '.join(missing)}")
    x = [float(v) for v in values.values()]  # type: ignore[arg-type]
    mean = sum(x) / len(x)
    if set(x) <= {0.0, 1.0}:
        low, high = wilson_interval(int(sum(x)), len(x))
        details["method"] = "Wilson score interval"
    else:
        est = stats.mean_ci(x, seed=seed)
        low, high = est.ci_low, est.ci_high
        details["method"] = "bootstrap over conditions"
    return Measurement(probe=gate.probe, name=f"{gate.stat} [mean over {len(x)}]", value=mean, ci_low=low,
                       ci_high=high, details=details)


def degenerate_difference(sides: dict[str, Measurement]) -> str | None:
    """Why a difference between two runs' measurement ({label: measurement}) has nothing to detect: the
    measurement is degenerate in both (one side alone still leaves the other's variation to compare)."""
    if not sides or any(m.degenerate is None for m in sides.values()):
        return None
    return "in both (" + "; ".join(f"{label}: {m.degenerate}" for label, m in sides.items()) + ")"


def evaluate(gate: GateSpec, condition: str, measurements: list[Measurement] | Measurement,
             incomplete: str | None = None) -> GateResult:
    """The gate's verdict on one condition's measurements (or on a difference measurement); a degenerate
    measurement, or `incomplete` (why the run did not finish), makes it fail whatever the number."""
    m = measurements if isinstance(measurements, Measurement) else find_measurement(measurements, gate.probe,
                                                                                     gate.stat)
    observed = getattr(m, gate.use)
    ci = "" if m.ci_low is None else f" (95% CI [{m.ci_low:.4g}, {m.ci_high:.4g}])"
    shown = f"{gate.use} {observed:.4g}" if observed is not None else f"{gate.use} undefined"
    if observed is None:
        passed, why = False, "the measurement is undefined on this run, so the gate cannot hold"
    else:
        low_ok = gate.min is None or observed >= gate.min
        high_ok = gate.max is None or observed <= gate.max
        passed = low_ok and high_ok
        why = "holds" if passed else ("below min" if not low_ok else "above max")
    if m.degenerate is not None:
        passed, why = False, f"{m.name} is degenerate: {m.degenerate}, so the gate cannot hold"
    if incomplete:
        passed, why = False, f"the run is incomplete ({incomplete}), so no gate on it holds"
    value = "" if m.value is None else f"value {m.value:.4g}"
    method = f", {m.details['method']}" if "method" in m.details else ""
    where = "" if gate.baseline or gate.across else f"[{condition}] "  # these name their conditions themselves
    message = f"{where}{gate.describe()}: {why}; {shown if gate.use != 'value' else value}{ci}{method}"
    return GateResult(gate=gate, condition=condition, passed=passed, observed=observed, measurement=m,
                      message=message)


class SuiteOutcome(BaseModel):
    """suite.json: the measurements of every condition and the verdict of every gate."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    suite: str
    seeds: list[int]
    conditions: dict[str, ProbeResults]
    gates: list[GateResult]
    recomputed: list[str] = []  # probes whose recorded results were stale and were recomputed, with why
    incomplete: dict[str, str] = {}  # condition -> why its runs did not finish (a failed round, missing rounds)
    checksum: str | None = None  # sha256 of the rest (harness.integrity)

    @property
    def passed(self) -> bool:
        return not self.incomplete and all(g.passed for g in self.gates)
