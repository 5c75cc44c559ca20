"""`loopprobe verify`: check every file of a run, a condition or a suite output against the hashes recorded
when it was written, and list every damaged, missing or unrecorded file (one line each)."""

from __future__ import annotations

from pathlib import Path

from harness.artifacts import RunError, RunStore
from harness.integrity import load_checked


def run_dirs(path: Path) -> list[Path]:
    """The run directories (with manifest.json) at or below `path`."""
    path = Path(path)
    if (path / "manifest.json").exists():
        return [path]
    # Hidden directories below `path` are temporaries; those above it (say `.ci-out/`) are the user's choice.
    return sorted(p.parent for p in path.rglob("manifest.json")
                  if not any(s.startswith(".") for s in p.relative_to(path).parts))


def audit(path: Path) -> tuple[int, list[str]]:
    """(files checked, problems) for a run or any directory holding runs; a RunError when there is none."""
    from probes import read_results
    from probes.gates import SuiteOutcome

    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: not a directory; pass a run or suite output directory")
    runs = run_dirs(path)
    if not runs:
        raise RunError(f"{path}: no loopprobe run here (no manifest.json at or below it)")
    checked, problems = 0, []
    for run in runs:
        store = RunStore(run)
        problems += store.problems()
        checked += 1 + sum(1 + len(store.read_round(r).files) for r in store.recorded_rounds()
                           if _readable(store, r))
    holders = {path}
    for run in runs:  # the run and every directory between it and `path` (conditions, suite outputs)
        holders.update(d for d in [run, *run.parents] if d == path or path in d.parents)
    for results in sorted(holders):
        if (results / "probes.json").exists():
            checked += 2
            try:
                read_results(results)
            except RunError as e:
                problems.append(str(e))
        if (results / "suite.json").exists():
            checked += 1
            try:
                load_checked(results / "suite.json", SuiteOutcome, f"recompute it with `loopprobe check {results} SUITE`")
            except RunError as e:
                problems.append(str(e))
    return checked, problems


def _readable(store: RunStore, r: int) -> bool:
    try:
        store.read_round(r)
        return True
    except RunError:
        return False
