"""Run an inspect `Task` against one round's model and keep its `.eval` log in the run directory.

    path = run_inspect_task("harness.inspect_bridge.tasks.deference:deference", model, round=2,
                            log_dir=run / "round-002" / "inspect", seed=7, task_args={"run_dir": str(run)})
    # -> run/round-002/inspect/deference.eval   (`inspect view --log-dir run/round-002/inspect`)

The log is written under a temporary directory and renamed to `<name>.eval` (the task function's name unless
given), so a round's directory never holds a half-written log and the probe `inspect.task_drift` finds every
round's log of one task under one name.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any

from harness.artifacts import RunError

INSPECT_DIR = "inspect"  # round-NNN/inspect/<task>.eval


def load_task(task_ref: str, task_args: dict[str, Any] | None = None):
    """The Task that `module:function` makes with `task_args`."""
    from inspect_ai import Task

    module_name, sep, function = task_ref.partition(":")
    if not sep or not module_name or not function.isidentifier():
        raise RunError(f"inspect task {task_ref!r}: name it as module:function, e.g. "
                       "harness.inspect_bridge.tasks.deference:deference")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise RunError(f"inspect task {task_ref!r}: cannot import {module_name} ({e})") from None
    factory = getattr(module, function, None)
    if not callable(factory):
        raise RunError(f"inspect task {task_ref!r}: {module_name} has no function {function!r}")
    try:
        task = factory(**(task_args or {}))
    except TypeError as e:
        raise RunError(f"inspect task {task_ref!r}: bad task arguments ({e})") from None
    if not isinstance(task, Task):
        raise RunError(f"inspect task {task_ref!r}: {function}() returned {type(task).__name__}, not an inspect Task")
    return task


def run_inspect_task(task_ref: str, backend: Any, round: int, log_dir: Path, seed: int, *,
                     task_args: dict[str, Any] | None = None, name: str | None = None, max_tokens: int = 128,
                     temperature: float = 1.0, batch_size: int = 64, limit: int | None = None,
                     metadata: dict[str, Any] | None = None) -> Path:
    """Evaluate `task_ref` on `backend` (round `round`'s live model); return the path of its `.eval` log.

    `max_tokens` and `temperature` are defaults a task's own GenerateConfig overrides; `seed` seeds sampling.
    The log's metadata records round and seed (inspect records the live model argument as None)."""
    import inspect_ai
    from inspect_ai.model import get_model

    import harness.inspect_bridge.provider  # noqa: F401  (registers the `loopprobe` provider)

    task = load_task(task_ref, task_args)
    name = name or task_ref.partition(":")[2]
    log_dir = Path(log_dir)
    tmp = log_dir / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # memoize=False: get_model memoises by name and args, and the live model serialises as None
    model = get_model(f"loopprobe/round-{round}", memoize=False, backend=backend, seed=seed, max_tokens=max_tokens,
                      temperature=temperature, batch_size=batch_size)
    try:
        logs = inspect_ai.eval(task, model=model, log_dir=str(tmp), log_format="eval", display="none",
                               log_level="warning", max_samples=batch_size, limit=limit, score=True,
                               metadata={"loopprobe_round": round, "loopprobe_seed": seed, "task_ref": task_ref,
                                         **(metadata or {})})
        log = logs[0]
        if log.status != "success":
            why = log.error.message.splitlines()[0] if log.error else log.status
            raise RunError(f"inspect task {task_ref!r} on round {round}: {why}")
        written = sorted(tmp.glob("*.eval"))
        if len(written) != 1:
            raise RunError(f"inspect task {task_ref!r} on round {round}: expected one .eval log in {tmp}, "
                           f"found {len(written)}")
        final = log_dir / f"{name}.eval"
        os.replace(written[0], final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
