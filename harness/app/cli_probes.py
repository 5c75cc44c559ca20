"""`loopprobe probes`, `loopprobe new-probe` and `loopprobe suite check`: writing, loading and checking probes
and suites without running a loop."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

ProbeFiles = Annotated[list[Path] | None, typer.Option(
    "--probe-file", metavar="FILE", help="a probe file (.py) whose @probe classes join the library (repeatable)")]
Params = Annotated[list[str] | None, typer.Option(
    "--param", metavar="ID.KEY=VALUE", help="set a probe parameter, e.g. cw.rate.tau=0.6 (repeatable)")]

suite_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Check suite files without running them.")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _selection(probe: list[str] | None, probe_files: list[Path] | None, params: list[str] | None):
    """{probe id: parameters} from the command line: the library (plus --probe-file), or the --probe ids (the
    probes of the files when only files are given), with --param applied."""
    from harness.app.suite_probes import ProbesSection, add_cli_options, parameter_problem, selection
    from probes import ProbeError, load_probes

    data = add_cli_options({}, probe_files or [], params or [])
    section = dict(data.get("probes", {}))
    loaded = load_probes([Path(p) for p in section.get("load", [])])
    if probe or loaded:
        section["include"] = list(probe or [cls.id for cls in loaded])
    try:
        chosen = selection(ProbesSection(**section), Path.cwd())
    except ProbeError as e:  # name the option, not the suite key
        raise ProbeError(re.sub(r"^key probes\.include\.\d+: ", "--probe ", str(e))) from None
    for pid, given in chosen.items():
        problem = parameter_problem(pid, given)
        if problem:
            raise ProbeError(f"--param {pid}: {problem}")
    return chosen


def probes_command(
    path: Annotated[Path | None, typer.Argument(metavar="[RUN]", help="a run, condition or suite output directory; "
                                                                      "omit to list the probes")] = None,
    probe: Annotated[list[str] | None, typer.Option("--probe", "-p", help="probe id or pattern (repeatable; "
                                                                          "default all)")] = None,
    probe_files: ProbeFiles = None,
    params: Params = None,
    only_firing: Annotated[bool, typer.Option("--firing", help="print only measurements that fire")] = False,
) -> None:
    """Run probes over recorded runs, print every measurement with its 95% CI, write probes.json.

    PATH is what `loopprobe report` accepts: a run, a condition (its seeds pooled) or a suite output (each
    condition). With --probe-file and no --probe, only the file's probes run.
    """
    from harness.app.cli import console, err_console, fail
    from harness.artifacts import RunError
    from probes import ProbeError, incomplete, registry, run_probes, write_results
    from reports.sources import expand

    try:
        chosen = _selection(probe, probe_files, params)
    except ProbeError as e:
        fail(str(e))
    if path is None:
        table = Table("probe", "family", "description", box=box.SIMPLE_HEAVY)
        for pid, cls in registry().items():
            if pid in chosen:
                table.add_row(pid, cls.family, cls.description())
        console.print(table)
        return
    try:
        sources = expand([path])
    except RunError as e:
        fail(str(e))
    for source in sources:
        t0 = time.perf_counter()
        try:
            results = run_probes(source.view, chosen)
        except (RunError, ProbeError) as e:
            fail(str(e))
        written: Path | str
        try:
            written = write_results(source.root, results)
        except RunError as e:  # a read-only run: print what was measured, say it was not kept
            err_console.print(f"[yellow]warning:[/] probe results not saved: {escape(str(e))}", soft_wrap=True)
            written = "nothing (not saved)"
        table = Table("probe", "measurement", "round", "value", "95% CI", "p", "p adj.", "fires",
                      box=box.SIMPLE_HEAVY, title=escape(f"probes of {source.root} (rounds {results.rounds[0]}.."
                                                         f"{results.rounds[-1]})"))
        for m in results.measurements:
            if only_firing and not m.fires:
                continue
            ci = "-" if m.ci_low is None else f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
            tested = m.tested
            verdict = (f"[bold red]yes ({'alarm' if m.alarm is not None else m.concern})[/]" if m.fires else
                       "[yellow]degenerate[/]" if m.degenerate else "")
            table.add_row(m.probe, m.name, _fmt(m.round), _fmt(m.value), ci, _fmt(m.p_value) if tested else "",
                          _fmt(m.p_adjusted) if tested else "", verdict)
        console.print(table)
        why = incomplete(source.view)
        if why:
            err_console.print(f"[bold red]incomplete:[/] {escape(why)}; no gate on it holds", soft_wrap=True)
        for r in getattr(source.view, "stalled_rounds", []):
            console.print(f"round {r}: no update (its training set was empty)", highlight=False)
        for m in (m for m in results.measurements if m.degenerate):
            console.print(escape(f"degenerate: {m.probe} {m.name}: {m.degenerate}"), highlight=False)
        alarms = [m for m in results.measurements if m.alarm is not None]
        console.print(f"{len(results.measurements)} measurements: {results.correction.describe()} "
                      f"({results.correction.firing_uncorrected} uncorrected); alarms: "
                      f"{sum(m.fires for m in alarms)} of {len(alarms)}; wrote {written} "
                      f"({time.perf_counter() - t0:.1f} s)", highlight=False)


def new_probe_command(
    name: Annotated[str, typer.Argument(help="the probe's name: a lowercase Python identifier")],
    family: Annotated[str, typer.Option(help="its family: drift, attractors, confident_wrong or forecast")]
    = "drift",
    directory: Annotated[Path, typer.Option("--dir", help="where to write the files")] = Path("."),
    module: Annotated[str | None, typer.Option(help="the module it will have in your package (for the "
                                                    "entry-point snippet)")] = None,
) -> None:
    """Write a probe file and its positive- and negative-control tests, which pass as generated."""
    from harness.app.cli import console, fail
    from harness.app.scaffold import entry_point_snippet, write_probe_scaffold

    try:
        written = write_probe_scaffold(name, family, directory)
    except (ValueError, OSError) as e:
        fail(str(e))
    probe_file, test_file = written[0], written[-1]
    lines = [*(f"wrote {path}" for path in written), "",
             f"run its controls:  pytest {test_file}",
             f'use it in a suite: [probes] load = ["{probe_file.name}"]  (relative to the suite file)',
             f"or from the CLI:   loopprobe run SUITE --probe-file {probe_file}",
             "ship it in a package, in its pyproject.toml:",
             entry_point_snippet(name, module or f"my_package.{name}")]
    console.print("\n".join(lines), markup=False, highlight=False)


@suite_app.command("check")
def suite_check_command(
    suite_file: Annotated[str, typer.Argument(metavar="SUITE", help="a suite TOML file or a shipped suite's name")],
    probe_files: ProbeFiles = None,
    params: Params = None,
) -> None:
    """Validate a whole suite, its probes and gates included, without running anything (exit 0 when valid)."""
    from harness.app.cli import console, fail
    from harness.app.shipped import resolve_suite
    from harness.app.suite import SuiteError, load_suite

    t0 = time.perf_counter()
    try:
        suite = load_suite(resolve_suite(suite_file), probe_files=probe_files or [], params=params or [])
    except SuiteError as e:
        fail(str(e))
    console.print(f"[bold green]valid[/]: {escape(suite_file)}: {len(suite.condition_names())} conditions x "
                  f"{len(suite.suite.seeds)} seeds, {len(suite.probe_selection())} probes, {len(suite.gates)} gates "
                  f"({time.perf_counter() - t0:.2f} s)", highlight=False)
