"""`loopprobe report` and `loopprobe compare` (harness.app.cli holds only their signatures)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness.artifacts import RunError, write_atomic
from probes import ProbeError


def _errors(fail: Callable[[str], None], action: Callable[[], object]):
    """Run `action`; a problem the user can fix becomes one line through `fail` (exit 2), never a traceback."""
    try:
        return action()
    except (RunError, ProbeError) as e:
        fail(str(e))
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        fail(f"{where}{e.strerror or e}; check the path and its permissions")


def report_command(run_path: Path, out: Path | None, console: Console, fail: Callable[[str], None]) -> None:
    from reports.build import build_report, write_report

    t0 = time.perf_counter()
    report = _errors(fail, lambda: build_report(run_path))
    paths = _errors(fail, lambda: write_report(report, out or run_path))
    v = report.verdict
    gates = f"{v.gates - v.gates_failed} of {v.gates} gates hold; " if v.gates else ""
    console.print(f"{report.kind} {escape(report.name)}: {gates}{escape(v.correction)}; {v.measurements} "
                  "measurements in all", highlight=False)
    for line in report.recomputed + [f"INCOMPLETE: {why}" for why in v.incomplete]:
        console.print(escape(line), highlight=False, soft_wrap=True)
    console.print(f"wrote {', '.join(escape(str(p)) for p in paths)} ({time.perf_counter() - t0:.1f} s)")


def compare_command(runs: list[Path], md: Path | None, html: Path | None, json_out: Path | None, console: Console,
                    fail: Callable[[str], None]) -> None:
    from reports.compare import compare
    from reports.compare_render import comparison_html, comparison_markdown, comparison_tables, notes
    from reports.sources import expand

    sources = _errors(fail, lambda: expand(runs))
    if len(sources) < 2:
        fail(f"{runs[0]}: only one run or condition to compare; pass two or more runs (RUN_A RUN_B ...) or a "
             "suite output with two or more conditions")
    comparison = _errors(fail, lambda: compare(sources))
    for table in comparison_tables(comparison):
        console.print(table)
    for ref in comparison.runs:
        if ref.incomplete:
            console.print(f"[bold red]INCOMPLETE[/] {escape(ref.label)}: {escape(ref.incomplete)}", soft_wrap=True)
    for pair in comparison.pairs:
        for line in notes(pair):
            console.print(escape(line), highlight=False, soft_wrap=True)
        for h in pair.headlines:
            console.print(f"- {escape(h.verdict)}", highlight=False, soft_wrap=True)
        console.print(f"{escape(pair.b)} vs {escape(pair.a)}: {escape(pair.correction)} (--md, --html or --json "
                      "list them)", soft_wrap=True)
    for path, render in ((md, comparison_markdown), (html, comparison_html),
                         (json_out, lambda c: c.model_dump_json(indent=1))):
        if path is not None:
            _errors(fail, lambda: write_atomic(path, render(comparison)))  # noqa: B023 (called here)
            console.print(f"wrote {escape(str(path))}")
