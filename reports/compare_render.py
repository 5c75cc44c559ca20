"""A comparison as Markdown, as a self-contained HTML page, and as rich tables for the terminal."""

from __future__ import annotations

from html import escape

from rich import box
from rich.markup import escape as rich_escape
from rich.table import Table

from reports import plots
from reports.compare import Comparison, Difference, PairComparison
from reports.html import figure, page
from reports.markdown import fmt
from reports.panel import panel_html, panel_markdown

METHODS = {"paired": "paired", "unpaired": "unpaired", "identical_inputs": "identical inputs", "from_cis": "from CIs",
           "none": "-"}


def notes(pair: PairComparison) -> list[str]:
    """The lines that qualify a pair's comparison: not comparable, recomputed, refused, the correction."""
    out = [f"Note: {pair.note}"] if pair.note else []
    out += [f"Recomputed {r} (compared under one definition)" for r in pair.recomputed]
    out += [f"Not compared: {r.probe}: {r.reason}" for r in pair.refused]
    if pair.correction:
        out.append(f"Significance: {pair.correction}")
    return out


def signed_ci(d: Difference, digits: int = 4) -> str:
    return "-" if d.ci_low is None or d.ci_high is None else f"[{d.ci_low:+.{digits}g}, {d.ci_high:+.{digits}g}]"


def outcome(d: Difference, pair: PairComparison | None = None) -> str:
    """In words; with `pair`, the worse run is named by its letter (A or B), for narrow terminal tables."""
    if d.diff is None:
        return "undefined"
    if d.degenerate is not None:
        return f"degenerate {d.degenerate}" if pair is None else "degenerate"
    if not d.significant:
        return "no significant difference" if pair is None else "n.s."
    if d.worse is None:
        return "differs"
    return f"{d.worse if pair is None else ('A' if d.worse == pair.a else 'B')} worse"


