"""report.html: one self-contained file (no network, no script) with every plot embedded as an SVG data URI.

Each plot is an <img data-plot="ID">; `plot_ids(report)` lists the ids a report must contain, so a test can
check that every plot is present and rendered.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from html import escape

from reports import header, panel, plots
from reports.markdown import STATUS, ci, fmt, trajectory
from reports.model import ItemTrace, ProbeSummary, Report, Section

FAMILY_ORDER = ("drift", "attractors", "confident_wrong", "forecast")
FAMILY_TITLES = {"drift": "Drift", "attractors": "Attractors", "confident_wrong": "Confident-wrong",
                 "forecast": "Forecast"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1320px;padding:16px 24px;
color:#1d1d1f}
h1{font-size:22px}h2{font-size:19px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
h3{font-size:16px;margin-top:26px}h4{font-size:14px;margin:18px 0 4px}code{font-size:12.5px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-size:13px;vertical-align:middle}
.passed{background:#2e7d32}.failed{background:#c62828}.no_gates{background:#607d8b}
table{border-collapse:collapse;margin:6px 0 10px;font-size:12.5px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f4f4f6}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.fires td{background:#fdecea}tr.degenerate td{color:#777}.ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}
figure{margin:8px 0 14px}figcaption{font-size:12px;color:#555;max-width:900px}
img[data-plot]{max-width:100%;height:auto;display:block}
pre.rat{margin:2px 0 0;font-size:11px;background:#f7f7f9;padding:2px 4px;white-space:pre-wrap;max-width:260px}
details{margin:4px 0 8px}summary{cursor:pointer}.muted{color:#666}nav a{margin-right:10px}
""" + header.CSS + panel.CSS


def plot_id(section_index: int, name: str) -> str:
    return f"s{section_index}-{name}"


