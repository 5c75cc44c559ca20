"""The top of each report section: the diagnosis (reports.diagnosis), the five headline trajectories and the
round-vs-previous-round panels (reports.panel), in HTML and Markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Literal, cast

from probes import Measurement, SeriesPoint
from reports import diagnosis, panel
from reports.markdown import fmt
from reports.model import Change, Diagnosis, HeadlineTrajectory, Section
from reports.plots import RED, RUN_COLOURS

# (metric, label, probe, measurement, unit, the direction that is a concern)
Metric = Literal["test_accuracy", "ood_accuracy", "confident_wrong_rate", "reference_nll", "answer_entropy"]
HEADLINES: tuple[tuple[Metric, str, str, str, str, str], ...] = (
    ("test_accuracy", "test accuracy", "drift.accuracy", "test.greedy", "share right, greedy", "down"),
    ("ood_accuracy", "ood accuracy", "drift.accuracy", "ood.greedy", "share right, greedy", "down"),
    ("confident_wrong_rate", "confident-wrong rate", "cw.rate", "rate", "share of pool questions", "up"),
    ("reference_nll", "reference NLL/token", "drift.reference_nll", "nll_per_token", "nats/token", "up"),
    ("answer_entropy", "answer entropy", "attractor.answer_entropy", "entropy", "nats", "down"),
)
CONCERN = {h[0]: h[5] for h in HEADLINES}
ARROW = {"up": "↑", "down": "↓", "flat": "→", None: ""}

CSS = """
.diag{border-left:6px solid #607d8b;background:#f5f7f8;padding:8px 14px;margin:10px 0 12px;border-radius:4px}
.diag.concern{border-color:#c62828;background:#fdf1f0}.diag.good{border-color:#2e7d32;background:#eff7ef}
.diag.neutral{border-color:#ef8f00;background:#fff6e8}.diag-name{font-size:17px;font-weight:650}
.diag p{margin:4px 0}.diag .rules td:first-child{white-space:nowrap}.diag tr.applied td{font-weight:600}
table.headlines td{vertical-align:middle}table.headlines .ci{color:#666;font-size:11.5px}
table.headlines td.spark{padding:1px 4px}.top h3{margin-top:14px}
"""


def headlines(measurements: Sequence[Measurement]) -> list[HeadlineTrajectory]:
    """The five headline metrics that the section's probes measured, with per-round series and the change."""
    by_key = {(m.probe, m.name): m for m in measurements}
    out = []
    for metric, label, probe, name, unit, _ in HEADLINES:
        m = by_key.get((probe, name))
        if m is None or not any(p.value is not None for p in m.series):
            continue
        delta = by_key.get((probe, f"{name}.delta_vs_round0")) if len(m.series) > 1 else None  # not for round 0 alone
        out.append(HeadlineTrajectory(metric=metric, label=label, probe=probe, measurement=name, unit=unit,
                                      series=m.series, change=diagnosis.change(delta) if delta else None))
    return out


def _v(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def ci(lo: float | None, hi: float | None) -> str:
    """A 95% CI at 3 significant digits (the headline tables are compact)."""
    return "-" if lo is None or hi is None else f"[{_v(lo)}, {_v(hi)}]"


def _signed(c: Change) -> str:
    if c.value is None:
        return "-"
    mark = " (degenerate)" if c.degenerate is not None else ""
    return f"{c.value:+.3g} {ci(c.ci_low, c.ci_high)} {ARROW[c.direction]}".strip() + mark


# ---------------------------------------------------------------- HTML


def sparkline(series: Sequence[SeriesPoint], colour: str, w: int = 120, h: int = 30) -> str:
    """A small inline SVG: the per-round values as a line with the 95% CI band, no axes."""
    pts = [p for p in series if p.value is not None and math.isfinite(p.value)]
    if not pts:
        return ""
    vals = [v for p in pts for v in (p.value, p.ci_low, p.ci_high) if v is not None and math.isfinite(v)]
    lo, hi = min(vals), max(vals)
    hi, lo = (hi, lo) if hi - lo > 1e-12 else (hi + 0.5, lo - 0.5)
    r0, r1 = series[0].round, series[-1].round

    def xy(r: int, v: float | None) -> str:  # v: one `pts` or `band` kept, never None
        x = 4 + (w - 8) * (0.5 if r1 == r0 else (r - r0) / (r1 - r0))
        return f"{x:.1f},{h - 3 - (h - 6) * (cast(float, v) - lo) / (hi - lo):.1f}"

    band = [p for p in pts if p.ci_low is not None and p.ci_high is not None]
    poly = (f'<polygon points="{" ".join(xy(p.round, p.ci_high) for p in band)} '
            f'{" ".join(xy(p.round, p.ci_low) for p in reversed(band))}" fill="{colour}" fill-opacity="0.18"/>'
            if len(band) > 1 else "")
    line = " ".join(xy(p.round, p.value) for p in pts)
    dots = "".join(f'<circle cx="{xy(p.round, p.value).split(",")[0]}" cy="{xy(p.round, p.value).split(",")[1]}" '
                   f'r="2" fill="{colour}"/>' for p in pts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="trajectory">{poly}<polyline points="{line}" stroke="{colour}" stroke-width="1.5" '
            f'fill="none"/>{dots}</svg>')


def diagnosis_html(d: Diagnosis | None) -> str:
    if d is None:
        return ""
    span = f"round {d.from_round} → {d.to_round}" if d.from_round is not None and d.to_round != d.from_round else ""
    notes = []
    if d.also:
        notes.append(f"Also consistent with: {', '.join(d.also)}.")
    if d.not_checked:
        notes.append(f"Not checked (a measurement they need is missing): {', '.join(d.not_checked)}.")
    ev = "".join(f"<tr><td><code>{escape(c.probe)}</code> {escape(c.measurement)}</td><td class=num>{fmt(c.value)}"
                 f"</td><td class=num>{ci(c.ci_low, c.ci_high)}</td><td>{c.direction or 'no CI'}</td></tr>"
                 for c in d.evidence)
    rules = "".join(f'<tr class="{"applied" if n == d.rule else ""}"><td>{escape(n)}</td><td>{escape(cond)}</td></tr>'
                    for n, cond in diagnosis.rule_table())
    return (f'<div class="diag {d.severity}" data-section="diagnosis"><div><span class="muted">Diagnosis</span> '
            f'<span class="diag-name">{escape(d.rule)}</span> <span class="muted">{span}</span></div>'
            f"<p>{escape(d.explanation)}</p>{''.join(f'<p class=muted>{escape(n)}</p>' for n in notes)}"
            f"<details><summary>evidence and the rules</summary><table><tr><th>change (last round − round 0)</th>"
            f"<th>value</th><th>95% CI</th><th>direction</th></tr>{ev}</table>"
            f'<p class="muted">Up: the 95% CI lies above 0; down: below 0; flat: it contains 0. The first rule that '
            f"applies, in this order, is the diagnosis (docs/diagnosis.md).</p>"
            f'<table class="rules"><tr><th>rule</th><th>condition</th></tr>{rules}</table></details></div>')


def headlines_html(section: Section) -> str:
    if not section.headlines:
        return ""
    rounds = section.rounds
    head = "".join(f"<th>round {r}</th>" for r in rounds)
    rows = []
    accuracy_up = any(h.metric == "test_accuracy" and h.change and h.change.direction == "up"
                      for h in section.headlines)
    for h in section.headlines:
        points = {p.round: p for p in h.series}
        cells = "".join(f'<td class="num">{_v(points[r].value)}<br><span class="ci">'
                        f"{ci(points[r].ci_low, points[r].ci_high)}</span></td>" if r in points else "<td></td>"
                        for r in rounds)
        bad = h.change is not None and h.change.direction == CONCERN[h.metric] and not (
            h.metric == "answer_entropy" and accuracy_up)  # entropy falling as accuracy rises is the answers firming
        change = (f'<td class="num{" bad" if bad else ""}">{escape(_signed(h.change))}</td>' if h.change
                  else "<td></td>")
        rows.append(f"<tr><td>{escape(h.label)}<br><span class=ci>{escape(h.unit)}</span></td>"
                    f'<td class="spark">{sparkline(h.series, RED if bad else RUN_COLOURS[0])}</td>{cells}{change}</tr>')
    return (f'<div data-section="headlines"><table class="headlines"><tr><th>headline</th><th>trajectory</th>{head}'
            f"<th>change vs round {rounds[0]} (95% CI)</th></tr>{''.join(rows)}</table></div>")


def section_top_html(section: Section) -> str:
    """Diagnosis, headline trajectories and round panels, before the per-probe tables."""
    parts = [diagnosis_html(section.diagnosis), headlines_html(section)]
    if section.panels:
        parts.append('<div data-section="round-panel"><h3>Round by round: what changed</h3>'
                     '<p class="muted">Paired on the same items. Test: greedy answers that went right→wrong and '
                     f"wrong→right; pool: questions whose majority answer is wrong with vote share ≥ "
                     f"{panel.CONFIDENT_SHARE:g} (confident-wrong). Exact McNemar p.</p>"
                     f"{panel.panels_html(section.panels)}</div>")
    return f'<div class="top">{"".join(parts)}</div>' if any(parts) else ""


# ---------------------------------------------------------------- Markdown


def section_top_markdown(section: Section) -> list[str]:
    lines = []
    d = section.diagnosis
    if d is not None:
        lines += [f"**Diagnosis: {d.rule}.** {d.explanation}", ""]
        notes = ([f"also consistent with: {', '.join(d.also)}"] if d.also else []) + \
            ([f"not checked (a measurement they need is missing): {', '.join(d.not_checked)}"] if d.not_checked else [])
        lines += [f"_{'; '.join(notes)}._", ""] if notes else []
    if section.headlines:
        rounds = section.rounds
        lines += ["| headline | " + " | ".join(f"round {r}" for r in rounds) + f" | change vs round {rounds[0]} |",
                  "|---" * (len(rounds) + 2) + "|"]
        for h in section.headlines:
            points = {p.round: p for p in h.series}
            cells = [f"{_v(points[r].value)} {ci(points[r].ci_low, points[r].ci_high)}" if r in points else ""
                     for r in rounds]
            lines.append(f"| {h.label} | " + " | ".join(cells) + f" | {_signed(h.change) if h.change else '-'} |")
        lines.append("")
    if section.panels:
        lines += [panel.panels_markdown(section.panels), ""]
    return lines
