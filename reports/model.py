"""The persisted shape of `report.json` (and of what `loopprobe compare --json` writes, in reports.compare).

Every field is documented in docs/report-schema.md. Bump REPORT_SCHEMA_VERSION on any change a reader could
notice (a renamed, removed or retyped field); adding an optional field keeps the version. The report holds
no timestamps and no absolute paths, so the same run gives the same bytes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from probes._api import Concern, SeriesPoint

REPORT_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MeasurementRow(_Model):
    """One probe measurement as a report shows it (probe-specific `details` are left in probes.json)."""

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    round: int | None = None
    null: float = 0.0
    concern: Concern = "none"
    alarm: bool | None = None
    fires: bool = False
    trend: Literal["up", "down", "flat", "none"] = "none"
    series: list[SeriesPoint] = []
    evidence: list[str] = []


class ProbeSummary(_Model):
    id: str
    family: str
    description: str
    params: dict[str, Any] = {}
    headline: str | None = Field(None, description="name of the measurement the one-line summary shows")
    measurements: list[MeasurementRow]

    @property
    def firing(self) -> list[MeasurementRow]:
        return [m for m in self.measurements if m.fires]

    def get(self, name: str | None) -> MeasurementRow | None:
        return next((m for m in self.measurements if m.name == name), None)


class CalibrationBin(_Model):
    low: float
    high: float
    count: int
    mean_confidence: float | None  # None for an empty bin
    accuracy: float | None


class CalibrationRound(_Model):
    round: int
    n_items: int
    ece: float | None
    bins: list[CalibrationBin]


class TransitionMatrix(_Model):
    from_round: int
    to_round: int
    states: list[str]
    counts: list[list[int]]  # counts[i][j]: questions in states[i] at from_round and states[j] at to_round


class HistogramRound(_Model):
    round: int
    counts: list[int]
    mean: float | None
    n: int


class Histogram(_Model):
    quantity: str
    unit: str
    edges: list[float]  # len(counts) + 1 bin edges, shared by every round
    rounds: list[HistogramRound]


class ItemRound(_Model):
    round: int
    majority: int | None = None  # majority answer of the sampled decodings (None: nothing parsed)
    vote_share: float | None = None  # votes for the majority / all samples
    correct: bool | None = None  # majority answer == truth
    greedy: int | None = None  # greedy answer (test and ood items)
    rationale: str | None = None  # one completion that gave the majority answer
    nll_per_token: float | None = None  # reference texts only


class ItemTrace(_Model):
    """One item behind an alarm, followed through every round."""

    id: str
    split: Literal["pool", "test", "ood", "reference", "unknown"]
    question: str | None = None
    truth: int | None = None
    rounds: list[ItemRound] = []


class Alarm(_Model):
    probe: str
    measurement: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    null: float = 0.0
    concern: Concern = "none"
    reason: str
    items: list[str] = []  # ids into Section.items, in the probe's evidence order


class Section(_Model):
    """One run, or one condition of a suite (its seeds pooled)."""

    name: str
    runs: list[str]
    rounds: list[int]
    settings: dict[str, Any] = {}
    probes: list[ProbeSummary] = []
    calibration: list[CalibrationRound] = []
    transitions: list[TransitionMatrix] = []
    reference_nll: Histogram | None = None
    answer_entropy: Histogram | None = None
    alarms: list[Alarm] = []
    items: list[ItemTrace] = []

    @property
    def families(self) -> list[str]:
        return sorted({p.family for p in self.probes})


class GateRow(_Model):
    condition: str
    probe: str
    stat: str
    gate: str  # the gate in words, e.g. "cw.rate: rate.delta_vs_round0 <= 0.05"
    use: Literal["value", "ci_low", "ci_high"]
    min: float | None = None
    max: float | None = None
    passed: bool
    observed: float | None
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    message: str


class Verdict(_Model):
    status: Literal["passed", "failed", "no_gates"]
    gates: int
    gates_failed: int
    measurements: int
    firing: int


class Report(_Model):
    schema_version: int = REPORT_SCHEMA_VERSION
    tool: str = "loopprobe"
    kind: Literal["run", "condition", "suite"]
    name: str
    verdict: Verdict
    gates: list[GateRow] = []
    sections: list[Section]
