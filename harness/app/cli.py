"""The `loopprobe` command line."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, cast

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.app.cli_models import models_app
from harness.app.cli_probes import Params, ProbeFiles, new_probe_command, probes_command, suite_app
from harness.artifacts import RunError, RunStore

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Run self-improvement loops under controlled conditions and probe what goes wrong.")
app.add_typer(models_app, name="models")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"loopprobe {version('loopprobe')}")
        except PackageNotFoundError:  # a checkout on sys.path, not installed
            typer.echo("loopprobe (not installed: no package metadata)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print `loopprobe <version>` and exit")] = False,
) -> None:
    pass


_COLUMNS = [  # (header, metric, format)
    ("round", None, None),
    ("test acc", "test_accuracy", "{:.1%}"),
    ("ood acc", "ood_accuracy", "{:.1%}"),
    ("pool maj", "pool_majority_accuracy", "{:.1%}"),
    ("kept", "pool_kept_share", "{:.1%}"),
    ("kept wrong", "kept_wrong_share", "{:.1%}"),
    ("conf wrong", "confident_wrong_share", "{:.1%}"),
    ("entropy", "mean_answer_entropy", "{:.3f}"),
    ("sec", None, None),
]
_CAPTION = ("test/ood acc: greedy accuracy · pool maj: accuracy of the pool majority vote · kept: share of pool "
            "questions selected · kept wrong: share of those whose majority is wrong · conf wrong: share of "
            "the pool confidently wrong · entropy: mean answer entropy (nats) · sec: round wall time")


def round_table(store: RunStore) -> Table:
    table = Table(title=f"run {store.root}", caption=_CAPTION, box=box.SIMPLE_HEAVY)
    for header, _, _ in _COLUMNS:
        table.add_column(header, justify="right")
    for r in store.recorded_rounds():
        rec = store.read_round(r)
        cells = [str(r) if rec.status == "complete" else f"{r} [bold red]{rec.status}[/]"]
        for _, key, fmt in cast("list[tuple[str, str, str]]", _COLUMNS[1:-1]):  # the metric columns
            value = rec.metrics.get(key)
            cells.append("-" if value is None else fmt.format(value))
        cells.append(f"{sum(rec.seconds.values()):.1f}")
        table.add_row(*cells)
        if rec.reason:
            table.add_row("", f"[red]{escape(rec.reason)}[/]", *[""] * (len(_COLUMNS) - 2))
    return table


DEFAULT_SUITE = "smoke"  # a shipped suite's name (harness.app.shipped)
_SUITE_HELP = "a suite TOML file, or a shipped suite's name (`loopprobe suites` lists them)"


def _load_suite(arg: str | None, probe_files: list[Path] | None = None, params: list[str] | None = None):
    """A suite file or a shipped suite's name; None: the default suite, always the shipped one. --probe-file
    and --param add to its [probes]."""
    from harness.app.shipped import resolve_suite, shipped_suites
    from harness.app.suite import SuiteError, load_suite

    try:
        return load_suite(shipped_suites()[DEFAULT_SUITE] if arg is None else resolve_suite(arg),
                          probe_files=probe_files or [], params=params or [])
    except SuiteError as e:
        fail(str(e))


_Force = Annotated[bool, typer.Option("--force", help="run even when the cost estimate exceeds the machine or the "
                                                      "suite's max_hours")]


def _check_cost(suite, seeds: list[int], out: Path, cache: Path | None, force: bool, where: str) -> None:
    """Print the suite's cost estimate (one line) and refuse it (exit 2) when it exceeds this machine or the
    suite's max_hours, unless forced: before any work (harness.app.cost)."""
    from harness.app.cost import check, estimate, machine_limits, problems
    from harness.app.suite import SuiteError

    try:
        est = estimate(suite, seeds, cache=cache is not None, cache_dir=cache)
        console.print(escape(est.describe()), highlight=False, soft_wrap=True)
        limits = machine_limits(suite, out)
        check(est, limits, force)
    except SuiteError as e:
        fail(f"{where}: {e}")
    for problem in problems(est, limits):  # forced
        err_console.print(f"[yellow]warning:[/] {escape(problem)} (--force)", highlight=False, soft_wrap=True)


