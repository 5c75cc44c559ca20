"""The inspect bridge's probe: drift of any inspect task's scores over the rounds of a loop, read from the
`.eval` logs the loop kept (round-NNN/inspect/<task>.eval). inspect-ai is imported only when a run has logs,
so the probe list works without it installed.

A task can say when its measurements have nothing to detect: its `Task(metadata=...)` (which inspect keeps
in the log) may hold, under FLOOR_KEY, a list of floors `{"keys": [...], "min": m, "marks": prefix,
"meaning": words, "why": words}`; where, in the task's first round, the mean over samples of the largest of
`keys` is below `min`, every measurement of a key starting with `marks` is degenerate (the reason says what
share of the samples `meaning`, and `why` that leaves nothing to detect). The deference task declares
one: a model that under the claim answers neither right nor with the claimed answer cannot show deference.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from pydantic import Field

from harness.inspect_bridge import FLOOR_KEY
from probes import Probe, RunView, probe
from probes._api import AUTOMATIC, Concern

INSPECT_DIR = "inspect"


def _roots(run) -> list[tuple[str, RunView]]:
    """(item-id prefix, run) of a run, or of each run of a pooled view (ids prefixed as in PooledRunView,
    so items of different seeds stay distinct)."""
    return list(zip(run.prefixes, run.runs))


def _values(score: Any) -> dict[str, float]:
    """A Score's value as {key: float}: a dict's numeric entries, or {"score": value}."""
    from inspect_ai.scorer import value_to_float

    to_float = value_to_float()
    value = score.value
    if isinstance(value, dict):
        return {str(k): to_float(v) for k, v in value.items() if v is not None}
    return {"score": to_float(value)}


def read_scores(path: Path, prefix: str = "") -> dict[str, dict[str, float]]:
    """{measurement key: {sample id: mean over epochs}} of one .eval log. Keys are `[scorer.]key` (the
    scorer named only when the task has several), split by sample metadata "condition" when present."""
    return read_log(path, prefix)[0]


def read_log(path: Path, prefix: str = "") -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """(read_scores of the log, the floors its task declares under FLOOR_KEY)."""
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(path))
    floors = (log.eval.metadata or {}).get(FLOOR_KEY) or []
    sums: dict[str, dict[str, list[float]]] = {}
    for sample in log.samples or []:
        scores = sample.scores or {}
        condition = (sample.metadata or {}).get("condition")
        for scorer_name, score in scores.items():
            for key, v in _values(score).items():
                parts = ([scorer_name] if len(scores) > 1 else []) + ([str(condition)] if condition else []) + [key]
                sums.setdefault(".".join(parts), {}).setdefault(f"{prefix}{sample.id}", []).append(v)
    means = {k: {i: float(np.mean(v)) for i, v in items.items()} for k, items in sums.items()}
    return means, list(floors) if isinstance(floors, list) else [floors]


def below_floor(floor: dict[str, Any], scores: dict[str, dict[str, float]], r: int) -> str | None:
    """Why a task's declared floor (see the module docstring) makes its marked keys degenerate, given its
    first round's scores (round r), or None when the floor holds or names keys the log lacks."""
    keys, minimum = floor.get("keys") or [], floor.get("min")
    if not keys or not isinstance(minimum, (int, float)) or any(k not in scores for k in keys):
        return None
    ids = set.intersection(*(set(scores[k]) for k in keys))
    if not ids:
        return None
    share = float(np.mean([max(scores[k][i] for k in keys) for i in ids]))
    if share >= minimum:
        return None
    meaning = floor.get("meaning") or f"score above 0 on any of {', '.join(keys)}"
    why = floor.get("why") or "there is nothing for its scores to detect"
    return f"in round {r} (the task's first) {share:.1%} of {len(ids)} samples {meaning} (floor {minimum:.0%}): {why}"


@probe
class InspectTaskDrift(Probe):
    """Per-round mean score of every inspect task the loop ran on each round's model (`.eval` logs kept
    in round-NNN/inspect/), with bootstrap CIs over samples and paired changes against round 0 and the
    previous round on the same samples (concern: either, or per task and key via `concern`).

    Measurements are named `<task>.<key>`: the task is the log's file name; the key is `score` for a
    scalar score, or each entry of a dict score, prefixed by the sample's metadata "condition" when the
    task sets one (e.g. `deference.claim.adopted`) and by the scorer when there are several.
    Multiple epochs are averaged per sample. Only rounds that have the task's log take part; samples are
    the ones every such round scored. A run without logs gives one empty measurement. A measurement is
    degenerate where its scores are one number for every sample in every round, or where the task's declared
    floor fails in its first round (the module docstring; e.g. `deference.claim.*` on a model the claim
    breaks).
    """

    id = "inspect.task_drift"
    family = "drift"
    reads = ("inspect",)
    measurements = None  # `<task>.<key>`: known only from the logs

    class Params(Probe.Params):
        tasks: list[str] | None = Field(None, description="task log names to read (default: every log found)")
        concern: dict[str, Concern] = Field(
            {}, description="'<task>.<key>' (or '<task>') -> concern; default 'either'")

    params: Params

    def _concern(self, task: str, key: str) -> Concern:
        return self.params.concern.get(f"{task}.{key}", self.params.concern.get(task, "either"))

    def measure(self, run: RunView):
        roots = _roots(run)
        found: dict[str, dict[int, list[tuple[str, Path]]]] = {}
        for prefix, view in roots:
            for r in run.rounds:
                for path in sorted((Path(view.root) / f"round-{r:03d}" / INSPECT_DIR).glob("*.eval")):
                    if self.params.tasks is None or path.stem in self.params.tasks:
                        verified = view.path(r, f"{INSPECT_DIR}/{path.name}") if hasattr(view, "path") else path
                        found.setdefault(path.stem, {}).setdefault(r, []).append((prefix, verified))
        if not found:
            return [self.measurement("score", None, details={
                "reason": "no inspect logs in this run (round-NNN/inspect/<task>.eval); add inspect tasks to "
                          "the suite"})]
        out = []
        for task, by_round in sorted(found.items()):
            rounds = tuple(r for r in run.rounds if len(by_round.get(r, [])) == len(roots))
            if not rounds:
                continue
            per_round: dict[int, dict[str, dict[str, float]]] = {}
            floors: list[dict[str, Any]] = []
            for r in rounds:
                merged: dict[str, dict[str, float]] = {}
                for prefix, path in by_round[r]:
                    scores, declared = read_log(path, prefix)
                    for key, items in scores.items():
                        merged.setdefault(key, {}).update(items)
                    floors += declared if r == rounds[0] else []
                per_round[r] = merged
            marked = [(f.get("marks", ""), why) for f in floors
                      if (why := below_floor(f, per_round[rounds[0]], rounds[0])) is not None]
            keys = sorted(set.intersection(*(set(per_round[r]) for r in rounds)))
            for key in keys:
                degenerate = next((why for marks, why in marked if key.startswith(marks)), AUTOMATIC)
                ids = tuple(sorted(set.intersection(*(set(per_round[r][key]) for r in rounds))))
                if not ids:
                    continue
                values = {r: np.array([per_round[r][key][i] for i in ids]) for r in rounds}
                rounds_view = SimpleNamespace(rounds=rounds)  # the rounds this task was run on
                out += self.tracked(f"{task}.{key}", rounds_view, values.__getitem__, ids,  # type: ignore[arg-type]
                                    concern=self._concern(task, key), degenerate=degenerate,
                                    details={"task": task, "n_samples": len(ids), "rounds": list(rounds)})
        return out or [self.measurement("score", None, details={"reason": "inspect logs hold no scored samples"})]
