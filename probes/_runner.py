"""Run a set of probes over a run, correct for many tests, and persist what they measured: probes.json plus
its per-item sidecar (probes._records). Each probe's entry records what its numbers depend on (its
parameters and definition, a fingerprint of its code and of the artifacts it read, per round), so a later
reader can tell a current result from a stale one and recompute only what changed (`results_for`)."""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from harness.artifacts import RunError, write_atomic
from harness.integrity import dump_checked, load_checked
from probes import stats
from probes._api import Measurement, Probe, ProbeError, get_probe, registry
from probes._loading import load_probes, loaded_from
from probes._reads import DeclaredReads, check_reads
from probes._records import ITEMS_FILE, RecordKey, decode, encode
from probes._view import PooledRunView, RunView

RESULTS_SCHEMA_VERSION = 4  # 3: a checksum of its own content; 4: degenerate measurements, probe sources
CorrectionMethod = Literal["bh", "holm", "none"]
# The loop settings each kind of artifact was produced under: measurements of runs that differ in them are
# measurements of different things (compare refuses them).
SETTINGS_BY_READ = {"samples": ("k", "temperature", "max_new_tokens", "amplify"),
                    "eval": ("eval_k", "temperature", "max_new_tokens")}
FILE_BY_READ = {"samples": "samples.jsonl", "eval": "eval.jsonl", "reference": "reference.jsonl",
                "selected": "selected.jsonl"}


class ProbeInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    family: str
    description: str
    params: dict[str, Any]
    seconds: float
    definition: dict[str, Any] = Field({}, description="what its numbers mean: parameters (less the bootstrap "
                                       "seed), the domain and the loop settings of the artifacts it reads")
    code: str = Field("", description="sha256 of the source file that defines the probe")
    inputs: dict[str, str] = Field({}, description="round -> sha256 of the artifacts it read in that round")
    source: str = Field("", description="the file of a probe loaded by path (`[probes] load`, --probe-file), so "
                        "a report can load it again; empty for the library's and installed packages' probes")


class Correction(BaseModel):
    """The false-alarm control applied across a run's tested measurements."""

    model_config = ConfigDict(extra="forbid")

    method: CorrectionMethod = "bh"
    q: float = Field(0.05, gt=0, lt=1)
    tested: int = 0
    firing: int = 0
    firing_uncorrected: int = 0

    def describe(self) -> str:
        name = {"bh": "BH", "holm": "Holm", "none": "uncorrected"}[self.method]
        return f"{self.firing} of {self.tested} fire ({name}, q ≤ {self.q:g})"


class ProbeResults(BaseModel):
    """The contents of probes.json (its per-item records live in the sidecar `items_file`)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = RESULTS_SCHEMA_VERSION
    run: str
    rounds: list[int]
    correction: Correction = Correction()
    probes: list[ProbeInfo]
    measurements: list[Measurement]
    items_file: str | None = None
    items_sha256: str | None = None
    checksum: str | None = None  # sha256 of the rest (harness.integrity): an edited verdict is caught
    _records: dict[RecordKey, stats.ItemValues] | None = PrivateAttr(None)

    def records(self) -> dict[RecordKey, stats.ItemValues]:
        """(probe, measurement, round) -> the per-item values behind it."""
        if self._records is None:
            self._records = {(m.probe, m.name, r): v for m in self.measurements for r, v in m.item_records().items()}
        return self._records


# ---------------------------------------------------------------- what a probe's numbers depend on


def code_fingerprint(cls: type[Probe]) -> str:
    try:
        return hashlib.sha256(Path(inspect.getsourcefile(cls) or "").read_bytes()).hexdigest()
    except (OSError, TypeError):
        return ""


def _views(view: RunView | PooledRunView) -> list[RunView]:
    return list(view.views) if isinstance(view, PooledRunView) else [view]


def definition(cls: type[Probe], params: dict[str, Any], view: RunView | PooledRunView) -> dict[str, Any]:
    config = view.config
    loop, domain = config.get("loop") or {}, config.get("domain") or {}
    settings = {key: loop.get(key) for read in cls.reads for key in SETTINGS_BY_READ.get(read, ())}
    return {"params": {k: v for k, v in params.items() if k != "seed"}, "domain": domain.get("name", "arithmetic"),
            "settings": dict(sorted(settings.items()))}


def input_fingerprints(cls: type[Probe], view: RunView | PooledRunView) -> dict[str, str]:
    """Per round: a sha256 over the recorded hashes of the files the probe reads (every file of the round
    for a read it does not name), of each pooled run, with the run's name and domain config."""
    out = {}
    for r in view.rounds:
        h = hashlib.sha256()
        for v in _views(view):
            files = v.round_record(r)["files"]
            wanted = [FILE_BY_READ.get(read) for read in cls.reads]
            names = sorted(files) if None in wanted and "inspect" not in cls.reads else sorted(w for w in wanted if w)
            h.update(json.dumps([v.name, v.config.get("domain"), {n: files.get(n) for n in names}],
                                sort_keys=True, default=str).encode())
            if "inspect" in cls.reads:
                for path in sorted((v.root / f"round-{r:03d}" / "inspect").glob("*.eval")):
                    h.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
        out[str(r)] = h.hexdigest()
    return out