def figure(pid: str, svg: str | None, caption: str) -> str:
    if svg is None:
        return ""
    data = base64.b64encode(svg.encode()).decode()
    return (f'<figure><img data-plot="{escape(pid)}" alt="{escape(caption)}" src="data:image/svg+xml;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _families(section: Section) -> list[str]:
    present = set(section.families)
    present |= {"drift"} if section.reference_nll else set()
    present |= {"attractors"} if section.answer_entropy else set()
    present |= {"confident_wrong"} if section.calibration or section.transitions else set()
    return [f for f in FAMILY_ORDER if f in present] + sorted(present - set(FAMILY_ORDER))


def _family_plots(section: Section, family: str) -> list[tuple[str, bool, Callable[[], str | None], str]]:
    """(plot name, has data, render, caption) of the distribution plots shown under a family's heading."""
    if family == "drift":
        return [("reference-nll", section.reference_nll is not None, lambda: plots.histograms(section.reference_nll),
                 ("Reference-text NLL per token under each round's model (histograms overlaid; a shift right or a "
                  "heavier right tail is distributional drift)."))]
    if family == "attractors":
        return [("answer-entropy", section.answer_entropy is not None, lambda: plots.histograms(section.answer_entropy),
                 ("Entropy of each pool question's k sampled answers, per round (mass piling up at 0 means the "
                  "samples collapse onto one answer)."))]
    if family == "confident_wrong":
        return [("calibration", bool(section.calibration), lambda: plots.reliability(section.calibration),
                 ("Reliability of the pool majority vote per round: accuracy per vote-share bin (darker: more "
                  "questions) against the diagonal of perfect calibration.")),
                ("transitions", bool(section.transitions), lambda: plots.transition_heatmaps(section.transitions),
                 ("Pool questions moving between right/wrong x unsure/confident from one round to the next "
                  "(counts; shade: share of the row)."))]
    return []


def _measurement_table(p: ProbeSummary) -> str:
    rows = []
    for m in p.measurements:
        fires = '<span class="bad">fires</span>' if m.fires else ""
        if m.degenerate is not None:  # nothing to detect: it cannot fire, and says why
            fires = f'<span class="muted" title="{escape(m.degenerate)}">degenerate: {escape(m.degenerate)}</span>'
        cls = "fires" if m.fires else "degenerate" if m.degenerate is not None else ""
        rows.append(f'<tr class="{cls}"><td><code>{escape(m.name)}</code></td>'
                    f'<td class="num">{fmt(m.value)}</td><td class="num">{ci(m.ci_low, m.ci_high)}</td>'
                    f"<td>{escape(trajectory(m))}</td><td>{m.concern}</td><td>{fires}</td></tr>")
    return ("<table><tr><th>measurement</th><th>value</th><th>95% CI</th><th>per round (trend)</th>"
            f"<th>concern</th><th></th></tr>{''.join(rows)}</table>")


def _answer(answer: str | None) -> str:
    """A canonical answer as the page shows it (escaped: a domain's answers may hold any text)."""
    return "-" if answer is None else escape(answer)


def _item_cell(item: ItemTrace, r: int) -> str:
    point = next((p for p in item.rounds if p.round == r), None)
    if point is None:
        return "<td></td>"
    if item.split == "reference":
        return f'<td class="num">{fmt(point.nll_per_token)} nats/token</td>'
    mark = "" if point.correct is None else ('<span class="ok">✓</span>' if point.correct else '<span class="bad">✗</span>')
    share = "" if point.vote_share is None else f" ({point.vote_share:.0%})"
    greedy = "" if point.greedy is None else f'<br><span class="muted">greedy {escape(point.greedy)}</span>'
    rat = f'<pre class="rat">{escape(point.rationale)}</pre>' if point.rationale else ""
    return f"<td><b>{_answer(point.majority)}</b>{share} {mark}{greedy}{rat}</td>"


def _alarms(section: Section) -> str:
    if not section.alarms:
        return "<p>No measurement fires.</p>"
    items = {i.id: i for i in section.items}
    out = []
    for a in section.alarms:
        traced = [items[i] for i in a.items if i in items]
        shown_ci = f" {ci(a.ci_low, a.ci_high)}" if "CI" not in a.reason and a.ci_low is not None else ""
        head = (f"<code>{escape(a.probe)}</code> {escape(a.measurement)} = {fmt(a.value)}{shown_ci}: "
                f"{escape(a.reason)} — {len(traced)} items")
        if not traced:
            out.append(f"<details><summary>{head}</summary><p>The probe names no items for this alarm.</p></details>")
            continue
        header = "".join(f"<th>round {r}</th>" for r in section.rounds)
        rows = "".join(f"<tr><td><code>{escape(i.id)}</code><br>{escape(i.question or '')}"
                       f'<br><span class="muted">{i.split}</span></td><td class="num">{_answer(i.truth)}</td>'
                       + "".join(_item_cell(i, r) for r in section.rounds) + "</tr>" for i in traced)
        out.append(f"<details><summary>{head}</summary><table><tr><th>item</th><th>truth</th>{header}</tr>"
                   f"{rows}</table></details>")
    return ("<p>Each alarm with the items its probe names as driving it: majority answer (vote share), ✓ when "
            "right, the greedy answer for test/ood items, and one rationale that gave the majority.</p>" + "".join(out))


def _plots(i: int, section: Section):
    """Every plot of a section in page order: (family or None, probe id or None, id, has data, render, caption)."""
    for family in _families(section):
        for name, has, render, caption in _family_plots(section, family):
            yield family, None, plot_id(i, name), has, render, caption
        for p in (p for p in section.probes if p.family == family):
            yield family, p, plot_id(i, f"trajectory-{p.id}"), any(plots.plottable(m) for m in p.measurements), \
                (lambda p=p: plots.trajectories(p.measurements, section.rounds)), \
                f"{p.id}: per-round values with 95% CI bands (dashed: the null of a tested change)."


def _section(i: int, section: Section) -> str:
    settings = ", ".join(f"{escape(k)}={escape(str(v))}" for k, v in section.settings.items())
    parts = [(f'<section id="section-{i}"><h2>{escape(section.name)}</h2>'
              f"<p>Rounds {section.rounds[0]}..{section.rounds[-1]} · runs {escape(', '.join(section.runs))}"
              f"{' · ' + settings if settings else ''}</p>"), header.section_top_html(section)]
    family_seen = None
    for family, p, pid, has, render, caption in _plots(i, section):
        if family != family_seen:
            parts.append(f"<h3>{escape(FAMILY_TITLES.get(family, family))}</h3>")
            family_seen = family
        if p is not None:
            parts.append(f"<h4><code>{escape(p.id)}</code></h4><p>{escape(p.description)}</p>{_measurement_table(p)}")
        parts.append(figure(pid, render() if has else None, caption))
    parts.append(f"<h3>Alarms and the items behind them</h3>{_alarms(section)}</section>")
    return "".join(parts)


def _gates(report: Report) -> str:
    if not report.gates:
        return ""
    rows = "".join(f'<tr class="{"" if g.passed else "fires"}"><td>{"✅" if g.passed else "❌"}</td>'
                   f"<td>{escape(g.condition)}</td><td><code>{escape(g.gate)}</code>"
                   f"{' <b>degenerate</b>' if g.degenerate else ''}</td>"
                   f'<td class="num">{fmt(g.value)}</td><td class="num">{ci(g.ci_low, g.ci_high)}</td>'
                   f"<td>{escape(g.message)}</td></tr>" for g in report.gates)
    return ("<h2>Gates</h2><table><tr><th></th><th>condition</th><th>gate</th><th>value</th><th>95% CI</th>"
            f"<th>message</th></tr>{rows}</table>")


def render_html(report: Report) -> str:
    v = report.verdict
    sections = "".join(_section(i, s) for i, s in enumerate(report.sections))
    nav = " ".join(f'<a href="#section-{i}">{escape(s.name)}</a>' for i, s in enumerate(report.sections))
    gates = f"{v.gates - v.gates_failed} of {v.gates} gates hold · " if v.gates else ""
    body = (f'<h1>loopprobe {report.kind} <code>{escape(report.name)}</code> '
            f'<span class="badge {v.status}">{STATUS[v.status]}</span></h1>'
            f"<p>{gates}{escape(v.correction)} · {v.measurements} measurements"
            f"{f' ({v.degenerate} degenerate)' if v.degenerate else ''}"
            f"{''.join(' · <b class=fires>INCOMPLETE</b> ' + escape(w) for w in v.incomplete)}"
            f"{''.join(' · <b>no update</b> ' + escape(w) for w in v.stalled)}"
            f" · report schema v{report.schema_version}</p>"
            f"<nav>{nav}</nav>{_gates(report)}{sections}")
    return page(f"loopprobe {report.kind} {report.name}", body)


def plot_ids(report: Report) -> list[str]:
    """The data-plot ids report.html contains for this report: every plot it draws (without drawing)."""
    return [pid for i, s in enumerate(report.sections) for _, _, pid, has, _, _ in _plots(i, s) if has]
