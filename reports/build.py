"""Collect a Report (reports.model) from a run, a condition or a suite output, and write its three files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.artifacts import write_atomic
from probes import ProbeResults
from probes._api import Measurement
from probes.gates import GateResult
from reports import evidence
from reports.model import GateRow, MeasurementRow, ProbeSummary, Report, Section, Verdict
from reports.sources import Source, kind_of, open_source, probe_results, prompts, suite_sources

REPORT_FILES = ("report.json", "report.md", "report.html")


def trend(series) -> str:
    """Direction of the last finite point of a series relative to the first (descriptive, not a test)."""
    values = [p.value for p in series if p.value is not None and np.isfinite(p.value)]
    if len(values) < 2:
        return "none"
    diff = values[-1] - values[0]
    scale = max(abs(values[0]), abs(values[-1]), 1e-12)
    return "flat" if abs(diff) <= 1e-9 * scale else ("up" if diff > 0 else "down")


def _row(m: Measurement) -> MeasurementRow:
    return MeasurementRow(name=m.name, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, round=m.round, null=m.null,
                          concern=m.concern, alarm=m.alarm, fires=m.fires, trend=trend(m.series), series=m.series,
                          evidence=m.evidence)


def _headline(rows: list[MeasurementRow]) -> str | None:
    """The level a one-line summary shows: the first measured level (no null to test), else the first value."""
    for pick in (lambda m: m.value is not None and m.concern == "none", lambda m: m.value is not None, bool):
        found = next((m for m in rows if pick(m)), None)
        if found is not None:
            return found.name
    return None


def probe_summaries(results: ProbeResults) -> list[ProbeSummary]:
    by_probe: dict[str, list[Measurement]] = {}
    for m in results.measurements:
        by_probe.setdefault(m.probe, []).append(m)
    infos = {p.id: p for p in results.probes}
    out = []
    for pid, ms in by_probe.items():
        info = infos.get(pid)
        rows = [_row(m) for m in ms]
        out.append(ProbeSummary(id=pid, family=info.family if info else pid.split(".")[0],
                                description=info.description if info else "", params=info.params if info else {},
                                headline=_headline(rows), measurements=rows))
    return sorted(out, key=lambda p: (p.family, p.id))


def settings(config: dict) -> dict:
    """The settings a reader needs to interpret the numbers: the scalars of config["loop"] (tau, k, select,
    data policy, ...) and the planted misconception or answer noise, where set."""
    out = {}
    loop = config.get("loop")
    if isinstance(loop, dict):
        out.update({f"loop.{k}": v for k, v in sorted(loop.items()) if isinstance(v, (int, float, str, bool))})
    domain = config.get("domain")
    if isinstance(domain, dict):
        out.update({f"domain.{k}": domain[k] for k in ("misconception", "misconception_rate", "answer_noise")
                    if domain.get(k) not in (None, 0, 0.0)})
    return out


def build_section(source: Source, results: ProbeResults) -> Section:
    view = source.view
    alarms = evidence.alarms(results.measurements)
    ids = sorted({i for a in alarms for i in a.items})
    tracer = evidence.ItemTracer(view)
    texts = prompts(source, set(ids))
    return Section(
        name=source.label, runs=[d.name for d in source.run_dirs], rounds=list(view.rounds),
        settings=settings(view.config), probes=probe_summaries(results), calibration=evidence.calibration(view),
        transitions=evidence.transitions(view), reference_nll=evidence.reference_nll(view),
        answer_entropy=evidence.answer_entropy(view), alarms=alarms, items=[tracer.trace(i, texts.get(i)) for i in ids])


def gate_row(g: GateResult) -> GateRow:
    m = g.measurement
    return GateRow(condition=g.condition, probe=g.gate.probe, stat=g.gate.stat, gate=g.gate.describe(),
                   use=g.gate.use, min=g.gate.min, max=g.gate.max, passed=g.passed, observed=g.observed,
                   value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, message=g.message)


def verdict(sections: list[Section], gates: list[GateRow]) -> Verdict:
    rows = [m for s in sections for p in s.probes for m in p.measurements]
    failed = sum(not g.passed for g in gates)
    return Verdict(status="no_gates" if not gates else ("failed" if failed else "passed"), gates=len(gates),
                   gates_failed=failed, measurements=len(rows), firing=sum(m.fires for m in rows))


def build_report(path: Path | str, write_probes: bool = True) -> Report:
    """A report of a run directory, a condition directory or a suite output directory. Runs the probe
    library when no current probes.json exists (and writes it, unless write_probes is False)."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "suite":
        outcome, sources = suite_sources(path)
        sections = [build_section(s, probe_results(s)) for s in sources]
        gates = [gate_row(g) for g in outcome.gates] if outcome else []
        name = outcome.suite if outcome else path.name
        return Report(kind="suite", name=name, verdict=verdict(sections, gates), gates=gates, sections=sections)
    source = open_source(path)
    sections = [build_section(source, probe_results(source, write=write_probes))]
    return Report(kind=kind, name=source.label, verdict=verdict(sections, []), sections=sections)


def write_report(report: Report, out: Path | str) -> list[Path]:
    """report.json, report.md and report.html into `out`, each written atomically."""
    from reports.html import render_html
    from reports.markdown import render_markdown

    out = Path(out)
    files = {"report.json": report.model_dump_json(indent=1), "report.md": render_markdown(report),
             "report.html": render_html(report)}
    for name, text in files.items():
        write_atomic(out / name, text)
    return [out / name for name in files]