# ---------------------------------------------------------------- running and correcting


def correct(measurements: list[Measurement], method: CorrectionMethod = "bh", q: float = 0.05
            ) -> tuple[list[Measurement], Correction]:
    """Adjust the p-values of the tested measurements (Measurement.tested) as one family and decide `fires`
    from the adjusted ones; the others are returned unchanged."""
    tested = [i for i, m in enumerate(measurements) if m.tested]
    adjusted = stats.adjust_p([measurements[i].p_value for i in tested], method)
    out = list(measurements)
    for i, p in zip(tested, adjusted):
        m = out[i]
        if m.alarm is not None:
            side = m.alarm
        else:
            side = {"increase": m.value > m.null, "decrease": m.value < m.null,  # type: ignore[operator]
                    "either": m.value != m.null, "none": False}[m.concern]
        out[i] = m.model_copy(update={"p_adjusted": float(p), "q": q, "fires": bool(side and p <= q)})
    summary = Correction(method=method, q=q, tested=len(tested), firing=sum(out[i].fires for i in tested),
                         firing_uncorrected=sum(measurements[i].fires_uncorrected for i in tested))
    return out, summary


def measure_probe(pid: str, params: dict[str, Any], view: RunView | PooledRunView
                  ) -> tuple[list[Measurement], ProbeInfo]:
    """One probe's measurements over a view (uncorrected) and the record of what they depend on."""
    cls = get_probe(pid)
    check_reads(pid, cls.reads)
    instance = cls(**params)
    t0 = time.perf_counter()
    found = instance.measure(cast(RunView, DeclaredReads(view, pid, cls.reads)))  # it reads only what it declares
    for m in found:
        if m.probe != pid:
            raise ProbeError(f"probe {pid} returned a measurement labelled {m.probe!r}")
    resolved = instance.params.model_dump(mode="json")
    info = ProbeInfo(id=pid, family=cls.family, description=cls.description(), params=resolved,
                     seconds=time.perf_counter() - t0, definition=definition(cls, resolved, view),
                     code=code_fingerprint(cls), inputs=input_fingerprints(cls, view), source=loaded_from(cls))
    return found, info


def run_probes(run: RunView | PooledRunView | Path | str, selection: dict[str, dict[str, Any]] | None = None,
               correction: CorrectionMethod = "bh", q: float = 0.05) -> ProbeResults:
    """Run the selected probes ({id: params}; default: every registered probe with its defaults), then decide
    which measurements fire after the false-alarm correction across all of them."""
    view = run if isinstance(run, (RunView, PooledRunView)) else RunView(run)
    selection = selection if selection is not None else {pid: {} for pid in registry()}
    infos, measurements = [], []
    for pid, params in selection.items():
        found, info = measure_probe(pid, params, view)
        measurements += found
        infos.append(info)
    return _assemble(view, infos, measurements, correction, q)


def _assemble(view, infos, measurements, correction, q) -> ProbeResults:
    corrected, summary = correct(measurements, correction, q)
    return ProbeResults(run=view.name, rounds=list(view.rounds), correction=summary, probes=infos,
                        measurements=corrected)


def write_results(run_dir: Path | str, results: ProbeResults) -> Path:
    """probes.json and its sidecar, each atomically; the sidecar first, so probes.json names a present one."""
    run_dir = Path(run_dir)
    data = encode(results.records())
    write_atomic(run_dir / ITEMS_FILE, data)
    results.items_file, results.items_sha256 = ITEMS_FILE, hashlib.sha256(data).hexdigest()
    path = run_dir / "probes.json"
    text = dump_checked(results)
    write_atomic(path, text)
    results.checksum = json.loads(text)["checksum"]
    return path


