"""What a report or a comparison reads: a run directory, a condition of a suite output (OUT/<condition>/
with seed-*/ runs, pooled), or a whole suite output (OUT/ with suite.json). Every problem is a RunError
whose one line names the path and the fix."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.artifacts import RunError, RunStore
from harness.integrity import load_checked
from probes import (
    PooledRunView,
    ProbeResults,
    RunView,
    read_results,
    recorded_selection,
    results_for,
)
from probes.gates import SuiteOutcome

_WHAT = "pass a run directory (with manifest.json), a condition directory (with seed-*/) or a suite output " \
        "directory (with suite.json), as `loopprobe run --out` wrote it"


@dataclass
class Source:
    """One thing to report on or compare: a run, or the pooled seeds of one condition."""

    label: str
    root: Path
    run_dirs: list[Path]
    view: RunView | PooledRunView
    results: ProbeResults | None = field(default=None, repr=False)
    recomputed: dict[str, str] = field(default_factory=dict, repr=False)  # probe id -> why it was recomputed

    @property
    def kind(self) -> str:
        return "run" if self.run_dirs == [self.root] else "condition"


def kind_of(path: Path) -> str:
    """"run", "condition" or "suite"; a RunError for anything else."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such directory; {_WHAT}")
    if not path.is_dir():
        raise RunError(f"{path}: not a directory; {_WHAT}")
    if (path / "manifest.json").exists():
        return "run"
    if (path / "suite.json").exists():
        return "suite"
    if _seed_dirs(path):
        return "condition"
    if _condition_dirs(path):
        return "suite"
    raise RunError(f"{path}: no manifest.json, suite.json or seed-*/ runs here; {_WHAT}")


def _seed_dirs(path: Path) -> list[Path]:
    return sorted((p for p in path.glob("seed-*") if (p / "manifest.json").exists()),
                  key=lambda p: (len(p.name), p.name))


def _condition_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and _seed_dirs(p))


def open_source(path: Path, label: str | None = None, seeds: list[int] | None = None) -> Source:
    """A run directory or a condition directory (its seed runs pooled, as the suite runner pools them)."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "suite":
        raise RunError(f"{path}: a suite output, not one run; name one of its conditions, e.g. "
                       f"{path / (_condition_dirs(path) or [Path('CONDITION')])[0].name}")
    if kind == "run":
        return Source(label or path.name, path, [path], RunView(path))
    dirs = [path / f"seed-{s}" for s in seeds] if seeds else _seed_dirs(path)
    missing = [d for d in dirs if not (d / "manifest.json").exists()]
    if missing:
        raise RunError(f"{missing[0]}: no run here; run the suite again with the same --out to finish it")
    views = [RunView(d) for d in dirs]
    return Source(label or path.name, path, dirs, views[0] if len(views) == 1 else PooledRunView(views))


def read_outcome(out: Path) -> SuiteOutcome | None:
    path = Path(out) / "suite.json"
    if not path.exists():
        return None
    return load_checked(path, SuiteOutcome, f"recompute it with `loopprobe check {out} SUITE`")


def suite_sources(out: Path) -> tuple[SuiteOutcome | None, list[Source]]:
    """Every condition of a suite output (its measurements are read from OUT/<condition>/probes.json, whose
    per-item sidecar the comparisons need, and recomputed where stale)."""
    out = Path(out)
    outcome = read_outcome(out)
    if outcome is not None:
        sources = []
        for condition in outcome.conditions:
            cond_dir = out / condition
            if not cond_dir.is_dir():
                raise RunError(f"{cond_dir}: suite.json names condition {condition!r} but its runs are missing; "
                               "report on the directory `loopprobe run` wrote")
            sources.append(open_source(cond_dir, condition, outcome.seeds))  # results: OUT/<condition>/probes.json
        return outcome, sources
    conditions = _condition_dirs(out)
    if not conditions:
        raise RunError(f"{out}: no conditions (OUT/<condition>/seed-<n>/) here; {_WHAT}")
    return None, [open_source(c) for c in conditions]


def expand(paths: list[Path]) -> list[Source]:
    """Sources for a comparison: suite outputs expand to their conditions; labels are made unique."""
    sources: list[Source] = []
    for p in paths:
        sources += suite_sources(p)[1] if kind_of(p) == "suite" else [open_source(p)]
    labels = [s.label for s in sources]
    for s in sources:
        if labels.count(s.label) > 1:  # e.g. seed-0 of two suites: name the parent too
            s.label = f"{s.root.parent.name}/{s.label}"
    seen: dict[str, int] = {}
    for s in sources:
        seen[s.label] = seen.get(s.label, 0) + 1
        if seen[s.label] > 1:
            s.label = f"{s.label}#{seen[s.label]}"
    return sources


def probe_results(source: Source, write: bool = False) -> ProbeResults:
    """The source's probe results, current: its probes.json where each probe's parameters, code and input
    artifacts are unchanged, the stale probes recomputed (and written back when `write`); the probes and
    parameters it recorded (a suite's selection), else the whole library. `source.recomputed` says what was
    recomputed and why."""
    if source.results is not None:
        return source.results
    recorded = read_results(source.root)
    selection = recorded_selection(recorded) if recorded else None
    results, why = results_for(source.view, source.root, selection, write=write)
    source.results, source.recomputed = results, why
    return results


def prompts(source: Source, ids: set[str]) -> dict[str, str]:
    """Prompt text of the given item ids (pooled ids carry their run's name as a prefix), read from round 0."""
    found: dict[str, str] = {}
    pooled = source.kind == "condition" and len(source.run_dirs) > 1
    for run in source.run_dirs:
        prefix = f"{run.name}/" if pooled else ""
        wanted = {i[len(prefix):] for i in ids if i.startswith(prefix)}
        store = RunStore(run)
        for file in ("samples.jsonl", "eval.jsonl"):
            if not wanted:
                continue
            with open(store.verified(source.view.rounds[0], file)) as f:
                for line in f:
                    if not wanted:
                        break
                    row = json.loads(line)
                    q = row["question_id"]
                    if q in wanted:
                        found[prefix + q] = row["prompt"]
                        wanted.discard(q)
    return found
