"""The `loopprobe` command line."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from harness.artifacts import RunError, RunStore

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Run self-improvement loops under controlled conditions and probe what goes wrong.")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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
    for r in store.complete_rounds():
        rec = store.read_round(r)
        cells = [str(r)]
        for _, key, fmt in _COLUMNS[1:-1]:
            value = rec.metrics.get(key)
            cells.append("-" if value is None else fmt.format(value))
        cells.append(f"{sum(rec.seconds.values()):.1f}")
        table.add_row(*cells)
    return table


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"field {where}: {err['msg']}" + (f" (got {err['input']!r})" if err["type"] != "missing" else "")


def load_config_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror}); pass an existing JSON file to --config")
    except json.JSONDecodeError as e:
        fail(f"{path}: line {e.lineno}: not valid JSON ({e.msg}); fix the file's syntax")
    if not isinstance(data, dict):
        fail(f"{path}: top level must be a JSON object of RunConfig fields, not {type(data).__name__}")
    return data


@app.command()
def run(
    out: Annotated[Path | None, typer.Option(help="run directory (default: runs/<time>-seed<N>)")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of RunConfig fields (default: built-in)")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="master seed of the run [default: 0]")] = None,
    rounds: Annotated[int | None, typer.Option(min=0, help="training rounds after round 0")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads; a fixed count gives bit-identical "
                                                "results [default: 1]")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="base-model cache (default ~/.cache/loopprobe)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="always train the base model")] = False,
) -> None:
    """Run the default self-improvement loop (LMSI on the embedded model) and record every round."""
    from harness.config import RunConfig
    from harness.loop import run_loop
    from harness.models.tiny.pretrain import default_cache_dir
    from harness.progress import RichReporter

    given = load_config_file(config) if config is not None else {}
    given = {**given, **{k: v for k, v in (("seed", seed), ("threads", threads)) if v is not None}}
    if rounds is not None:
        given["loop"] = {**given.get("loop", {}), "rounds": rounds}
    try:
        cfg = RunConfig.model_validate(given)
    except ValidationError as e:
        fail(f"{config or 'command line'}: {_first_error(e)}")
    out = out or Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-seed{cfg.seed}"
    cache = None if no_cache else (cache_dir or default_cache_dir())
    t0 = time.perf_counter()
    try:
        store = run_loop(cfg, out, cache, RichReporter(console))
    except RunError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail(f"interrupted; rerun with --out {out} to resume at the first incomplete round", code=130)
    console.print(round_table(store))
    console.print(f"artifacts in {out}  ({time.perf_counter() - t0:.0f} s)")


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


@app.command("probes")
def probes_command(
    run_dir: Annotated[Path | None, typer.Argument(help="a run directory; omit to list the probes")] = None,
    probe: Annotated[list[str] | None, typer.Option("--probe", "-p", help="probe id (repeatable; default all)")] = None,
    only_firing: Annotated[bool, typer.Option("--firing", help="print only measurements that fire")] = False,
) -> None:
    """Run the probe library over a run, print every measurement with its 95% CI, write probes.json."""
    from probes import ProbeError, RunView, registry, run_probes, write_results

    if run_dir is None:
        table = Table("probe", "family", "description", box=box.SIMPLE_HEAVY)
        for pid, cls in registry().items():
            table.add_row(pid, cls.family, cls.description())
        console.print(table)
        return
    t0 = time.perf_counter()
    try:
        view = RunView(run_dir)
        results = run_probes(view, {p: {} for p in probe} if probe else None)
        path = write_results(run_dir, results)
    except (RunError, ProbeError) as e:
        fail(str(e))
    table = Table("probe", "measurement", "round", "value", "95% CI", "fires", box=box.SIMPLE_HEAVY,
                  title=f"probes of {run_dir} (rounds {results.rounds[0]}..{results.rounds[-1]})")
    for m in results.measurements:
        if only_firing and not m.fires:
            continue
        ci = "-" if m.ci_low is None else f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
        table.add_row(m.probe, m.name, _fmt(m.round), _fmt(m.value), ci,
                      f"[bold red]yes ({'alarm' if m.alarm is not None else m.concern})[/]" if m.fires else "")
    console.print(table)
    console.print(f"{len(results.measurements)} measurements, "
                  f"{sum(m.fires for m in results.measurements)} firing; wrote {path} "
                  f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    app()
