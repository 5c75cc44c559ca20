"""Suite files: the conditions of a loop, the probes to run and the gates to hold, in one TOML file.

    [suite]      name, description, seeds (several seeds run each and pool the statistics)
    [domain]     the world and its planted errors        (name = a registered domain, e.g. "arithmetic")
    [model]      the backend and its architecture        (backend = a registered backend: "tiny" | "hf")
    [base]       how the base model is trained           (harness.config.BaseTrainConfig)
    [loop]       amplify / select / distill, data policy (harness.config.LoopConfig)
    [probes]     the library plus `load` (files, modules), `include`/`exclude`, `"probe.id" = {param = value}`
    [[inspect]]  task = "module:function", args: inspect-ai Tasks run against every round's model
    [[gates]]    probe, stat (a measurement name), max and/or min, use = value | ci_low | ci_high
    [[conditions]]  name plus overrides of domain/base/loop: arms compared side by side

Every problem is reported as one line naming the file, the key path, what is wrong and, for unknown names,
the nearest valid choice.
"""

from __future__ import annotations

import difflib
import fnmatch
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    model_validator,
)

from harness.app.suite_probes import ProbesSection, add_cli_options, gate_stat_problem, parameter_problem, selection
from harness.bounds import MAX_SEED, MAX_THREADS, Float, Int
from harness.config import (
    BaseTrainConfig,
    DomainConfig,
    InspectTaskSpec,
    LoopConfig,
    ModelConfig,
    RunConfig,
    context_problem,
    strategy_problem,
)
from harness.domains.arithmetic import ArithmeticConfig
from harness.models.tiny.config import TinyConfig
from harness.registry import registered
from probes.gates import GateSpec


