"""The probe API: `Measurement` (what a probe returns), `Probe` (what a probe is), and the registry.

A probe is a class whose metadata are class attributes and whose docstring is its description (as in
garak); `@probe` registers it (as inspect_ai's decorators do); other packages ship probes through the
entry-point group `loopprobe.probes`. A probe reads a `RunView` and returns measurements: it never runs the
loop and never writes anything.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from probes._view import RunView

Concern = Literal["increase", "decrease", "either", "none"]
ENTRY_POINT_GROUP = "loopprobe.probes"


class SeriesPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    round: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None


class Measurement(BaseModel):
    """One number a probe reports, with its 95% CI, its per-round series and the items behind it.

    `fires` is True when the CI lies wholly on the concerning side of `null` (for "either": off `null` on
    either side). A measurement without a CI (ci_low is None) fires only through `alarm`.
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

    fires: bool = Field(False, description="derived from the CI, null and concern (or alarm); never set by hand")

    @model_validator(mode="after")
    def _derive_fires(self) -> Measurement:
        if self.alarm is not None:
            fires = self.alarm
        elif self.value is None or self.ci_low is None or self.ci_high is None:
            fires = False
        else:
            above, below = self.ci_low > self.null, self.ci_high < self.null
            fires = {"increase": above, "decrease": below, "either": above or below, "none": False}[self.concern]
        self.__dict__["fires"] = fires
        return self


class Probe:
    """Subclass, set the class attributes, write the docstring, implement `measure`."""

    id: ClassVar[str]
    family: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ("samples",)  # which artifacts it reads (documentation and checks)

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

    def measurement(self, name: str, value: float | None, **fields: Any) -> Measurement:
        """A Measurement of this probe (saves repeating the probe id)."""
        return Measurement(probe=self.id, name=name, value=value, **fields)


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