def _check_paths(out: Path | None = None, junit: Path | None = None, summary: Path | None = None) -> None:
    """Every path the command will write is writable: checked before any work starts."""
    from harness import preflight

    try:
        if out is not None:
            preflight.output_directory(out)
        preflight.output_file(junit, "--junit")
        preflight.output_file(summary, "--summary")
    except RunError as e:
        fail(str(e))


def _report_outcome(outcome, junit: Path | None, summary: Path | None) -> None:
    from reports.ci import write_junit, write_summary

    table = Table("", "condition", "gate", "value", "95% CI", box=box.SIMPLE_HEAVY,
                  title=f"gates of suite {outcome.suite} (seeds {outcome.seeds})")
    for g in outcome.gates:
        m = g.measurement
        ci = "-" if m.ci_low is None else f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
        table.add_row("[green]ok[/]" if g.passed else "[bold red]FAIL[/]", g.condition, g.gate.describe(),
                      _fmt(m.value), ci)
    console.print(table)
    for condition, r in outcome.conditions.items():
        console.print(f"{condition}: {r.correction.describe()}, {r.correction.firing_uncorrected} uncorrected; "
                      f"{len(r.measurements)} measurements (`loopprobe probes RUN` lists them)", highlight=False)
    for line in outcome.recomputed:
        console.print(escape(line), highlight=False, soft_wrap=True)
    try:
        if junit:
            write_junit(junit, outcome)
        if summary:
            write_summary(summary, outcome)
    except (RunError, OSError) as e:
        fail(str(e))
    failed = [g for g in outcome.gates if not g.passed]
    for g in failed:
        err_console.print(f"[bold red]gate failed:[/] {escape(g.message)}", highlight=False, soft_wrap=True)
    for condition, why in outcome.incomplete.items():
        err_console.print(f"[bold red]incomplete:[/] {escape(condition)}: {escape(why)}; no gate on it holds",
                          highlight=False, soft_wrap=True)
    if failed or outcome.incomplete:
        raise typer.Exit(1)
    console.print(f"[bold green]PASSED[/]: {len(outcome.gates)} of {len(outcome.gates)} gates hold"
                  if outcome.gates else "no gates in this suite: nothing to fail")


_Junit = Annotated[Path | None, typer.Option(help="write JUnit XML, one testcase per gate")]
_Summary = Annotated[Path | None, typer.Option(help="write a Markdown summary (for a CI step summary)")]


