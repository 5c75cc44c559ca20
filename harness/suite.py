"""Suite files: the conditions of a loop, the probes to run and the gates to hold, in one TOML file.

    [suite]      name, description, seeds (several seeds run each and pool the statistics)
    [domain]     the world and its planted errors        (name = "arithmetic" | "word_problems")
    [model]      the backend and its architecture        (backend = "tiny" | "hf"; harness.models)
    [base]       how the base model is trained           (harness.config.BaseTrainConfig)
    [loop]       amplify / select / distill, data policy (harness.config.LoopConfig)
    [probes]     `"probe.id" = {param = value}`; absent: the whole library with defaults
    [[inspect]]  task = "module:function", args: inspect-ai Tasks run against every round's model
    [[gates]]    probe, stat (a measurement name), max and/or min, use = value | ci_low | ci_high
    [[conditions]]  name plus overrides of domain/base/loop: arms compared side by side

Every problem is reported as one line naming the file, the key path, what is wrong and, for unknown names,
the nearest valid choice.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.config import BaseTrainConfig, DomainConfig, InspectTaskSpec, LoopConfig, ModelConfig, RunConfig
from harness.domains.arithmetic import ArithmeticConfig
from harness.domains.word_problems import WordProblemsConfig
from harness.models.hf.config import HFConfig
from harness.models.tiny.model import TinyConfig
from probes.gates import GateSpec


class SuiteError(Exception):
    """A suite that cannot be used; str() is the one-line message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SuiteInfo(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    seeds: list[int] = Field([0], min_length=1, description="each seed is run; probes pool over seeds")
    threads: int = Field(1, ge=1)
    size: Literal["small", "large"] = Field("small", description="large: GPU advised (real pretrained models)")
    correction: Literal["bh", "holm", "none"] = Field(
        "bh", description="false-alarm control across a run's tested measurements: bh (Benjamini-Hochberg), "
                          "holm (Holm-Bonferroni) or none")
    q: float = Field(0.05, gt=0.0, lt=1.0, strict=True,
                     description="level of the corrected test (bh: false discovery rate; holm: family-wise error)")
    expected_seconds: int | None = Field(None, ge=1, description="measured runtime on a 2-core machine with a cold "
                                         "base-model cache; `loopprobe verify-suites --budget` plans with it")

    @model_validator(mode="after")
    def _distinct(self) -> SuiteInfo:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if any(s < 0 for s in self.seeds):
            raise ValueError("seeds must be >= 0")
        return self


_DOMAINS: dict[str, type[BaseModel]] = {"arithmetic": ArithmeticConfig, "word_problems": WordProblemsConfig}
_BACKENDS: dict[str, type[BaseModel]] = {"tiny": TinyConfig, "hf": HFConfig}


class Overrides(_Strict):
    domain: dict[str, Any] = {}
    base: dict[str, Any] = {}
    loop: dict[str, Any] = {}


class Condition(Overrides):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


class Suite(_Strict):
    suite: SuiteInfo
    domain: DomainConfig = ArithmeticConfig()
    model: ModelConfig = TinyConfig()
    base: BaseTrainConfig = BaseTrainConfig()
    loop: LoopConfig = LoopConfig()
    inspect: list[InspectTaskSpec] = []
    probes: dict[str, dict[str, Any]] | None = None
    gates: list[GateSpec] = []
    conditions: list[Condition] = []

    @model_validator(mode="before")
    @classmethod
    def _default_kinds(cls, data: Any) -> Any:
        """`[domain]` without a name is arithmetic, `[model]` without a backend is tiny."""
        if isinstance(data, dict):
            for section, key, default in (("domain", "name", "arithmetic"), ("model", "backend", "tiny")):
                if isinstance(data.get(section), dict) and key not in data[section]:
                    data = {**data, section: {key: default, **data[section]}}
        return data

    @model_validator(mode="after")
    def _conditions_distinct(self) -> Suite:
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be distinct, got {names}")
        return self

    def condition_names(self) -> list[str]:
        return [c.name for c in self.conditions] or ["default"]

    def run_config(self, condition: str, seed: int) -> RunConfig:
        """The resolved RunConfig of one condition and seed."""
        over = next((c for c in self.conditions if c.name == condition), Overrides())
        return RunConfig(seed=seed, threads=self.suite.threads,
                         domain=type(self.domain)(**{**self.domain.model_dump(), **over.domain}),
                         model=self.model,
                         base=BaseTrainConfig(**{**self.base.model_dump(), **over.base}),
                         loop=LoopConfig(**{**self.loop.model_dump(), **over.loop}), inspect=self.inspect)

    def probe_selection(self) -> dict[str, dict[str, Any]]:
        from probes import registry

        return self.probes if self.probes is not None else {pid: {} for pid in registry()}


# ---------------------------------------------------------------- loading with one-line errors

_SECTION_MODELS: dict[str, type[BaseModel]] = {"suite": SuiteInfo, "base": BaseTrainConfig, "loop": LoopConfig,
                                                "inspect": InspectTaskSpec,
                                                "gates": GateSpec, "conditions": Condition}


def _nearest(word: str, choices) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {near[0]!r}?" if near else f"; valid: {', '.join(sorted(choices))}"


def _describe(err: dict) -> str:
    loc = [str(p) for p in err["loc"]]
    tagged = {"domain": _DOMAINS, "model": _BACKENDS}
    kinds = tagged.get(loc[0]) if loc else None
    if kinds is not None and err["type"] == "union_tag_invalid":
        key = "name" if loc[0] == "domain" else "backend"
        return f"key {loc[0]}.{key}: unknown {key} {err['input'].get(key)!r}{_nearest(str(err['input'].get(key)), kinds)}"
    section_model = None
    if kinds is not None and len(loc) > 1 and loc[1] in kinds:  # a discriminated union names its member
        section_model = kinds[loc[1]]
        loc = [loc[0], *loc[2:]]
    where = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        section = loc[0] if loc else ""
        model = Suite if len(loc) == 1 else section_model or _SECTION_MODELS.get(section)
        fields = list(model.model_fields) if model is not None else []
        return f"key {where}: unknown key" + (_nearest(loc[-1], fields) if fields else "")
    if err["type"] == "missing":
        return f"key {where}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"key {where}: {msg} (got {err['input']!r})" if not isinstance(err["input"], dict) else f"key {where}: {msg}"


def _check_references(suite: Suite) -> None:
    """Probe ids, probe parameters, gate targets and condition overrides: the parts pydantic can't see."""
    from probes import ProbeError, get_probe, registry

    selection = suite.probe_selection()
    for pid, params in selection.items():
        try:
            get_probe(pid)(**params)
        except ProbeError as e:
            msg = str(e).replace(f"probe {pid}: ", "")
            raise SuiteError(f"key probes.{pid}: {msg}") from None
    for i, gate in enumerate(suite.gates):
        if gate.probe not in registry():
            raise SuiteError(f"key gates.{i}.probe: unknown probe {gate.probe!r}{_nearest(gate.probe, registry())}")
        if gate.probe not in selection:
            raise SuiteError(f"key gates.{i}.probe: probe {gate.probe!r} is gated but not run; add it to [probes]")
        for key in ("condition", "baseline"):
            name = getattr(gate, key)
            if name is not None and name not in suite.condition_names():
                raise SuiteError(f"key gates.{i}.{key}: unknown condition {name!r}"
                                 f"{_nearest(name, suite.condition_names())}")
        if gate.round is not None and gate.round > max(suite.run_config(c, 0).loop.rounds
                                                       for c in (gate.condition, gate.baseline)):
            raise SuiteError(f"key gates.{i}.round: round {gate.round} is beyond the conditions' rounds")
    sections = {"domain": (type(suite.domain), suite.domain.model_dump()),
                "base": (BaseTrainConfig, suite.base.model_dump()), "loop": (LoopConfig, suite.loop.model_dump())}
    for i, cond in enumerate(suite.conditions):
        for section, (model, defaults) in sections.items():
            given = getattr(cond, section)
            try:
                model(**{**defaults, **given})
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(map(str, ("conditions", i, section, *err["loc"])))
                if err["type"] == "extra_forbidden":
                    raise SuiteError(f"key {where}: unknown key{_nearest(str(err['loc'][-1]), model.model_fields)}"
                                     ) from None
                raise SuiteError(_describe({**err, "loc": ("conditions", i, section, *err["loc"])})) from None


def parse_suite(text: str, source: str = "<suite>") -> Suite:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"{source}: not valid TOML: {e}") from None
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise SuiteError(f"{source}: {_describe(e.errors()[0])}") from None
    try:
        _check_references(suite)
    except SuiteError as e:
        raise SuiteError(f"{source}: {e}") from None
    return suite


def load_suite(path: Path | str) -> Suite:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SuiteError(f"{path}: cannot read ({e.strerror}); pass a suite file such as suites/smoke.toml") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a text file; a suite is a UTF-8 TOML file") from None
    return parse_suite(text, str(path))
