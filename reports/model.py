"""The persisted shape of `report.json` (and of what `loopprobe compare --json` writes, in reports.compare).

Every field is documented in docs/report-schema.md. Bump REPORT_SCHEMA_VERSION on any change a reader could
notice (a renamed, removed or retyped field); adding an optional field keeps the version. The report holds
no timestamps and no absolute paths, so the same run gives the same bytes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from probes import Concern, SeriesPoint

REPORT_SCHEMA_VERSION = 2  # 2: answers and truths are the domain's canonical strings


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
    fires: bool = False  # after the false-alarm correction across the section's tested measurements
    fires_uncorrected: bool = False
    p_value: float | None = None
    p_adjusted: float | None = None
    degenerate: str | None = None  # why it has nothing to detect (never fires); None: meaningful
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

    @property
    def degenerate(self) -> list[MeasurementRow]:
        return [m for m in self.measurements if m.degenerate is not None]

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
    majority: str | None = None  # majority answer of the sampled decodings (None: nothing parsed)
    vote_share: float | None = None  # votes for the majority / all samples
    correct: bool | None = None  # majority answer == truth
    greedy: str | None = None  # greedy answer (test and ood items)
    rationale: str | None = None  # one completion that gave the majority answer
    nll_per_token: float | None = None  # reference texts only


class ItemTrace(_Model):
    """One item behind an alarm, followed through every round."""

    id: str
    split: Literal["pool", "test", "ood", "reference", "unknown"]
    question: str | None = None
    truth: str | None = None
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


Direction = Literal["up", "down", "flat"]


class Change(_Model):
    """A paired change (last round minus round 0) as the diagnosis and the headlines read it."""

    probe: str
    measurement: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    direction: Direction | None = None  # up: CI above 0; down: CI below 0; flat: CI contains 0; None: no CI
    degenerate: str | None = None  # why it has nothing to detect (then direction is None)


class Diagnosis(_Model):
    """What happened to a section, by the first rule of reports.diagnosis.RULES that applies."""

    rule: str
    severity: Literal["concern", "good", "neutral", "unknown"]
    explanation: str  # one sentence quoting the changes (with 95% CIs) the rule used
    from_round: int | None = None
    to_round: int | None = None
    evidence: list[Change] = []  # the measurements the explanation quotes
    also: list[str] = []  # later rules whose conditions hold as well
    not_checked: list[str] = []  # rules that could not be checked: a measurement they need is missing


class HeadlineTrajectory(_Model):
    """One of the five headline metrics, per round with 95% CIs, and its change since round 0."""

    metric: Literal["test_accuracy", "ood_accuracy", "confident_wrong_rate", "reference_nll", "answer_entropy"]
    label: str
    probe: str
    measurement: str
    unit: str = ""
    series: list[SeriesPoint] = []
    change: Change | None = None


class PanelExample(_Model):
    """One item of a transition list, as each of the two sides answered it."""

    id: str
    question: str | None = None
    truth: str | None = None
    answer_a: str | None = None
    answer_b: str | None = None
    share_a: float | None = None  # vote share of the majority (pool items only)
    share_b: float | None = None
    rationale_a: str | None = None
    rationale_b: str | None = None


class PanelTest(_Model):
    """Greedy decodings of the test split, paired by question id: who went right->wrong and wrong->right."""

    n_items: int
    accuracy_a: float | None
    accuracy_b: float | None
    right_to_wrong: int
    wrong_to_right: int
    mcnemar_p: float
    right_to_wrong_examples: list[PanelExample] = []
    wrong_to_right_examples: list[PanelExample] = []


class PanelPool(_Model):
    """Pool questions, paired by id: who became confident-wrong and who stopped being so."""

    n_items: int
    confident_share: float  # harness.summary.CONFIDENT_SHARE
    confident_wrong_a: int
    confident_wrong_b: int
    became: int
    stopped: int
    mcnemar_p: float
    became_examples: list[PanelExample] = []
    stopped_examples: list[PanelExample] = []


class Panel(_Model):
    """A against B on the items both hold: round r-1 against round r of one run, or two conditions at a round."""

    label_a: str
    label_b: str
    round_a: int
    round_b: int
    test: PanelTest | None = None  # None: a side has no greedy test decodings, or they share no item
    pool: PanelPool | None = None


class Section(_Model):
    """One run, or one condition of a suite (its seeds pooled)."""

    name: str
    runs: list[str]
    rounds: list[int]
    settings: dict[str, Any] = {}
    diagnosis: Diagnosis | None = None
    headlines: list[HeadlineTrajectory] = []
    panels: list[Panel] = []
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
    degenerate: str | None = None  # the gated measurement has nothing to detect (the gate fails), why


class Verdict(_Model):
    status: Literal["passed", "failed", "no_gates"]
    gates: int
    gates_failed: int
    measurements: int
    firing: int  # after the false-alarm correction
    tested: int = 0  # measurements in the corrected family (a concern and a p-value, or an alarm with one)
    firing_uncorrected: int = 0  # of the tested, those whose CI alone excludes the null
    degenerate: int = 0  # measurements with nothing to detect (never tested, never firing)
    correction: str = ""  # "k of n fire (BH, q ≤ 0.05)"
    incomplete: list[str] = []  # sections whose runs did not complete every configured round, with why
    stalled: list[str] = []  # rounds whose training set was empty (status no_update): the model did not change


class Report(_Model):
    schema_version: int = REPORT_SCHEMA_VERSION
    tool: str = "loopprobe"
    kind: Literal["run", "condition", "suite"]
    name: str
    recomputed: list[str] = []  # probes whose recorded results were stale and were recomputed, with why
    verdict: Verdict
    gates: list[GateRow] = []
    sections: list[Section]
