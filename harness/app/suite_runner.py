"""Run a suite: every condition x seed as its own run, probes pooled over the seeds of each condition,
then the gates. Layout:

    OUT/<condition>/seed-<n>/   one run directory each (resumable)
    OUT/<condition>/probes.json the pooled measurements of that condition
    OUT/suite.json              the verdict: every gate with its measurement

One process writes a suite output at a time (harness.lock). A run that stops on a failed round does not stop
the suite: the other conditions still run, and the verdict says the failed one is incomplete.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from harness.app.suite import Suite
from harness.app.workers import run_on_ray, run_parallel
from harness.artifacts import RoundFailed, RunError, remove_stale_temps, write_atomic
from harness.config import RunConfig
from harness.integrity import dump_checked
from harness.lock import write_lock
from harness.preflight import make_directory
from harness.progress import Reporter, SilentReporter
from probes import Measurement, PooledRunView, ProbeError, RunView, incomplete, results_for
from probes.gates import GateResult, GateSpec, SuiteOutcome, across_measurement, difference_measurement, evaluate


def _unevaluable(gate: GateSpec, condition: str, why: ProbeError) -> GateResult:
    where = "" if gate.baseline is not None else f"[{condition}] "
    return GateResult(gate=gate, condition=condition, passed=False, observed=None,
                      measurement=Measurement(probe=gate.probe, name=gate.stat, value=None),
                      message=f"{where}{gate.describe()}: cannot be evaluated: {why}")


def run_dir(out: Path, condition: str, seed: int) -> Path:
    return Path(out) / condition / f"seed-{seed}"


def run_suite(suite: Suite, out: Path, cache_dir: Path | None, reporter: Reporter | None = None,
              seeds: list[int] | None = None, workers: int = 1, ray: str | None = None) -> SuiteOutcome:
    """Every condition x seed (resuming what is recorded), then the probes and gates. `workers` > 1 runs
    them, and each condition's probes once its runs are done, in that many single-thread processes; `ray` (an
    address, or "local") runs them as Ray tasks (harness.app.workers); the artifacts are the same."""
    reporter = reporter or SilentReporter()
    seeds = seeds or suite.suite.seeds
    out = make_directory(out, "output directory")
    with write_lock(out):
        for directory in [out, *(out / c for c in suite.condition_names())]:  # a killed writer's temporaries
            remove_stale_temps(directory)
        jobs = [(f"{condition}/seed-{seed}", suite.run_config(condition, seed), run_dir(out, condition, seed))
                for condition in suite.condition_names() for seed in seeds]
        if ray is not None:
            reporter.log(f"[bold]{suite.suite.name}[/]: {len(jobs)} runs as Ray tasks ({ray})")
            run_on_ray(jobs, cache_dir, reporter, ray, workers if workers > 1 else None)
        elif workers > 1 and len(jobs) > 1:
            reporter.log(f"[bold]{suite.suite.name}[/]: {len(jobs)} runs in {min(workers, len(jobs))} processes")
            run_parallel(jobs, cache_dir, reporter, workers, follow_ups={
                condition: ({f"{condition}/seed-{seed}" for seed in seeds}, probe_condition, (suite, out, condition, seeds))
                for condition in suite.condition_names()})
        else:
            _run_sequential(suite.suite.name, jobs, cache_dir, reporter)
        return check_suite(suite, out, seeds)


def _run_sequential(name: str, jobs: list[tuple[str, RunConfig, Path]], cache_dir: Path | None,
                    reporter: Reporter) -> None:
    from harness.loop import run_loop  # torch is imported only when a loop runs

    for label, cfg, directory in jobs:
        condition, _, seed = label.partition("/seed-")
        reporter.log(f"[bold]{name}[/]: condition {condition}, seed {seed}")
        try:
            run_loop(cfg, directory, cache_dir, reporter)
        except RoundFailed as e:  # recorded in the run; its gates cannot hold
            reporter.log(f"[bold red]{e}[/]")


def probe_condition(suite: Suite, out: Path, condition: str, seeds: list[int]) -> str:
    """One condition's probes, recorded in OUT/<condition>/probes.json: a worker's share of `check_suite`,
    which then finds them current and reuses them."""
    runs = [RunView(run_dir(out, condition, seed)) for seed in seeds]
    view = runs[0] if len(runs) == 1 else PooledRunView(runs)
    results, _ = results_for(view, out / condition, suite.probe_selection(), suite.suite.correction, suite.suite.q)
    return f"probes: {len(results.measurements)} measurements"


def check_suite(suite: Suite, out: Path, seeds: list[int] | None = None) -> SuiteOutcome:
    """See `_check` (under the output's write lock: a run still being written is refused)."""
    if not Path(out).is_dir():
        return _check(suite, Path(out), seeds)  # says what is missing
    with write_lock(out, "loopprobe check", read_only_ok=True):
        return _check(suite, Path(out), seeds)


def _check(suite: Suite, out: Path, seeds: list[int] | None = None) -> SuiteOutcome:
    """Probes and gates over runs already recorded: a suite output directory, or one run directory (taken
    as the single condition of the suite). Recorded probe results are reused where they are current (same
    probe, parameters, code and artifacts) and recomputed where not."""
    out = Path(out)
    seeds = seeds or suite.suite.seeds
    views: dict[str, RunView | PooledRunView]
    if (out / "manifest.json").exists():  # a single run
        views = {suite.condition_names()[0]: RunView(out)}
        write_to = {suite.condition_names()[0]: out}
    else:
        views, write_to = {}, {}
        for condition in suite.condition_names():
            dirs = [run_dir(out, condition, s) for s in seeds]
            missing = [d for d in dirs if not (d / "manifest.json").exists()]
            if missing:
                raise RunError(f"{missing[0]}: no run for condition {condition!r} seed "
                               f"{missing[0].name.removeprefix('seed-')}; run `loopprobe run SUITE --out {out}`")
            runs = [RunView(d) for d in dirs]
            views[condition] = runs[0] if len(runs) == 1 else PooledRunView(runs)
            write_to[condition] = out / condition
    selection = suite.probe_selection()
    results, recomputed = {}, []
    for c, v in views.items():
        results[c], why = results_for(v, write_to[c], selection, suite.suite.correction, suite.suite.q)
        unsaved = why.pop("(not saved)", None)
        if len(why) < len(selection):  # some were current: say which were not
            recomputed += [f"{c}: recomputed {pid} ({reason})" for pid, reason in why.items()]
        if unsaved:
            recomputed.append(f"{c}: probe results not saved ({unsaved})")
    unfinished = {c: incomplete(v, suite.run_config(c, seeds[0]).loop.rounds) for c, v in views.items()}
    gates = []
    for g in suite.gates:
        if g.across is not None:
            label = g.condition or "every condition"
            try:
                m = across_measurement(g, results)
            except ProbeError as e:
                gates.append(_unevaluable(g, label, e))
                continue
            matched = [c for c in results if fnmatch.fnmatchcase(c, g.condition or "*")]
            gates.append(evaluate(g, label, m, next((unfinished[c] for c in matched if unfinished[c]), None)))
            continue
        if g.baseline is not None:
            label = f"{g.condition} − {g.baseline}"
            try:
                m = difference_measurement(g, results[g.baseline], results[g.condition])  # type: ignore[index]
            except ProbeError as e:
                gates.append(_unevaluable(g, label, e))
                continue
            unfinished_why = unfinished[g.baseline] or unfinished[g.condition]  # type: ignore[index]
            gates.append(evaluate(g, label, m, unfinished_why))
            continue
        for c in (c for c in results if g.condition in (None, c)):
            try:
                gates.append(evaluate(g, c, results[c].measurements, unfinished[c]))
            except ProbeError as e:  # e.g. a stat an undeclared probe did not produce: this gate fails alone
                gates.append(_unevaluable(g, c, e))
    outcome = SuiteOutcome(suite=suite.suite.name, seeds=seeds, conditions=results, gates=gates,
                           recomputed=recomputed, incomplete={c: why for c, why in unfinished.items() if why})
    if not (out / "manifest.json").exists():
        try:
            write_atomic(out / "suite.json", dump_checked(outcome))
        except RunError as e:  # a read-only output: the verdict is printed, not kept
            outcome.recomputed.append(f"suite.json not saved ({e})")
    return outcome
