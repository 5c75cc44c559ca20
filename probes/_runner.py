"""Run a set of probes over a run and persist what they measured as probes.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.artifacts import write_atomic
from probes._api import Measurement, ProbeError, get_probe, registry
from probes._view import PooledRunView, RunView

RESULTS_SCHEMA_VERSION = 1


class ProbeInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    family: str
    description: str
    params: dict[str, Any]
    seconds: float


class ProbeResults(BaseModel):
    """The contents of probes.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = RESULTS_SCHEMA_VERSION
    run: str
    rounds: list[int]
    probes: list[ProbeInfo]
    measurements: list[Measurement]


def run_probes(run: RunView | PooledRunView | Path | str, selection: dict[str, dict[str, Any]] | None = None) -> ProbeResults:
    """Run the selected probes ({id: params}; default: every registered probe with its defaults)."""
    view = run if isinstance(run, (RunView, PooledRunView)) else RunView(run)
    selection = selection if selection is not None else {pid: {} for pid in registry()}
    infos, measurements = [], []
    for pid, params in selection.items():
        cls = get_probe(pid)
        instance = cls(**params)
        t0 = time.perf_counter()
        found = instance.measure(view)
        for m in found:
            if m.probe != pid:
                raise ProbeError(f"probe {pid} returned a measurement labelled {m.probe!r}")
        measurements += found
        infos.append(ProbeInfo(id=pid, family=cls.family, description=cls.description(),
                               params=instance.params.model_dump(mode="json"), seconds=time.perf_counter() - t0))
    return ProbeResults(run=view.name, rounds=list(view.rounds), probes=infos, measurements=measurements)


def write_results(run_dir: Path | str, results: ProbeResults) -> Path:
    path = Path(run_dir) / "probes.json"
    write_atomic(path, results.model_dump_json(indent=1))
    return path