class SuiteError(Exception):
    """A suite that cannot be used; str() is the one-line message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SuiteInfo(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    seeds: list[Annotated[int, Strict(), Field(le=MAX_SEED)]] = Field(
        [0], min_length=1, max_length=100, description="each seed is run; probes pool over seeds (at most 100 "
                                                       "seeds, each in [0, 2**32 - 1])")
    threads: Int = Field(1, ge=1, le=MAX_THREADS)
    size: Literal["small", "large"] = Field("small", description="large: GPU advised (real pretrained models)")
    correction: Literal["bh", "holm", "none"] = Field(
        "bh", description="false-alarm control across a run's tested measurements: bh (Benjamini-Hochberg), "
                          "holm (Holm-Bonferroni) or none")
    q: Float = Field(0.05, gt=0.0, lt=1.0,
                     description="level of the corrected test (bh: false discovery rate; holm: family-wise error)")
    expected_seconds: Int | None = Field(None, ge=1, le=10**7, description="measured runtime on a 2-core machine "
                                         "with a cold base-model cache; `loopprobe verify-suites --budget` plans "
                                         "with it")
    max_hours: Float = Field(24.0, gt=0, le=8760, description="refuse to start when the cost estimate "
                             "(harness.app.cost) exceeds this many hours (`loopprobe run --force` runs anyway)")

    @model_validator(mode="after")
    def _distinct(self) -> SuiteInfo:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if any(s < 0 for s in self.seeds):
            raise ValueError("seeds must be >= 0")
        return self


_DOMAINS: dict[str, type[BaseModel]] = {name: e.obj.config_class for name, e in registered("domain").items()}
_BACKENDS: dict[str, type[BaseModel]] = {name: e.obj.config_class for name, e in registered("backend").items()}


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
    inspect: list[InspectTaskSpec] = Field([], max_length=100)
    probes: ProbesSection | None = None
    gates: list[GateSpec] = Field([], max_length=1000)
    conditions: list[Condition] = Field([], max_length=100, description="at most 100")
    _base: Path = PrivateAttr(default_factory=Path.cwd)  # the suite file's folder: probes.load is relative to it
    _gate_problems: dict[int, str] = PrivateAttr(default_factory=dict)  # lenient loading: index -> why

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

    def run_config(self, condition: str | None, seed: int) -> RunConfig:
        """The resolved RunConfig of one condition (None: no overrides) and seed."""
        over = next((c for c in self.conditions if c.name == condition), Overrides())
        return RunConfig(seed=seed, threads=self.suite.threads,
                         domain=type(self.domain)(**{**self.domain.model_dump(), **over.domain}),
                         model=self.model,
                         base=BaseTrainConfig(**{**self.base.model_dump(), **over.base}),
                         loop=LoopConfig(**{**self.loop.model_dump(), **over.loop}), inspect=self.inspect)

    def probe_selection(self) -> dict[str, dict[str, Any]]:
        """{probe id: parameters}: the library plus what `[probes]` loads and names (harness.app.suite_probes)."""
        return selection(self.probes, self._base)

    @property
    def gate_problems(self) -> dict[int, str]:
        """Gates that cannot be evaluated (index -> one-line reason), kept instead of refused when the suite
        was loaded with `lenient_gates` (the pytest plugin fails just those items)."""
        return dict(self._gate_problems)


# ---------------------------------------------------------------- loading with one-line errors

_SECTION_MODELS: dict[str, type[BaseModel]] = {"suite": SuiteInfo, "base": BaseTrainConfig, "loop": LoopConfig,
                                                "inspect": InspectTaskSpec, "probes": ProbesSection,
                                                "gates": GateSpec, "conditions": Condition}


def _nearest(word: str, choices) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {near[0]!r}?" if near else f"; valid: {', '.join(sorted(choices))}"


def _show(value: Any, limit: int = 60) -> str:
    """A short repr of a value a suite gave (a huge integer or a long list is cut, never printed whole)."""
    try:
        text = repr(value)
    except ValueError:  # an integer beyond Python's str() digit limit
        return "an integer of more than 4300 digits"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _key(part: Any) -> str:
    """One part of a key path as the message shows it (escaped, and cut when long)."""
    text = _one_line(str(part))
    return text if len(text) <= 40 else f"{text[:40]}..."


def _one_line(message: str) -> str:
    """The message with every line break and unprintable character escaped (keys and values are the
    suite's own text, which may hold anything)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def _field_names() -> set[str]:
    models: list[type[BaseModel]] = [SuiteInfo, BaseTrainConfig, LoopConfig, GateSpec, *_DOMAINS.values(),
                                     *_BACKENDS.values()]
    return {name for m in models for name in m.model_fields}


def _describe(err: Mapping[str, Any]) -> str:
    loc = [_key(p) for p in err["loc"]]
    tagged = {"domain": _DOMAINS, "model": _BACKENDS}
    kinds = tagged.get(loc[0]) if loc else None
    if kinds is not None and err["type"] == "union_tag_invalid":
        key = "name" if loc[0] == "domain" else "backend"
        tag = err["input"].get(key)
        return f"key {loc[0]}.{key}: unknown {key} {_show(tag)}{_nearest(str(tag), kinds)}"
    section_model = None
    if kinds is not None and len(loc) > 1 and loc[1] in kinds:  # a discriminated union names its member
        section_model = kinds[loc[1]]
        loc = [loc[0], *loc[2:]]
    if err["type"] == "extra_forbidden":
        where = ".".join(loc) or "(top level)"
        section = loc[0] if loc else ""
        model = Suite if len(loc) == 1 else section_model or _SECTION_MODELS.get(section)
        fields = list(model.model_fields) if model is not None else []
        return f"key {where}: unknown key" + (_nearest(loc[-1], fields) if fields else "")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("int_type", "float_type") and isinstance(err["input"], bool | str):
        kind = "true/false" if isinstance(err["input"], bool) else "a string (write numbers without quotes)"
        msg = f"{'an integer' if err['type'] == 'int_type' else 'a number'} is needed, not {kind}"
    head, sep, rest = msg.partition(": ")
    named = err["type"] == "value_error" and bool(sep) and head in _field_names()
    if named:  # a model's own check that names the key it is about ("pool_size: ...")
        loc, msg = [*loc, head], rest
    where = ".".join(loc) or "(top level)"
    if err["type"] == "missing":
        return f"key {where}: required key is missing"
    if named or isinstance(err["input"], dict):
        return f"key {where}: {msg}"
    return f"key {where}: {msg} (got {_show(err['input'])})"


def _check_conditions(suite: Suite) -> None:
    sections: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
        "domain": (type(suite.domain), suite.domain.model_dump()),
        "base": (BaseTrainConfig, suite.base.model_dump()), "loop": (LoopConfig, suite.loop.model_dump())}
    for i, cond in enumerate(suite.conditions):
        for section, (model, defaults) in sections.items():
            given = getattr(cond, section)
            try:
                model(**{**defaults, **given})
            except ValidationError as e:
                err = e.errors()[0]
                if err["type"] == "extra_forbidden":
                    where = ".".join(map(str, ("conditions", i, section, *err["loc"])))
                    raise SuiteError(f"key {where}: unknown key{_nearest(str(err['loc'][-1]), model.model_fields)}"
                                     ) from None
                raise SuiteError(_describe({**err, "loc": ("conditions", i, section, *err["loc"])})) from None
    runs: Sequence[tuple[int | None, Condition | None]] = list(enumerate(suite.conditions)) or [(None, None)]
    for index, condition in runs:
        over = condition or Overrides()
        domain = type(suite.domain)(**{**suite.domain.model_dump(), **over.domain})
        loop = LoopConfig(**{**suite.loop.model_dump(), **over.loop})
        problem = strategy_problem(domain, loop) or context_problem(domain, suite.model, loop)
        if problem:
            key, why = problem
            section, field = key.split(".")
            if index is not None and field in getattr(over, section, {}):
                key = f"conditions.{index}.{key}"
            raise SuiteError(f"key {key}: {why}")


