"""pytest plugin (entry point `pytest11`): every gate of a suite becomes a test item.

    pytest --loopprobe-suite suites/smoke.toml suites/       # run the suite, one test per gate
    pytest --loopprobe-suite s.toml --loopprobe-run runs/x/   # check recorded runs instead of running

Items read `complete[CONDITION]` (its runs finished) and `gate[CONDITION: PROBE STAT BOUNDS]`, e.g.
`gate[default: cw.rate rate.delta_vs_round0 <= 0.4]`. A gate that cannot be evaluated (a typo in its stat,
an unknown condition) fails alone, with its one-line reason; the others run. The fixture `loopprobe_outcome`
gives tests the suite's outcome (measurements per condition, gate results) for their own assertions, and
`loopprobe_measurements[condition][probe][name]` each Measurement (a tuple key `[(condition, probe, name)]`
works too). The suite runs once per session, on first use.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

_OUTCOME = pytest.StashKey[object]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loopprobe")
    group.addoption("--loopprobe-suite", metavar="SUITE",
                    help="a suite TOML file or a shipped suite's name: each gate becomes a test")
    group.addoption("--loopprobe-out", metavar="DIR", help="where the suite's runs go (default: a temp dir)")
    group.addoption("--loopprobe-run", metavar="DIR", help="check recorded runs (loopprobe check) instead")


_SUITE = pytest.StashKey[object]()


def _suite(config: pytest.Config):
    """The suite, loaded once per session with lenient gates (Suite.gate_problems); None without
    --loopprobe-suite."""
    from harness.app.shipped import resolve_suite
    from harness.app.suite import SuiteError, load_suite

    path = config.getoption("--loopprobe-suite")
    if not path:
        if config.getoption("--loopprobe-run"):
            raise pytest.UsageError("--loopprobe-run DIR needs --loopprobe-suite SUITE: the suite says which "
                                    "probes and gates to check on the recorded runs")
        return None
    if _SUITE not in config.stash:
        try:
            config.stash[_SUITE] = load_suite(resolve_suite(path), lenient_gates=True)
        except SuiteError as e:
            raise pytest.UsageError(str(e)) from None
    return config.stash[_SUITE]


def outcome(config: pytest.Config):
    """The suite's outcome over its evaluable gates, computed on first use and kept for the session."""
    if _OUTCOME not in config.stash:
        from harness.app.suite_runner import check_suite, run_suite
        from harness.models.tiny.pretrain import default_cache_dir

        suite = _suite(config)
        if suite is None:
            raise pytest.UsageError("the loopprobe fixtures need --loopprobe-suite SUITE")
        bad = suite.gate_problems
        suite = suite.model_copy(update={"gates": [g for i, g in enumerate(suite.gates) if i not in bad]})
        recorded = config.getoption("--loopprobe-run")
        if recorded:
            config.stash[_OUTCOME] = check_suite(suite, Path(recorded))
        else:
            out = config.getoption("--loopprobe-out")
            out = Path(out) if out else Path(tempfile.mkdtemp(prefix="loopprobe-"))
            config.stash[_OUTCOME] = run_suite(suite, out, default_cache_dir())
    return config.stash[_OUTCOME]


def gate_label(gate) -> str:
    """`PROBE STAT BOUNDS` of a gate, its `use` in parentheses and a difference gate's round after it (a gate
    across conditions: `mean of PROBE STAT ...`)."""
    bounds = " and ".join(b for b in (f">= {gate.min:g}" if gate.min is not None else "",
                                      f"<= {gate.max:g}" if gate.max is not None else "") if b)
    use = "" if gate.use == "value" else f" ({gate.use})"
    at = "" if gate.round is None else f" at round {gate.round}"
    mean = f"{gate.across} of " if gate.across else ""
    return f"{mean}{gate.probe} {gate.stat}{use}{at} {bounds}"


class GateItem(pytest.Item):
    def __init__(self, *, index: int, condition: str, **kwargs):
        super().__init__(**kwargs)
        self.index, self.condition = index, condition

    def runtest(self) -> None:
        problem = _suite(self.config).gate_problems.get(self.index)
        if problem:
            raise GateFailed(f"cannot be evaluated: {problem}")
        result = next(g for g in outcome(self.config).gates
                      if g.condition == self.condition and g.gate == self.suite_gate)
        if not result.passed:
            raise GateFailed(result.message)
        self.user_properties.append(("measurement", result.message))

    @property
    def suite_gate(self):
        return _suite(self.config).gates[self.index]

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GateFailed):
            return f"gate failed: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.config.getoption("--loopprobe-suite"), None, self.name


class CompleteItem(pytest.Item):
    """A condition's runs finished every round without a failed one: a run that did not finish never
    passes, even in a suite without gates."""

    def __init__(self, *, condition: str, **kwargs):
        super().__init__(**kwargs)
        self.condition = condition

    def runtest(self) -> None:
        why = outcome(self.config).incomplete.get(self.condition)
        if why:
            raise GateFailed(f"[{self.condition}] the run is incomplete: {why}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GateFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.config.getoption("--loopprobe-suite"), None, self.name


class GateFailed(Exception):
    pass


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    suite = _suite(config)
    if suite is None:
        return
    for condition in suite.condition_names():
        items.append(CompleteItem.from_parent(session, name=f"complete[{condition}]", condition=condition))
    for i, gate in enumerate(suite.gates):
        if gate.across is not None or gate.baseline is not None:  # one mean over conditions, or one difference
            label = (gate.condition or "every condition") if gate.across else f"{gate.condition} − {gate.baseline}"
            items.append(GateItem.from_parent(session, name=f"gate[{label}: {gate_label(gate)}]", index=i,
                                              condition=label))
            continue
        for condition in suite.condition_names():
            if gate.condition in (None, condition):
                items.append(GateItem.from_parent(session, name=f"gate[{condition}: {gate_label(gate)}]",
                                                  index=i, condition=condition))


class Measurements(dict):
    """condition -> probe id -> measurement name -> Measurement; `[(condition, probe, name)]` also works."""

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 3:
            condition, probe, name = key
            return super().__getitem__(condition)[probe][name]
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        if isinstance(key, tuple) and len(key) == 3:
            try:
                self[key]
            except KeyError:
                return False
            return True
        return super().__contains__(key)


@pytest.fixture(scope="session")
def loopprobe_outcome(request: pytest.FixtureRequest):
    return outcome(request.config)


@pytest.fixture(scope="session")
def loopprobe_measurements(loopprobe_outcome) -> Measurements:
    out = Measurements()
    for condition, results in loopprobe_outcome.conditions.items():
        for m in results.measurements:
            out.setdefault(condition, {}).setdefault(m.probe, {})[m.name] = m
    return out
