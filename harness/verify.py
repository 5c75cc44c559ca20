"""`loopprobe verify-suites`: run shipped suites and report every gate, so a suite's finding stays a checked
fact rather than a header comment. Suites state their measured runtime (`[suite] expected_seconds`); with a
time budget, the suites that fit run in the order given and the rest are listed as skipped, with why."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.suite import Suite, SuiteError, load_suite

SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"
# smoke and the negative control first: the cheapest checks of the whole path and of the false-alarm control
ORDER = ("smoke", "null_loop", "planted_misconception", "lmsi", "noise_vs_systematic", "replace_vs_accumulate",
         "competence_threshold", "verifier_vs_self", "smollm2_cpu", "smollm2_lmsi")


def shipped() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(SUITES_DIR.glob("*.toml"))}
    return {name: found[name] for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))}


@dataclass
class Plan:
    run: list[tuple[str, Suite]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


def plan(names: list[str], budget: float | None, gpu: bool) -> Plan:
    """Which suites to run within `budget` seconds (None: all), in order; a SuiteError for an unknown name."""
    known = shipped()
    out, left = Plan(), budget
    for name in names or list(known):
        path = known.get(name) or (Path(name) if Path(name).suffix == ".toml" else None)
        if path is None:
            import difflib

            near = difflib.get_close_matches(name, known, n=1)
            raise SuiteError(f"no shipped suite {name!r}" + (f"; did you mean {near[0]!r}?" if near else
                                                             f"; shipped: {', '.join(known)}"))
        suite = load_suite(path)
        expected = suite.suite.expected_seconds
        if suite.suite.size == "large" and not gpu and not names:  # named explicitly: run it anyway
            out.skipped.append((suite.suite.name, "a large suite (real pretrained models): needs a GPU"))
        elif left is not None and (expected is None or expected > left):
            why = "no measured runtime" if expected is None else f"expected {expected} s, {left:.0f} s of budget left"
            out.skipped.append((suite.suite.name, f"does not fit the budget ({why})"))
        else:
            out.run.append((suite.suite.name, suite))
            left = None if left is None else left - (expected or 0)
    return out


def verify(suite: Suite, out: Path, cache_dir: Path | None, reporter=None):
    """Run (or resume) one suite into `out`; returns (outcome, seconds)."""
    from harness.suite_runner import run_suite

    t0 = time.perf_counter()
    outcome = run_suite(suite, out, cache_dir, reporter)
    return outcome, time.perf_counter() - t0