@app.command()
def run(
    suite_file: Annotated[str | None, typer.Argument(metavar="SUITE", help=_SUITE_HELP,
                                                     show_default=DEFAULT_SUITE)] = None,
    out: Annotated[Path | None, typer.Option(help="output directory (default: runs/<suite>-<time>)")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="run this one seed instead of the suite's seeds")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="base-model cache (default ~/.cache/loopprobe)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="always train the base model")] = False,
    junit: _Junit = None,
    summary: _Summary = None,
    force: _Force = False,
    probe_files: ProbeFiles = None,
    params: Params = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="run conditions x seeds in this many single-thread "
                                                             "processes (same artifacts as one)")] = 1,
    ray: Annotated[str | None, typer.Option(metavar="ADDRESS", help="run them as Ray tasks: 'local' starts a "
                                            "local Ray (with --workers CPUs), or a cluster address; OUT and the "
                                            "cache must be on a filesystem every node sees")] = None,
) -> None:
    """Run a suite (default: the shipped suite smoke): the loop for each condition and seed, its probes, its gates.

    Exit 0 when every gate holds, 1 when a gate fails, 2 for a usage or configuration error.
    """
    from harness.app.suite_runner import run_dir, run_suite
    from harness.models.tiny.pretrain import default_cache_dir
    from harness.progress import RichReporter
    from probes import ProbeError

    suite = _load_suite(suite_file, probe_files, params)
    suite_file = suite_file or DEFAULT_SUITE
    out = out or Path("runs") / f"{suite.suite.name}-{datetime.now():%Y%m%d-%H%M%S}"
    cache = None if no_cache else (cache_dir or default_cache_dir())
    seeds = [seed] if seed is not None else suite.suite.seeds
    _check_cost(suite, seeds, out, cache, force, str(suite_file))
    if suite.suite.size == "large":
        import torch

        if not torch.cuda.is_available():
            err_console.print(f"[yellow]warning:[/] {suite_file} is a large suite (real pretrained models); on "
                              "this CPU-only machine a round takes hours. A GPU is advised.", soft_wrap=True)
    _check_paths(out=out, junit=junit, summary=summary)
    t0 = time.perf_counter()
    try:
        outcome = run_suite(suite, out, cache, RichReporter(console), seeds, workers, ray)
    except (RunError, ProbeError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail(f"interrupted; rerun with --out {out} to resume at the first incomplete round", code=130)
    for condition in suite.condition_names():
        for s in seeds:
            console.print(round_table(RunStore(run_dir(out, condition, s))))
    console.print(f"artifacts in {out}  ({time.perf_counter() - t0:.0f} s)")
    _report_outcome(outcome, junit, summary)


@app.command()
def check(
    run_path: Annotated[Path, typer.Argument(metavar="RUN", help="a run directory or a suite output directory")],
    suite_file: Annotated[str, typer.Argument(metavar="SUITE", help=_SUITE_HELP)],
    junit: _Junit = None,
    summary: _Summary = None,
    probe_files: ProbeFiles = None,
    params: Params = None,
) -> None:
    """Evaluate a suite's probes and gates on recorded runs, without running the loop again."""
    from harness.app.suite_runner import check_suite
    from probes import ProbeError

    suite = _load_suite(suite_file, probe_files, params)
    _check_paths(junit=junit, summary=summary)
    try:
        outcome = check_suite(suite, run_path)
    except (RunError, ProbeError) as e:
        fail(str(e))
    _report_outcome(outcome, junit, summary)


@app.command("suites")
def suites_command() -> None:
    """List the shipped suites: name, size, measured runtime, description (`loopprobe run NAME` runs one)."""
    from harness.app.shipped import shipped_suites, suite_info, suites_dir

    table = Table("suite", "size", "runtime", "description", box=box.SIMPLE_HEAVY, title="shipped suites",
                  caption=escape(f"in {suites_dir()} · runtime: measured on 2 CPU cores ([suite] expected_seconds)"
                                 " · large: real pretrained models, GPU advised"))
    for name, path in shipped_suites().items():
        info = suite_info(path)
        seconds = info.get("expected_seconds")
        runtime = "-" if seconds is None else (f"{seconds} s" if seconds < 120 else f"{seconds / 60:.0f} min")
        description = str(info.get("description", "")).strip().splitlines()
        table.add_row(name + (" (default)" if name == DEFAULT_SUITE else ""), str(info.get("size", "small")),
                      runtime, escape(description[0] if description else ""))
    console.print(table)


@app.command("verify-suites")
def verify_suites(
    names: Annotated[list[str] | None, typer.Argument(metavar="[NAME...]",
                                                      help="shipped suite names or suite files (default: every "
                                                           "shipped suite)")] = None,
    out: Annotated[Path, typer.Option(help="suite outputs go to OUT/<name> (resumable)")] = Path("runs/verify"),
    budget: Annotated[float | None, typer.Option(help="seconds: run the suites whose measured runtime fits")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="base-model cache (default ~/.cache/loopprobe)")] = None,
    junit: _Junit = None,
    force: _Force = False,
) -> None:
    """Run shipped suites and print every gate with its value, CI and the suite's runtime; exit 1 if a gate fails."""
    import torch

    from harness.app.suite import SuiteError
    from harness.app.verify import plan, verify
    from harness.models.tiny.pretrain import default_cache_dir
    from harness.progress import RichReporter
    from probes import ProbeError
    from reports.ci import write_junit

    try:
        chosen = plan(names or [], budget, torch.cuda.is_available())
    except SuiteError as e:
        fail(str(e))
    for name, why in chosen.skipped:
        console.print(f"skipped {name}: {why}", highlight=False)
    for name, suite in chosen.run:  # every suite's cost before any work
        _check_cost(suite, suite.suite.seeds, out / name, cache_dir or default_cache_dir(), force, name)
    table = Table("", "suite", "gate", "value", "95% CI", "method", "runtime", box=box.SIMPLE_HEAVY,
                  title="verify-suites")
    failed, outcomes = 0, []
    for name, suite in chosen.run:
        try:
            outcome, seconds = verify(suite, out / name, cache_dir or default_cache_dir(), RichReporter(console))
        except (RunError, ProbeError) as e:
            fail(f"{name}: {e}")
        outcomes.append(outcome)
        for g in outcome.gates:
            m = g.measurement
            ci = "-" if m.ci_low is None else f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
            table.add_row("[green]ok[/]" if g.passed else "[bold red]FAIL[/]", name,
                          escape(g.gate.describe() if g.gate.baseline else f"[{g.condition}] {g.gate.describe()}"),
                          _fmt(m.value), ci,
                          str(m.details.get("method", "")), f"{seconds:.0f} s")
            failed += not g.passed
    console.print(table)
    if junit:
        write_junit(junit, outcomes)
    console.print(f"{len(chosen.run)} suites run, {len(chosen.skipped)} skipped; "
                  f"{sum(len(o.gates) for o in outcomes) - failed} of {sum(len(o.gates) for o in outcomes)} gates hold")
    if failed:
        raise typer.Exit(1)


