"""Collect a Report (reports.model) from a run, a condition or a suite output, and write its three files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from harness.artifacts import write_atomic
from probes import Measurement, ProbeResults, incomplete
from probes.gates import GateResult
from reports import diagnosis, evidence, header, panel
from reports.model import GateRow, MeasurementRow, ProbeSummary, Report, Section, Verdict
from reports.sources import Source, kind_of, open_source, probe_results, prompts, suite_sources

REPORT_FILES = ("report.json", "report.md", "report.html")


def trend(series) -> Literal["up", "down", "flat", "none"]:
    """Direction of the last finite point of a series relative to the first (descriptive, not a test)."""
    values = [p.value for p in series if p.value is not None and np.isfinite(p.value)]
    if len(values) < 2:
        return "none"
    diff = values[-1] - values[0]
    scale = max(abs(values[0]), abs(values[-1]), 1e-12)
    return "flat" if abs(diff) <= 1e-9 * scale else ("up" if diff > 0 else "down")


def _row(m: Measurement) -> MeasurementRow:
    return MeasurementRow(name=m.name, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, round=m.round, null=m.null,
                          concern=m.concern, alarm=m.alarm, fires=m.fires, fires_uncorrected=m.fires_uncorrected,
                          p_value=m.p_value if m.tested else None, p_adjusted=m.p_adjusted,
                          degenerate=m.degenerate, trend=trend(m.series),
                          series=m.series,
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
    panels = panel.round_panels(view)
    texts = prompts(source, set(ids) | panel.example_ids(panels))
    return Section(
        name=source.label, runs=[d.name for d in source.run_dirs], rounds=list(view.rounds),
        settings=settings(view.config), diagnosis=diagnosis.diagnose(results.measurements, view.rounds),
        headlines=header.headlines(results.measurements), panels=[panel.with_questions(p, texts) for p in panels],
        probes=probe_summaries(results), calibration=evidence.calibration(view),
        transitions=evidence.transitions(view), reference_nll=evidence.reference_nll(view),
        answer_entropy=evidence.answer_entropy(view), alarms=alarms, items=[tracer.trace(i, texts.get(i)) for i in ids])


def gate_row(g: GateResult) -> GateRow:
    m = g.measurement
    return GateRow(condition=g.condition, probe=g.gate.probe, stat=g.gate.stat, gate=g.gate.describe(),
                   use=g.gate.use, min=g.gate.min, max=g.gate.max, passed=g.passed, observed=g.observed,
                   value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, message=g.message, degenerate=m.degenerate)


def verdict(sections: list[Section], gates: list[GateRow], results: list[ProbeResults] | None = None,
            incomplete: list[str] | None = None) -> Verdict:
    rows = [m for s in sections for p in s.probes for m in p.measurements]
    failed = sum(not g.passed for g in gates)
    results = results or []
    tested = sum(r.correction.tested for r in results)
    firing = sum(r.correction.firing for r in results)
    methods = sorted({(r.correction.method, r.correction.q) for r in results})
    name = ", ".join(f"{ {'bh': 'BH', 'holm': 'Holm', 'none': 'uncorrected'}[m]}, q ≤ {q:g}" for m, q in methods)
    status: Literal["passed", "failed", "no_gates"] = ("no_gates" if not gates else
                                                      ("failed" if failed or incomplete else "passed"))
    return Verdict(status=status, gates=len(gates), gates_failed=failed, measurements=len(rows),
                   firing=sum(m.fires for m in rows), tested=tested,
                   firing_uncorrected=sum(r.correction.firing_uncorrected for r in results),
                   degenerate=sum(m.degenerate is not None for m in rows), correction=f"{firing} of {tested} fire ({name})" if results else "", incomplete=incomplete or [])


def build_report(path: Path | str, write_probes: bool = True) -> Report:
    """A report of a run directory, a condition directory or a suite output directory. Reuses each
    probes.json where it is current and recomputes (and writes, unless write_probes is False) what is stale."""
    path = Path(path)
    kind = kind_of(path)
    if kind == "suite":
        outcome, sources = suite_sources(path)
        name = outcome.suite if outcome else path.name
        gates = [gate_row(g) for g in outcome.gates] if outcome else []
    else:
        sources, gates = [open_source(path)], []
        name = sources[0].label
    results = [probe_results(s, write=write_probes) for s in sources]
    sections = [build_section(s, r) for s, r in zip(sources, results)]
    unfinished = [f"{s.label}: {why}" for s in sources if (why := incomplete(s.view))]
    stalled = [f"{s.label}: round {r} trained on nothing (its training set was empty), so its model is the "
               f"previous round's" for s in sources for v in getattr(s.view, "views", [s.view])
               for r in getattr(v, "stalled_rounds", [])]
    recomputed = [f"{s.label}: recomputed {pid} ({why})" for s in sources for pid, why in s.recomputed.items()]
    return Report(kind=kind, name=name, recomputed=recomputed,  # type: ignore[arg-type]
                  verdict=verdict(sections, gates, results, unfinished).model_copy(update={"stalled": stalled}),
                  gates=gates, sections=sections)


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
