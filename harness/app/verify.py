"""`loopprobe verify-suites`: run shipped suites and report every gate, so a suite's finding stays a checked
fact rather than a header comment. Suites state their measured runtime (`[suite] expected_seconds`); with a
time budget, the suites that fit run in the order given and the rest are listed as skipped, with why."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.app.shipped import resolve_suite
from harness.app.shipped import shipped_suites as shipped
from harness.app.suite import Suite, load_suite


@dataclass
class Plan:
    run: list[tuple[str, Suite]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


def plan(names: list[str], budget: float | None, gpu: bool) -> Plan:
    """Which suites to run within `budget` seconds (None: all), in order. Each name is a shipped suite's name
    or a suite file (harness.app.shipped.resolve_suite); a SuiteError for one that is neither."""
    out, left = Plan(), budget
    for name in names or list(shipped()):
        suite = load_suite(resolve_suite(name))
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
    from harness.app.suite_runner import run_suite

    t0 = time.perf_counter()
    outcome = run_suite(suite, out, cache_dir, reporter)
    return outcome, time.perf_counter() - t0
