"""The probe API: `Measurement` (what a probe returns), `Probe` (what a probe is), and the registry.

A probe is a class whose metadata are class attributes and whose docstring is its description (as in
garak); `@probe` registers it (as inspect_ai's decorators do); other packages ship probes through the
entry-point group `loopprobe.probes`. A probe reads a `RunView` and returns measurements: it never runs the
loop and never writes anything.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from probes import stats
from probes._view import RunView

Concern = Literal["increase", "decrease", "either", "none"]
ENTRY_POINT_GROUP = "loopprobe.probes"


class _Automatic:
    """The default of `Probe.measurement(degenerate=...)`: decide by the automatic rule."""

    def __repr__(self) -> str:
        return "AUTOMATIC"


AUTOMATIC: Final = _Automatic()


class SeriesPoint(BaseModel):
    """A measurement's value at one round; `items` (not in probes.json: its sidecar) are the per-item values
    it was computed from, when it came from a registered statistic."""

    model_config = ConfigDict(extra="forbid")

    round: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    _items: stats.ItemValues | None = PrivateAttr(None)

    @classmethod
    def of(cls, r: int, est: stats.Estimate) -> SeriesPoint:
        """The point of round r of an estimate (non-finite numbers become None), keeping its item values."""
        point = cls(round=r, value=_finite(est.value), ci_low=_finite(est.ci_low), ci_high=_finite(est.ci_high))
        point._items = est.items
        return point

    @property
    def items(self) -> stats.ItemValues | None:
        return self._items


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def constant_columns(arrays: Iterable[np.ndarray]) -> tuple[float, ...] | None:
    """The one number each column holds across every row of every array ([n] or [n, c], same c), or None when a
    column holds two or more, when there are no rows, or on a non-finite value (NaN is "undefined", not a
    value that could be constant)."""
    seen: np.ndarray | None = None
    for a in arrays:
        a = np.asarray(a, dtype=float)
        if a.size == 0:
            continue
        a = a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)
        if not np.isfinite(a).all() or (seen is not None and seen.shape != a.shape[1:]):
            return None
        if seen is None:
            seen = a[0]
        if not (a == seen).all():
            return None
    return None if seen is None else tuple(float(x) for x in seen)


def unvarying(values_by_round: Mapping[int, np.ndarray | stats.ItemValues], what: str = "item",
              rows: str = "items") -> str | None:
    """The reason a quantity has nothing to detect, or None: every item holds the same number (per column) in
    every round given, e.g. "every item is 0 in every round (120 items, rounds 0-2)". Each value is a round's
    per-item array ([n] or [n, c], `rows` naming its n rows) or its ItemValues; negative rounds (unknown) are
    left out of the span."""
    arrays = {r: v.columns if isinstance(v, stats.ItemValues) else np.asarray(v, dtype=float)
              for r, v in values_by_round.items()}
    found = constant_columns(arrays.values())
    if found is None:
        return None
    values = [f"{x + 0.0:g}" for x in found]  # + 0.0: no "-0"
    shown = f"is {values[0]}" if len(set(values)) == 1 else f"has the same values ({', '.join(values)})"
    rounds = sorted(r for r in arrays if r >= 0)
    n = max(len(a) for a in arrays.values())
    span = "" if not rounds else f", round {rounds[0]}" if len(rounds) == 1 else f", rounds {rounds[0]}-{rounds[-1]}"
    return f"every {what} {shown} in every round ({n} {rows}{span})"


def automatic_degenerate(est: stats.Estimate | None, series: list[SeriesPoint], value: float | None,
                         ci_low: float | None, ci_high: float | None, round: int | None = None) -> str | None:
    """The automatic rule (docs/verdicts.md): with per-item records, degenerate when every record (each series
    point's, and the headline's of `round`) holds one number per column, for every item and round; without
    any, when every point with a CI (the headline and the series) has value = ci_low = ci_high, one number
    throughout."""
    records: dict[int, stats.ItemValues] = {p.round: p.items for p in series if p.items is not None}
    if est is not None and est.items is not None and round not in records:
        records[-1] = est.items  # a headline outside the series (it may pair two rounds): no round to name
    if records:
        return unvarying(records)
    points = [(p.value, p.ci_low, p.ci_high) for p in series] + [(value, ci_low, ci_high)]
    bounded = [p for p in points if None not in p]
    if not bounded:
        return None
    found = constant_columns([np.array(bounded, dtype=float).reshape(-1, 1)])
    return None if found is None else f"its value is {found[0]:g} with a zero-width CI in every round"


class Measurement(BaseModel):
    """One number a probe reports, with its 95% CI, its per-round series and the items behind it.

    `p_value` (two-sided, of "value = null") is derived from the CI (stats.p_from_ci) unless a probe sets it.
    `fires_uncorrected` is True when the CI lies wholly on the concerning side of `null` (for "either": off
    `null` on either side). `fires` is the verdict after the false-alarm correction across a run's tested
    measurements (`p_adjusted` <= `q`, on the concerning side), which run_probes applies; before it, and for
    a measurement with an `alarm` (a probe's own rule, which decides both), it equals `fires_uncorrected`.
    A `degenerate` measurement (it has nothing to detect; the reason) is never tested and never fires, and a
    gate on it fails.
    """

    model_config = ConfigDict(extra="forbid")

    probe: str
    name: str = Field(description="measurement name within its probe, e.g. 'test.delta_vs_round0'")
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    round: int | None = Field(None, description="the round the headline value refers to")
    null: float = Field(0.0, description="the value that means 'no effect'")
    concern: Concern = "none"
    alarm: bool | None = Field(None, description="a probe's own verdict where a CI does not apply")
    series: list[SeriesPoint] = []
    evidence: list[str] = Field([], description="ids of the items that drive the value (at most 20)")
    details: dict[str, Any] = {}
    p_value: float | None = Field(None, description="two-sided p of value = null (default: from the CI)")
    p_adjusted: float | None = Field(None, description="p_value adjusted across the run's tested measurements")
    q: float | None = Field(None, description="the level p_adjusted is compared with (set by the correction)")
    degenerate: str | None = Field(None, description="why the measurement has nothing to detect (never tested, "
                                   "never fires, fails every gate); None when it is meaningful")

    fires_uncorrected: bool = Field(False, description="derived: the CI alone excludes null on the concerning side")
    fires: bool = Field(False, description="derived from the corrected p (or the CI, or alarm); never set by hand")
    _items: stats.ItemValues | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _derive_fires(self) -> Measurement:
        if self.p_value is None:
            p = self.details.get("alarm_p") if self.alarm is not None else None
            self.__dict__["p_value"] = p if p is not None else stats.p_from_ci(self.value, self.ci_low, self.ci_high,
                                                                                self.null)
        if self.degenerate is not None:
            raw = False
        elif self.alarm is not None:
            raw = self.alarm
        elif self.value is None or self.ci_low is None or self.ci_high is None:
            raw = False
        else:
            above, below = self.ci_low > self.null, self.ci_high < self.null
            raw = {"increase": above, "decrease": below, "either": above or below, "none": False}[self.concern]
        fires = raw
        if self.degenerate is not None:
            fires = False
        elif self.alarm is not None and self.p_adjusted is not None and self.q is not None:
            fires = self.alarm and self.p_adjusted <= self.q
        elif self.p_adjusted is not None and self.q is not None and self.value is not None:
            side = {"increase": self.value > self.null, "decrease": self.value < self.null,
                    "either": self.value != self.null, "none": False}[self.concern]
            fires = side and self.p_adjusted <= self.q
        self.__dict__["fires_uncorrected"] = raw
        self.__dict__["fires"] = fires
        return self

    @property
    def tested(self) -> bool:
        """Part of the run's family of tests: a p-value and a concerning direction, or an alarm rule that
        states its p-value (for a conjunction of changes, the largest of theirs: an intersection-union test).
        A degenerate measurement is not: it has nothing to test."""
        if self.degenerate is not None:
            return False
        if self.alarm is not None:
            return self.p_value is not None and "alarm_p" in self.details
        return self.concern != "none" and self.p_value is not None

    def items_at(self, r: int | None) -> stats.ItemValues | None:
        """The per-item values behind its value at round r (the series point's, else the headline's)."""
        for p in self.series:
            if p.round == r and p.items is not None:
                return p.items
        return self._items if r == self.round else None

    def item_records(self) -> dict[int, stats.ItemValues]:
        out = {p.round: p.items for p in self.series if p.items is not None}
        if self._items is not None and self.round is not None:
            out.setdefault(self.round, self._items)
        return out


class Probe:
    """Subclass, set the class attributes, write the docstring, implement `measure`."""

    id: ClassVar[str]
    family: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ("samples",)  # which artifacts it reads (documentation and checks)
    # Every measurement name it can produce (gate `stat`s are checked against them before a run); None: not
    # declared, or known only from the data (inspect.task_drift's `<task>.<key>`). `self.measurement` refuses
    # an undeclared name. probes.common.tracked_names(name) gives the three names of `self.tracked(name, ...)`.
    measurements: ClassVar[tuple[str, ...] | None] = None

    class Params(BaseModel):
        """Every probe's parameters; subclass it to add more. `seed` seeds the bootstrap resamples."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        seed: int = Field(0, ge=0, description="bootstrap seed")

    def __init__(self, **params: Any):
        try:
            self.params = self.Params(**params)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(map(str, err["loc"]))
            raise ProbeError(f"probe {self.id}: parameter {where}: {err['msg']}") from None

    @classmethod
    def description(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].replace("\n", " ")

    def measure(self, run: RunView) -> list[Measurement]:
        raise NotImplementedError

    def measurement(self, name: str, value: float | stats.Estimate | None = None, *,
                    degenerate: str | None | _Automatic = AUTOMATIC, **fields: Any) -> Measurement:
        """A Measurement of this probe: the one way a probe makes one. `value` may be an Estimate: its value
        and CI fill the measurement, and its item values become the record of `round` (so compare can pair it).

        `name` must be one of the class's `measurements` when it declares them (a ProbeError otherwise).
        `degenerate`: by default the automatic rule decides (`automatic_degenerate`: every per-item value it
        rests on is one number in every round, or, without records, a constant series of zero-width CIs); a
        probe that knows better passes its own reason, or None to say the measurement is meaningful."""
        declared = type(self).measurements
        if declared is not None and name not in declared:
            raise ProbeError(f"probe {self.id} produced measurement {name!r} that it does not declare in "
                             "`measurements`; add it")
        est, number = (value, _finite(value.value)) if isinstance(value, stats.Estimate) else (None, value)
        if est is not None:
            fields = {"ci_low": _finite(est.ci_low), "ci_high": _finite(est.ci_high), **fields}
        if isinstance(degenerate, _Automatic):
            degenerate = automatic_degenerate(est, fields.get("series") or [], number, fields.get("ci_low"),
                                              fields.get("ci_high"), fields.get("round"))
        m = Measurement(probe=self.id, name=name, value=number, degenerate=degenerate, **fields)
        m._items = est.items if est is not None else None
        return m

    # Resampling helpers: the one way a probe gets its bootstrap seed (Params.seed). With `ids`, and a
    # registered statistic, the estimate keeps its per-item values for the sidecar and for paired comparisons.

    @property
    def seed(self) -> int:
        return self.params.seed

    def bootstrap(self, values, statistic: str | stats.Statistic | None = "mean", *, ids=None,
                  params: dict | None = None) -> stats.Estimate:
        return stats.bootstrap(values, statistic, seed=self.seed, ids=ids, params=params)

    def bootstrap_many(self, values, statistics: dict, *, ids=None) -> dict[str, stats.Estimate]:
        return stats.bootstrap_many(values, statistics, seed=self.seed, ids=ids)

    def mean_ci(self, values, *, ids=None) -> stats.Estimate:
        return stats.mean_ci(values, seed=self.seed, ids=ids)

    def paired_difference(self, before, after, *, ids=None) -> stats.Estimate:
        return stats.paired_difference(before, after, seed=self.seed, ids=ids)

    def tracked(self, name: str, run: RunView, per_item, ids, concern: Concern,
                details: dict | None = None, degenerate: str | None | _Automatic = AUTOMATIC) -> list[Measurement]:
        """A per-item quantity over rounds: its level and paired changes (probes.common.tracked)."""
        from probes.common import tracked

        return tracked(self, name, run, per_item, ids, concern, details=details, degenerate=degenerate)


class ProbeError(Exception):
    """A bad probe id or parameter; the CLI prints it as one line."""


_REGISTRY: dict[str, type[Probe]] = {}
_entry_points_loaded = False


def probe(cls: type[Probe]) -> type[Probe]:
    """Class decorator: register a probe under its `id`."""
    for attr in ("id", "family"):
        if not isinstance(getattr(cls, attr, None), str):
            raise TypeError(f"{cls.__name__} needs a string class attribute {attr!r}")
    if not (cls.__doc__ or "").strip():
        raise TypeError(f"{cls.__name__} needs a docstring: it is the probe's description")
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise TypeError(f"probe id {cls.id!r} is already registered by {_REGISTRY[cls.id].__qualname__}")
    _REGISTRY[cls.id] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    import probes.library  # noqa: F401  (the built-ins register on import)

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()  # a Probe subclass or a module whose import registers its probes
        if isinstance(obj, type) and issubclass(obj, Probe) and obj.id not in _REGISTRY:
            probe(obj)


def registry() -> dict[str, type[Probe]]:
    """Every known probe by id: the built-ins and those of installed packages."""
    _load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def get_probe(probe_id: str) -> type[Probe]:
    known = registry()
    if probe_id not in known:
        import difflib

        near = difflib.get_close_matches(probe_id, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(known)}"
        raise ProbeError(f"unknown probe {probe_id!r}{hint}")
    return known[probe_id]
