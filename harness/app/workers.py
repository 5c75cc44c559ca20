"""A suite's runs (conditions x seeds) in separate single-thread processes, on this machine
(`run_parallel`: both cores busy) or on a Ray cluster (`run_on_ray`). The artifacts are a sequential run's:
each run depends only on its configuration and seed, and runs that share a base model take turns at its
cache entry, so it is trained once.

A local worker is a fresh `spawn` process (no state inherited from the parent's torch) that runs one run at a
time with `run_loop` and sends its progress lines to the parent, which prints them prefixed with the run.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness.artifacts import RoundFailed, RunError
from harness.config import RunConfig
from harness.progress import Advance, Reporter

MAX_WORKERS = 64


class QueueReporter:
    """A worker's Reporter: one line per finished task and per log message, sent to the parent."""

    def __init__(self, label: str, lines: Any):
        self.label, self.lines = escape(f"[{label}]"), lines  # escaped: rich would read "[run]" as markup

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        t0, done = time.perf_counter(), [0]
        yield lambda n: done.__setitem__(0, done[0] + n)
        self.lines.put(f"{self.label} {description}: {done[0]}/{total} ({time.perf_counter() - t0:.0f} s)")

    def log(self, message: str) -> None:
        self.lines.put(f"{self.label} {message}")


def _run_one(config_json: str, out: str, cache_dir: str | None, label: str | None = None,
             lines: Any = None) -> str | None:
    """In a worker: one run; None when it completed, the failed round's message when it stopped there.
    With `lines` (a queue), its progress lines go there, prefixed with `label`; without, it runs silently
    (a Ray task, which reports only its end)."""
    from harness.loop import run_loop

    cfg = RunConfig.model_validate_json(config_json)
    reporter = QueueReporter(label or "", lines) if lines is not None else None
    try:
        run_loop(cfg, Path(out), Path(cache_dir) if cache_dir else None, reporter)
    except RoundFailed as e:  # recorded in the run; its gates cannot hold
        return str(e)
    return None


def _follow_up(function: Callable[..., str], args: tuple) -> str:
    """In the worker: work that needs some runs finished (a condition's probes). Returns what it did, or that
    it failed: a failure is said, not raised, since the caller redoes that work itself and reports it there."""
    try:
        return function(*args)
    except Exception as e:  # noqa: BLE001
        return f"not done in a worker ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"


FollowUps = dict[str, tuple[set[str], Callable[..., str], tuple]]  # name -> (run labels, function, args)


def run_parallel(jobs: list[tuple[str, RunConfig, Path]], cache_dir: Path | None, reporter: Reporter,
                 workers: int, follow_ups: FollowUps | None = None) -> None:
    """Run every (label, config, run directory) in `workers` processes; progress lines go to `reporter`. A
    RunError in one run stops the others and is raised, naming the run. Each follow-up (a picklable function
    and its arguments) is run in a worker once the runs it names have finished (a condition's probes, while
    other runs still go on)."""
    if not 1 <= workers <= MAX_WORKERS:
        raise RunError(f"--workers {workers}: choose 1 to {MAX_WORKERS}")
    waiting = dict(follow_ups or {})
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        lines = manager.Queue()
        stop = threading.Event()
        printer = threading.Thread(target=_print_lines, args=(lines, reporter, stop), daemon=True)
        printer.start()
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
                runs = {pool.submit(_run_one, cfg.model_dump_json(), str(out), str(cache_dir) if cache_dir else None,
                                    label, lines): label for label, cfg, out in jobs}
                pending, finished = set(runs), set()
                named: dict[Future, str] = {}
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            if future in runs:
                                _raise_or_say(runs[future], future, reporter)
                                finished.add(runs[future])
                            else:
                                reporter.log(f"{escape(f'[{named[future]}]')} {escape(str(future.result()))}")
                        for name, (labels, function, args) in list(waiting.items()):
                            if labels <= finished:
                                del waiting[name]
                                future = pool.submit(_follow_up, function, args)
                                pending.add(future)
                                named[future] = name
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)  # runs not started are dropped
                    raise
        finally:
            stop.set()
            printer.join()


def _raise_or_say(label: str, future: Future, reporter: Reporter) -> None:
    try:
        failed = future.result()
    except RunError as e:
        raise RunError(f"{label}: {e}") from None
    except Exception as e:  # noqa: BLE001 (a worker that died: one line naming the run)
        raise RunError(f"{label}: its worker process failed ({type(e).__name__}: {e}); run it "
                       "again without --workers to see the error") from None
    if failed:
        reporter.log(f"[bold red]{escape(f'[{label}]')} {escape(failed)}[/]")


def run_on_ray(jobs: list[tuple[str, RunConfig, Path]], cache_dir: Path | None, reporter: Reporter,
               address: str, cpus: int | None = None) -> None:
    """Run every job as a one-CPU Ray task. `address` "local" starts a local Ray instance (with `cpus` CPUs,
    default all) for the duration; anything else is passed to `ray.init` (e.g. "auto", "ray://head:10001").
    The tasks write OUT and the base-model cache directly, so on a cluster both must be paths every node
    sees (a shared filesystem)."""
    try:
        import ray
    except ImportError:
        raise RunError("--ray needs Ray: pip install 'loopprobe[ray]'") from None
    local = address == "local"
    ray.init(address=None if local else address, num_cpus=cpus if local else None, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(num_cpus=1)(_run_one)
        labels = {task.remote(cfg.model_dump_json(), str(out), str(cache_dir) if cache_dir else None): label
                  for label, cfg, out in jobs}
        pending = list(labels)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            label = labels[done[0]]
            try:
                failed = ray.get(done[0])
            except ray.exceptions.RayTaskError as e:
                cause = e.cause if isinstance(e.cause, RunError) else e
                raise RunError(f"{label}: {str(cause).splitlines()[-1] if str(cause) else type(cause).__name__}"
                               ) from None
            reporter.log(f"[bold red]{escape(f'[{label}]')} {escape(failed)}[/]" if failed else
                         f"{escape(f'[{label}]')} finished ({len(labels) - len(pending)} of {len(labels)})")
    finally:
        ray.shutdown()


def _print_lines(lines: Any, reporter: Reporter, stop: threading.Event) -> None:
    while not (stop.is_set() and lines.empty()):
        try:
            reporter.log(lines.get(timeout=0.2))
        except queue.Empty:
            continue
        except (EOFError, OSError):  # the manager went away
            return
