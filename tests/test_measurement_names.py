"""Probes declare the measurement names they produce (`Probe.measurements`), so a suite's gate `stat` is
checked before any work. The declarations must not rot either way: every name a built-in probe produces on
rich synthetic runs is declared, and every declared name is produced on at least one of them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from probes import Measurement, Probe, ProbeError, RunView, registry
from probes.common import tracked, tracked_names
from probes.testing import clean_rounds, crank_rounds, write_synthetic_run

PLANTED = {"name": "arithmetic", "misconception": "drop_carry_tens"}
SIZES = {"n_pool": 40, "n_test": 24, "n_ood": 12, "n_ref": 8, "k": 4, "eval_k": 4}


def _builtins() -> dict[str, type[Probe]]:
    return {pid: cls for pid, cls in registry().items() if cls.__module__.startswith("probes.library.")}


@pytest.fixture(scope="module")
def produced(tmp_path_factory) -> dict[str, dict[str, set[str]]]:
    """probe id -> run name -> the names it produced there. The runs cover the branches that name
    measurements: three rounds with every effect planted (a misconception the domain plants, basins, fixed
    points, drift), a clean run, two rounds, and one round (where changes are undefined)."""
    root = tmp_path_factory.mktemp("names")
    planted = [replace(spec, planted_share=0.3 * r) for r, spec in enumerate(crank_rounds(3))]
    runs = {"crank+planted": write_synthetic_run(root / "crank", planted, domain=PLANTED, **SIZES),
            "clean": write_synthetic_run(root / "clean", clean_rounds(3), **SIZES),
            "two rounds": write_synthetic_run(root / "two", crank_rounds(2), **SIZES),
            "five rounds": write_synthetic_run(root / "five", crank_rounds(5), **SIZES),  # forecast.skill's h = 3
            "one round": write_synthetic_run(root / "one", clean_rounds(1), **SIZES)}
    out: dict[str, dict[str, set[str]]] = {}
    for pid, cls in _builtins().items():
        for name, path in runs.items():
            out.setdefault(pid, {})[name] = {m.name for m in cls().measure(RunView(path))}
    return out


def test_every_builtin_probe_declares_its_names_except_the_one_named_by_data():
    declared = {pid: cls.measurements for pid, cls in _builtins().items()}
    assert len(declared) == 22
    assert declared.pop("inspect.task_drift") is None  # `<task>.<key>`: known only from the logs
    undeclared = [pid for pid, names in declared.items() if not names]
    assert not undeclared, f"probes without `measurements`: {undeclared}"
    for pid, names in declared.items():
        assert isinstance(names, tuple) and len(set(names)) == len(names), pid


def test_each_builtin_produces_only_declared_names_and_every_declared_name(produced):
    for pid, cls in _builtins().items():
        if cls.measurements is None:
            continue
        every = set().union(*produced[pid].values())
        assert every <= set(cls.measurements), (pid, every - set(cls.measurements))
        assert set(cls.measurements) <= every, (pid, "declared but never produced", set(cls.measurements) - every)


def test_the_planted_run_exercises_the_misconception_share(produced):
    # the names of cw.misconception_share come only from a run whose domain plants a rule
    assert produced["cw.misconception_share"]["crank+planted"] == set(tracked_names("share"))
    assert produced["cw.misconception_share"]["clean"] == {"share"}  # no rule: one undefined measurement


def test_tracked_names_are_the_names_tracked_produces(tmp_path):
    run = RunView(write_synthetic_run(tmp_path / "run", clean_rounds(2), **SIZES))

    class Level(Probe):
        """A level tracked over rounds."""

        id, family = "test.level", "drift"
        measurements = tracked_names("x")

    ids = run.samples(0).question_ids
    found = tracked(Level(), "x", run, lambda r: run.samples(r).correct.mean(axis=1), ids, concern="decrease")
    assert tuple(m.name for m in found) == tracked_names("x") == ("x", "x.delta_vs_round0", "x.delta_vs_previous")


def test_an_undeclared_name_is_a_one_line_probe_error(tmp_path):
    run = RunView(write_synthetic_run(tmp_path / "run", clean_rounds(1), **SIZES))

    class Liar(Probe):
        """Declares one name and produces another."""

        id, family = "test.liar", "drift"
        measurements = ("a",)

        def measure(self, run: RunView) -> list[Measurement]:
            return [self.measurement("a", 1.0), self.measurement("b", 2.0)]

    with pytest.raises(ProbeError) as caught:
        Liar().measure(run)
    message = str(caught.value)
    assert "\n" not in message
    assert message == ("probe test.liar produced measurement 'b' that it does not declare in `measurements`; "
                       "add it")


def test_a_probe_that_declares_nothing_may_name_anything():
    class Free(Probe):
        """Declares nothing."""

        id, family = "test.free", "drift"

    assert Free.measurements is None
    assert Free().measurement("anything", 1.0).name == "anything"


def test_the_library_makes_measurements_only_through_probe_measurement():
    # a Measurement(...) built directly would bypass the declared-name check and the degenerate rule
    library = Path(__file__).resolve().parents[1] / "probes" / "library"
    direct = [f.name for f in library.glob("*.py") if "Measurement(" in f.read_text()]
    assert not direct, f"build measurements with self.measurement(...), not Measurement(...): {direct}"
