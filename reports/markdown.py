"""Markdown renderings: report.md (a CI step summary: verdict, gates, one line per probe) and a comparison."""

from __future__ import annotations

from reports.model import MeasurementRow, Report, Section

ARROWS = {"up": "↑", "down": "↓", "flat": "→", "none": ""}
STATUS = {"passed": "PASSED", "failed": "FAILED", "no_gates": "no gates"}


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def ci(lo: float | None, hi: float | None) -> str:
    return "-" if lo is None or hi is None else f"[{fmt(lo)}, {fmt(hi)}]"


def trajectory(m: MeasurementRow) -> str:
    """The per-round values with the trend arrow, e.g. "0.52 → 0.47 → 0.43 ↓"."""
    points = [fmt(p.value) for p in m.series]
    return (" → ".join(points) + f" {ARROWS[m.trend]}").strip() if points else "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def verdict_cell(m: MeasurementRow) -> str:
    """The fires column: "yes", "degenerate: <why>" (it has nothing to detect, so it cannot fire), or empty."""
    return f"degenerate: {_cell(m.degenerate)}" if m.degenerate is not None else ("yes" if m.fires else "")


def _section(section: Section, heading: str) -> list[str]:
    from reports.header import section_top_markdown  # header renders with fmt and ci from here

    firing = sum(len(p.firing) for p in section.probes)
    total = sum(len(p.measurements) for p in section.probes)
    degenerate = sum(len(p.degenerate) for p in section.probes)
    settings = ", ".join(f"{k}={v}" for k, v in section.settings.items())
    shown = f" ({degenerate} degenerate: nothing to detect)" if degenerate else ""
    lines = [f"{heading} {section.name}: {firing} of {total} measurements fire{shown}", "",
             f"Rounds {section.rounds[0]}..{section.rounds[-1]}; runs {', '.join(section.runs)}"
             + (f"; {settings}" if settings else "") + ".", "", *section_top_markdown(section),
             "| probe | headline | value | 95% CI | per round (trend) | firing |", "|---|---|---|---|---|---|"]
    for p in section.probes:
        h = p.get(p.headline)
        fired = ", ".join(f"`{m.name}`" for m in p.firing)
        idle = f"; {len(p.degenerate)} degenerate" if p.degenerate else ""
        lines.append(f"| `{p.id}` | {h.name if h else '-'} | {fmt(h.value if h else None)} "
                     f"| {ci(h.ci_low if h else None, h.ci_high if h else None)} "
                     f"| {trajectory(h) if h else '-'} | {len(p.firing) or ''}{' ' + fired if fired else ''}{idle} |")
    lines.append("")
    if section.alarms:
        lines += ["<details><summary>alarms (the items behind each are in report.html)</summary>", ""]
        lines += [f"- `{a.probe}` {a.measurement} = {fmt(a.value)}: {a.reason}; {len(a.items)} items" for a in section.alarms]
        lines += ["", "</details>", ""]
    lines += ["<details><summary>every measurement</summary>", "",
              "| probe | measurement | value | 95% CI | per round (trend) | concern | p (adjusted) | fires |",
              "|---|---|---|---|---|---|---|---|"]
    for p in section.probes:
        for m in p.measurements:
            pv = "" if m.p_value is None else f"{m.p_value:.2g} ({fmt(m.p_adjusted)})"
            lines.append(f"| `{p.id}` | {_cell(m.name)} | {fmt(m.value)} | {ci(m.ci_low, m.ci_high)} | {trajectory(m)} "
                         f"| {m.concern} | {pv} | {verdict_cell(m)} |")
    return lines + ["", "</details>", ""]


def render_markdown(report: Report) -> str:
    v = report.verdict
    lines = [f"## loopprobe {report.kind} `{report.name}`: {STATUS[v.status]}", ""]
    summary = f"{v.gates - v.gates_failed} of {v.gates} gates hold; " if v.gates else "No gates (a run has none); "
    idle = f" ({v.degenerate} degenerate)" if v.degenerate else ""
    lines += [summary + f"{v.correction}; {v.measurements} measurements in all{idle}.", ""]
    lines += [f"**INCOMPLETE**: {why}" for why in v.incomplete] + ([""] if v.incomplete else [])
    lines += [f"**No update**: {why}" for why in v.stalled] + ([""] if v.stalled else [])
    if report.gates:
        lines += ["| | condition | gate | value | 95% CI |", "|---|---|---|---|---|"]
        lines += [f"| {'✅' if g.passed else '❌'} | {g.condition} | `{g.gate}`"
                  f"{' (degenerate: ' + _cell(g.degenerate) + ')' if g.degenerate else ''} | {fmt(g.value)} "
                  f"| {ci(g.ci_low, g.ci_high)} |" for g in report.gates]
        lines.append("")
    for s in report.sections:
        lines += _section(s, "### condition" if report.kind == "suite" else f"### {report.kind}")
    return "\n".join(lines)
