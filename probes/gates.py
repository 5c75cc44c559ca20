"""Gates turn measurements into a verdict: each holds when a measurement (its value or a CI bound) lies
within the bounds a suite sets."""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from probes._api import Measurement, ProbeError
from probes._runner import ProbeResults


class GateSpec(BaseModel):
    """What a gate checks (the suite's [[gates]] entry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probe: str
    stat: str
    max: float | None = None
    min: float | None = None
    use: Literal["value", "ci_low", "ci_high"] = "value"
    condition: str | None = None

    @model_validator(mode="after")
    def _bounded(self) -> GateSpec:
        if self.max is None and self.min is None:
            raise ValueError("a gate needs max or min")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) exceeds max ({self.max})")
        return self

    def describe(self) -> str:
        bounds = " and ".join(b for b in (f">= {self.min:g}" if self.min is not None else "",
                                          f"<= {self.max:g}" if self.max is not None else "") if b)
        what = self.stat if self.use == "value" else f"{self.stat} ({self.use})"
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


def evaluate(gate: GateSpec, condition: str, measurements: list[Measurement]) -> GateResult:
    m = find_measurement(measurements, gate.probe, gate.stat)
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
    value = "" if m.value is None else f"value {m.value:.4g}"
    message = f"[{condition}] {gate.describe()}: {why}; {shown if gate.use != 'value' else value}{ci}"
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

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)