def read_results(run_dir: Path | str) -> ProbeResults | None:
    """probes.json with its sidecar verified against the recorded hash; None when there is none, it is of an
    older schema, or its sidecar is missing (a RunError when either file is damaged)."""
    path = Path(run_dir) / "probes.json"
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raw = None  # load_checked names the problem below
    if isinstance(raw, dict) and raw.get("schema_version") != RESULTS_SCHEMA_VERSION:
        return None  # an older schema: recomputed
    results = load_checked(path, ProbeResults, "delete it and it is recomputed")
    if not results.items_file or not (Path(run_dir) / results.items_file).exists():
        return None
    data = (Path(run_dir) / results.items_file).read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != results.items_sha256:
        raise RunError(f"{Path(run_dir) / results.items_file}: sha256 {found[:12]}… does not match the "
                       f"{(results.items_sha256 or '')[:12]}… probes.json records; delete both and they are recomputed")
    try:
        results._records = decode(data)
    except ValueError as e:
        raise RunError(f"{Path(run_dir) / results.items_file}: {e}; delete it and it is recomputed") from None
    for m in results.measurements:  # reattach the records to the measurements that own them
        for p in m.series:
            p._items = results._records.get((m.probe, m.name, p.round))
        if m.round is not None:
            m._items = results._records.get((m.probe, m.name, m.round))
    return results


def recorded_selection(results: ProbeResults) -> dict[str, dict[str, Any]]:
    """The probes and parameters a probes.json records, as a selection: a probe loaded by path is loaded
    again from its recorded file when that file is unchanged (its sha256 is the recorded code fingerprint);
    a probe that is not known here is left out."""
    out = {}
    for p in results.probes:
        unchanged = p.source and Path(p.source).is_file() and \
            hashlib.sha256(Path(p.source).read_bytes()).hexdigest() == p.code
        if p.id not in registry() and unchanged:
            try:
                load_probes([Path(p.source)])
            except ProbeError:
                continue
        if p.id in registry():
            out[p.id] = p.params
    return out


def stale_probes(results: ProbeResults, view: RunView | PooledRunView, selection: dict[str, dict[str, Any]]
                 ) -> dict[str, str]:
    """Probe id -> why its recorded results are not current: not run, other parameters, other code, other
    artifacts (or rounds). Empty when everything is current."""
    recorded = {p.id: p for p in results.probes}
    out = {}
    for pid, params in selection.items():
        info = recorded.get(pid)
        if info is None:
            out[pid] = "not in probes.json"
            continue
        cls = get_probe(pid)
        wanted = cls(**params).params.model_dump(mode="json")
        if info.params != wanted:
            changed = sorted(k for k in set(info.params) | set(wanted) if info.params.get(k) != wanted.get(k))
            out[pid] = f"parameters changed ({', '.join(changed)})"
        elif info.code != code_fingerprint(cls):
            out[pid] = "its code changed"
        elif results.rounds != list(view.rounds) or info.inputs != input_fingerprints(cls, view):
            out[pid] = "the artifacts it reads changed"
    return out


def results_for(view: RunView | PooledRunView, root: Path | str, selection: dict[str, dict[str, Any]] | None = None,
                correction: CorrectionMethod | None = None, q: float | None = None, write: bool = True
                ) -> tuple[ProbeResults, dict[str, str]]:
    """Current results of `selection` (default: the library) over a run: the recorded ones where they are
    current, the stale probes recomputed (and written back when `write`). Returns (results, {probe: why it
    was recomputed})."""
    selection = selection if selection is not None else {pid: {} for pid in registry()}
    old = read_results(root)
    method = correction or (old.correction.method if old else "bh")
    level = q or (old.correction.q if old else 0.05)
    if old is None:
        why = {pid: "no current probes.json" for pid in selection}
    else:
        why = stale_probes(old, view, selection)
        if (method, level) != (old.correction.method, old.correction.q):
            why = why or {"": f"correction changed to {method} q={level:g}"}
    if not why:
        return old, {}  # type: ignore[return-value]
    kept = {p.id: p for p in old.probes} if old else {}
    infos, measurements = [], []
    for pid, params in selection.items():
        if pid in why or old is None:
            found, info = measure_probe(pid, params, view)
        else:
            info = kept[pid]
            found = [m for m in old.measurements if m.probe == pid]
        infos.append(info)
        measurements += found
    results = _assemble(view, infos, measurements, method, level)  # reused measurements carry their records
    why = {k: v for k, v in why.items() if k}
    if write:
        try:
            write_results(root, results)
        except RunError as e:  # a read-only run: the verdict stands, the cache is not kept
            why["(not saved)"] = str(e)
    return results, why


def incomplete(view: RunView | PooledRunView, configured: int | None = None) -> str | None:
    """Why a run (or every seed of a condition) did not finish, or None: a round whose fine-tune failed
    (failed or rejected), or fewer complete rounds than its configuration (`configured`, default the
    manifest's loop.rounds) asks for."""
    bad = getattr(view, "bad_rounds", {})
    if bad:
        return "; ".join(bad[r] for r in sorted(bad))
    if configured is None:
        loop = view.config.get("loop") or {}
        configured = loop.get("rounds") if isinstance(loop.get("rounds"), int) else None
    if configured is None:
        return None
    missing = [r for r in range(configured + 1) if r not in view.rounds]
    return f"rounds {missing} of 0..{configured} are not complete" if missing else None