@app.command("verify")
def verify_command(
    path: Annotated[Path, typer.Argument(metavar="RUN|OUT", help="a run, condition or suite output directory")],
) -> None:
    """Check every file of recorded runs against the sha256 written with it; list what is damaged or missing.

    Exit 0 when every file is intact, 1 when any is damaged, missing or unrecorded, 2 when PATH holds no run.
    """
    from harness.app.audit import audit

    try:
        checked, problems = audit(path)
    except RunError as e:
        fail(str(e))
    for line in problems:
        err_console.print(f"[bold red]damaged:[/] {escape(line)}", highlight=False, soft_wrap=True)
    if problems:
        err_console.print(f"{len(problems)} problems in {path} ({checked} files checked)", highlight=False)
        raise typer.Exit(1)
    console.print(f"[bold green]intact[/]: {checked} files of {path} match their recorded sha256", highlight=False)


@app.command()
def show(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Print the per-round table of an existing run."""
    try:
        store = RunStore(run_dir)
        store.read_manifest()
    except RunError as e:
        fail(str(e))
    console.print(round_table(store))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


@app.command()
def report(
    run_path: Annotated[Path, typer.Argument(metavar="RUN", help="a run, condition or suite output directory")],
    out: Annotated[Path | None, typer.Option(help="write the three files here (default: into RUN)")] = None,
) -> None:
    """Write report.json, report.md and report.html of a run or a suite output (re-renders at any time)."""
    from reports.commands import report_command

    report_command(run_path, out, console, fail)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_A RUN_B [RUN...]",
                                               help="runs, conditions (OUT/<condition>) or suite outputs")],
    md: Annotated[Path | None, typer.Option("--md", help="write the comparison as Markdown")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="write it as a self-contained HTML page")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write it as JSON (every difference)")] = None,
) -> None:
    """Compare runs by probe and round against the first (B - A with 95% CIs, paired where items match)."""
    from reports.commands import compare_command

    compare_command(runs, md, html, json_out, console, fail)


app.command("probes")(probes_command)
app.command("new-probe")(new_probe_command)
app.add_typer(suite_app, name="suite")

if __name__ == "__main__":
    app()
