"""A suite's `[probes]` table: the library plus what it names, and the checks of probes and gates that run
before anything trains.

    [probes]
    load = ["right_reason.py", "my_package.probes"]   # files (relative to the suite file) or modules
    include = ["drift.*", "cw.rate"]                   # optional: only these ids or shell patterns
    exclude = ["attractor.rationale_diversity"]        # optional: not these
    "cw.rate" = {tau = 0.6}                            # parameters of one probe (it runs even if not included)

Absent, or empty: every registered probe (the built-ins, installed packages' and loaded ones) with its
defaults. The CLI adds files with `--probe-file` and parameters with `--param ID.KEY=VALUE`.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.bounds import MAX_SPLIT
from probes import Probe, ProbeError, get_probe, load_probes, registry


class ProbesSection(BaseModel):
    """`[probes]`; every key other than load, include and exclude is a probe id with its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)

    load: list[str] = Field([], max_length=100, description="probe files (.py; relative paths from the suite "
                            "file's folder) or dotted module names whose @probe classes join the library")
    include: list[str] | None = Field(None, max_length=1000, description="run only the probes whose id matches "
                                      "one of these ids or shell patterns (e.g. 'cw.*'), plus those given "
                                      "parameters here; default: every probe")
    exclude: list[str] = Field([], max_length=1000, description="do not run the probes matching these ids or "
                               "patterns")

    @model_validator(mode="after")
    def _tables(self) -> ProbesSection:
        bad = [(pid, v) for pid, v in (self.model_extra or {}).items() if not isinstance(v, dict)]
        if bad:  # a ValueError: pydantic reports it with the key
            pid, value = bad[0]
            raise ValueError(f"{pid}: a probe's parameters are a table, e.g. \"{pid}\" = {{seed = 1}}, got "
                             f"{type(value).__name__}")
        return self

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        return dict(self.model_extra or {})


def add_cli_options(data: dict[str, Any], probe_files: list[Path], params: list[str]) -> dict[str, Any]:
    """The suite's TOML data with `--probe-file` paths (absolute, from the working directory) added to
    `[probes] load` and each `--param ID.KEY=VALUE` set (VALUE read as a TOML value, else as a string)."""
    if not probe_files and not params:
        return data
    section = dict(data.get("probes") or {}) if isinstance(data.get("probes"), dict) else {}
    section["load"] = [*section.get("load", []), *(str(Path(p).expanduser().resolve()) for p in probe_files)]
    for item in params:
        target, sep, raw = item.partition("=")
        pid, dot, key = target.strip().rpartition(".")
        if not sep or not dot or not pid or not key:
            raise ProbeError(f"--param {item!r}: write ID.KEY=VALUE, e.g. --param cw.rate.tau=0.6")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        section[pid] = {**section.get(pid, {}), key: value}
    return {**data, "probes": section}


def _matching(patterns: list[str], ids: list[str], key: str) -> set[str]:
    out: set[str] = set()
    for i, pattern in enumerate(patterns):
        found = set(fnmatch.filter(ids, pattern))
        if not found:
            near = difflib.get_close_matches(pattern, ids, n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else "; `loopprobe probes` lists the ids"
            raise ProbeError(f"key probes.{key}.{i}: {pattern!r} matches no probe{hint}")
        out |= found
    return out


def selection(section: ProbesSection | None, base: Path) -> dict[str, dict[str, Any]]:
    """{probe id: parameters} the suite runs, in id order; loads `load` first (relative to `base`). A
    ProbeError (one line, naming the key) for a file that fails, a pattern matching nothing, an unknown id or
    parameters of an excluded probe."""
    section = section or ProbesSection()
    for i, spec in enumerate(section.load):
        try:
            load_probes([spec], base)
        except ProbeError as e:
            raise ProbeError(f"key probes.load.{i}: {e}") from None
    ids = list(registry())
    chosen = _matching(section.include, ids, "include") if section.include is not None else set(ids)
    excluded = _matching(section.exclude, ids, "exclude")
    for pid in section.params:
        if pid not in ids:
            near = difflib.get_close_matches(pid, ids, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else "; `loopprobe probes` lists the ids"
            raise ProbeError(f"key probes.{pid}: unknown probe {pid!r}{hint}")
        if pid in excluded:
            raise ProbeError(f"key probes.{pid}: parameters for a probe that probes.exclude removes")
    chosen = (chosen - excluded) | set(section.params)
    return {pid: section.params.get(pid, {}) for pid in sorted(chosen)}


def parameter_problem(pid: str, params: dict[str, Any]) -> str | None:
    """Why these parameters cannot be the probe's (its own bounds, then what every number in a suite must
    be: integers at most 10**6 and not true/false, floats finite), or None."""
    try:
        get_probe(pid)(**params)
    except ProbeError as e:
        return str(e).replace(f"probe {pid}: ", "")
    fields = get_probe(pid).Params.model_fields
    for name, value in params.items():
        field = fields.get(name)
        if field is None:
            continue
        kinds = set(typing.get_args(field.annotation)) | {field.annotation}
        numeric = bool(kinds & {int, float}) and bool not in kinds
        if numeric and isinstance(value, bool):
            return f"parameter {name}: a number is needed, not true/false"
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SPLIT:
            return f"parameter {name}: at most 10**6 in size (got {value if abs(value) < 10**30 else 'a huge integer'})"
        if isinstance(value, float) and not math.isfinite(value):
            return f"parameter {name}: must be a finite number (got {value})"
    return None


# ---------------------------------------------------------------- the measurement names of a probe


def measurement_names(probe_id: str) -> set[str] | None:
    """Every measurement name a probe can produce, as it declares them (`Probe.measurements`); None when it
    does not declare them (its gates are then checked when it has measured: a missing name fails that gate
    with the names it did produce)."""
    cls: type[Probe] = get_probe(probe_id)
    declared = getattr(cls, "measurements", None)
    return set(declared) if declared is not None else None


def gate_stat_problem(probe_id: str, stat: str, params: dict[str, Any], tasks: list[str]) -> str | None:
    """Why `stat` is not a measurement the probe can produce, or None (also when that cannot be known)."""
    if probe_id == "inspect.task_drift":  # names are <task>.<score key>, known from the logs
        tasks = params.get("tasks") or tasks
        if stat == "score" or any(stat.startswith(f"{t}.") for t in tasks):
            return None
        named = f"its inspect tasks ({', '.join(tasks)})" if tasks else "none: the suite runs no [[inspect]] tasks"
        return (f"inspect.task_drift names its measurements <task>.<score key> (or 'score'), and {stat!r} "
                f"begins with {named}")
    names = measurement_names(probe_id)
    if names is None or stat in names:
        return None
    near = difflib.get_close_matches(stat, list(names), n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else f"; valid: {', '.join(sorted(names))}"
    return f"probe {probe_id} has no measurement {stat!r}{hint}"