def _short(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def comparison_markdown(c: Comparison) -> str:
    lines = [f"## loopprobe compare: {', '.join(r.label for r in c.runs)}", "",
             (f"Baseline (A): `{c.baseline}`. Differences are B − A with 95% CIs; paired on the same items where the "
              "runs share them."), ""]
    lines += [f"- **INCOMPLETE** `{r.label}`: {r.incomplete}" for r in c.runs if r.incomplete]
    lines += [""] if any(r.incomplete for r in c.runs) else []
    for pair in c.pairs:
        lines += [f"### `{pair.b}` (B) vs `{pair.a}` (A), rounds {pair.rounds}", ""]
        lines += [f"- {line}" for line in notes(pair)] + ([""] if notes(pair) else [])
        lines += [f"- **{h.label}**{h.verdict.removeprefix(h.label)}" for h in pair.headlines]
        if pair.panel is not None:
            lines += ["", panel_markdown(pair.panel)]
        lines += ["", "| measurement | round | A | B | B − A | 95% CI | method | outcome |",
                  "|---|---|---|---|---|---|---|---|"]
        significant = [d for d in pair.differences if d.significant]
        for d in significant:
            lines.append(f"| `{d.probe}` {d.measurement} | {fmt(d.round)} | {fmt(d.a)} | {fmt(d.b)} | "
                         f"{'-' if d.diff is None else f'{d.diff:+.4g}'} | {signed_ci(d)} | {METHODS[d.method]} | "
                         f"{outcome(d)} |")
        lines += ["", (f"{len(significant)} of {len(pair.differences)} differences are significant after "
                   "Benjamini-Hochberg (the table lists those; `--json` has all)."), ""]
    return "\n".join(lines)


def _diff_rows(pair: PairComparison, only_significant: bool = False) -> str:
    rows = []
    for d in pair.differences:
        if only_significant and not d.significant:
            continue
        cls = "fires" if d.worse else ""
        rows.append(f'<tr class="{cls}"><td><code>{escape(d.probe)}</code> {escape(d.measurement)}</td>'
                    f'<td class="num">{fmt(d.round)}</td><td class="num">{fmt(d.a)}</td><td class="num">{fmt(d.b)}</td>'
                    f'<td class="num">{"-" if d.diff is None else f"{d.diff:+.4g}"}</td>'
                    f'<td class="num">{signed_ci(d)}</td><td>{METHODS[d.method]}</td>'
                    f"<td>{escape(outcome(d))}</td></tr>")
    return ("<table><tr><th>measurement</th><th>round</th><th>A</th><th>B</th><th>B − A</th><th>95% CI</th>"
            f"<th>method</th><th>outcome</th></tr>{''.join(rows)}</table>")


def comparison_plot_ids(c: Comparison) -> list[str]:
    return [pid for i, pair in enumerate(c.pairs) for pid, has in
            ((f"p{i}-headlines", bool(pair.headlines)), (f"p{i}-differences", bool(pair.headlines))) if has]


def comparison_html(c: Comparison) -> str:
    parts = [f"<h1>loopprobe compare</h1><p>Baseline (A): <code>{escape(c.baseline)}</code>. Runs: "
             + ", ".join(f"<code>{escape(r.label)}</code> ({r.kind}: {escape(', '.join(r.runs))}; rounds {r.rounds})"
                         for r in c.runs) + "</p>"]
    parts += [f"<p><b class=fires>INCOMPLETE</b> <code>{escape(r.label)}</code>: {escape(r.incomplete)}</p>"
              for r in c.runs if r.incomplete]
    for i, pair in enumerate(c.pairs):
        parts.append(f"<h2>{escape(pair.b)} (B) vs {escape(pair.a)} (A)</h2>"
                     + "".join(f'<p class="note">{escape(line)}</p>' for line in notes(pair)) + "<ul>"
                     + "".join(f"<li><b>{escape(h.label)}</b>{escape(h.verdict.removeprefix(h.label))}</li>"
                             for h in pair.headlines) + "</ul>")
        if pair.panel is not None:
            parts.append(f'<div data-section="round-panel">{panel_html(pair.panel)}</div>')
        panels = [(h.label, {pair.a: h.difference.series_a, pair.b: h.difference.series_b}) for h in pair.headlines]
        if pair.headlines:
            parts.append(figure(f"p{i}-headlines", plots.overlaid(panels, pair.rounds),
                                "Headline metrics per round for both runs, with 95% CI bands."))
            head_rows = [(f"{h.label} @ {h.difference.round}", h.difference.diff, h.difference.ci_low,
                          h.difference.ci_high, h.difference.significant) for h in pair.headlines]
            parts.append(figure(f"p{i}-differences", plots.differences(head_rows),
                                "Headline differences B − A at the last common round (red: the CI excludes 0)."))
        n_sig = sum(d.significant for d in pair.differences)
        parts.append(f"<h3>Significant differences after Benjamini-Hochberg ({n_sig} of {len(pair.differences)})</h3>"
                     f"{_diff_rows(pair, only_significant=True)}"
                     f"<details><summary>every difference</summary>{_diff_rows(pair)}</details>")
    return page("loopprobe compare " + " vs ".join(r.label for r in c.runs), "".join(parts))


def comparison_tables(c: Comparison) -> list[Table]:
    tables = []
    for pair in c.pairs:
        last = f", round {pair.rounds[-1]}" if pair.rounds else ""
        t = Table(box=box.SIMPLE, title=f"B = {rich_escape(pair.b)} vs A = {rich_escape(pair.a)}{last}", pad_edge=False,
                  caption="n.s.: not significant after Benjamini-Hochberg across the pair's differences")
        for header in ("metric", "A", "B", "B − A [95% CI]", "outcome"):
            t.add_column(header, no_wrap=header != "outcome", justify="left" if header in ("metric", "outcome") else "right")
        for h in pair.headlines:
            d = h.difference
            style = "bold red" if d.worse else ("" if not d.significant else "yellow")
            text = rich_escape(outcome(d, pair))
            diff = "-" if d.diff is None else f"{d.diff:+.3g} {signed_ci(d, 3)}"
            t.add_row(h.label, _short(d.a), _short(d.b), diff, f"[{style}]{text}[/]" if style else text)
        tables.append(t)
        tables.append(_last_round_table(pair))
    return tables


def _last_round_table(pair: PairComparison) -> Table:
    """Every other measurement whose difference at the last common round has a CI that excludes 0."""
    last = pair.rounds[-1] if pair.rounds else None
    headline_keys = {(h.difference.probe, h.difference.measurement) for h in pair.headlines}
    rows = [d for d in pair.differences if d.significant and d.round in (last, None)
            and (d.probe, d.measurement) not in headline_keys]
    t = Table(box=box.SIMPLE, pad_edge=False,
              title=f"other measurements that differ at round {last} ({len(rows)}; significant after BH)")
    t.add_column("measurement", overflow="fold")
    t.add_column("B − A [95% CI]", justify="right", no_wrap=True)
    t.add_column("outcome", no_wrap=True)
    for d in rows:
        text = rich_escape(outcome(d, pair))
        t.add_row(rich_escape(f"{d.probe} {d.measurement}"), f"{d.diff:+.3g} {signed_ci(d, 3)}",
                  f"[bold red]{text}[/]" if d.worse else text)
    return t