def _check_inspect_tasks(suite: Suite) -> None:
    """Each inspect task's module imports and has the named function: found at load, not after base training."""
    import importlib
    import importlib.util

    for i, spec in enumerate(suite.inspect):
        module_name, _, function = spec.task.partition(":")
        try:
            found = importlib.util.find_spec(module_name) is not None
            module = importlib.import_module(module_name) if found else None
        except Exception as e:  # noqa: BLE001 (an import error of the user's module, whatever its kind: one line)
            raise SuiteError(f"key inspect.{i}.task: cannot import {module_name} "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
        if module is None:
            raise SuiteError(f"key inspect.{i}.task: no module {module_name!r}; name a task as module:function, e.g. "
                             "harness.inspect_bridge.tasks.deference:deference")
        if not callable(getattr(module, function, None)):
            raise SuiteError(f"key inspect.{i}.task: {module_name} has no function {function!r}")


def _check_references(suite: Suite, lenient_gates: bool = False) -> None:
    """Condition overrides, context lengths, inspect tasks, probes, their parameters and the gates' targets:
    the parts pydantic can't see. A gate's problem is raised, or with `lenient_gates` kept on the suite
    (Suite.gate_problems) and the gate dropped."""
    from probes import ProbeError

    _check_conditions(suite)  # first: the checks below resolve conditions
    _check_inspect_tasks(suite)
    try:
        chosen = suite.probe_selection()
    except ProbeError as e:
        raise SuiteError(str(e)) from None
    for pid, params in chosen.items():
        problem = parameter_problem(pid, params)
        if problem:
            raise SuiteError(f"key probes.{_key(pid)}: {problem}")
    problems = {i: why for i, gate in enumerate(suite.gates) if (why := _gate_problem(suite, i, gate, chosen))}
    if problems and not lenient_gates:
        raise SuiteError(next(iter(problems.values())))
    suite._gate_problems = problems


def _gate_problem(suite: Suite, i: int, gate: GateSpec, chosen: dict[str, dict[str, Any]]) -> str | None:
    from probes import registry

    if gate.probe not in registry():
        return f"key gates.{i}.probe: unknown probe {_show(gate.probe)}{_nearest(gate.probe, registry())}"
    if gate.probe not in chosen:
        return (f"key gates.{i}.probe: probe {gate.probe!r} is gated but not run ([probes] include or exclude "
                "leaves it out)")
    if gate.across is not None:
        matched = [c for c in suite.condition_names() if fnmatch.fnmatchcase(c, gate.condition or "*")]
        if len(matched) < 2:
            return (f"key gates.{i}.condition: {_show(gate.condition or '*')} matches {len(matched)} condition(s); "
                    "a gate across conditions needs at least 2")
    for key in ("condition", "baseline"):
        name = getattr(gate, key)
        if gate.across is None and name is not None and name not in suite.condition_names():
            return f"key gates.{i}.{key}: unknown condition {_show(name)}{_nearest(name, suite.condition_names())}"
    if gate.round is not None and gate.round > max(suite.run_config(c, 0).loop.rounds
                                                   for c in (gate.condition, gate.baseline)):
        return f"key gates.{i}.round: round {gate.round} is beyond the conditions' rounds"
    tasks = [spec.task.partition(":")[2] for spec in suite.inspect]
    why = gate_stat_problem(gate.probe, gate.stat, chosen[gate.probe], tasks)
    return f"key gates.{i}.stat: {_one_line(why)}" if why else None


def parse_suite(text: str, source: str = "<suite>", *, base: Path | None = None, probe_files: Sequence[Path] = (),
                params: Sequence[str] = (), lenient_gates: bool = False) -> Suite:
    """The suite a TOML text describes; a SuiteError with a one-line message naming `source` and the key
    for anything wrong with it. `base`: the folder `[probes] load` paths are relative to (default: the
    working directory); `probe_files` and `params`: the CLI's --probe-file and --param."""
    try:
        return _parse(text, source, base or Path.cwd(), list(probe_files), list(params), lenient_gates)
    except SuiteError as e:
        raise SuiteError(_one_line(str(e))) from None


def _parse(text: str, source: str, base: Path, probe_files: list[Path], params: list[str],
           lenient_gates: bool) -> Suite:
    from probes import ProbeError

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"{source}: not valid TOML: {e}") from None
    except ValueError as e:  # tomllib passes int()'s digit limit through
        raise SuiteError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:
        raise SuiteError(f"{source}: not valid TOML: arrays or tables nested too deeply") from None
    try:
        data = add_cli_options(data, probe_files, params)
    except ProbeError as e:
        raise SuiteError(str(e)) from None
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise SuiteError(f"{source}: {_describe(e.errors()[0])}") from None
    suite._base = base
    try:
        _check_references(suite, lenient_gates)
    except SuiteError as e:
        raise SuiteError(f"{source}: {e}") from None
    return suite


def load_suite(path: Path | str, *, probe_files: Sequence[Path] = (), params: Sequence[str] = (),
               lenient_gates: bool = False) -> Suite:
    """The suite in a file (see parse_suite); `[probes] load` paths are relative to its folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SuiteError(f"{path}: cannot read ({e.strerror}); pass a suite file, or a shipped suite name "
                         "(`loopprobe suites` lists them)") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a text file; a suite is a UTF-8 TOML file") from None
    return parse_suite(text, str(path), base=path.resolve().parent, probe_files=probe_files, params=params,
                       lenient_gates=lenient_gates)
