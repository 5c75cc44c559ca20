"""A against B on the items both hold: which test questions went right->wrong and wrong->right (greedy
decodings, exact McNemar p), and which pool questions became or stopped being confident-wrong (majority
answer wrong with vote share >= harness.summary.CONFIDENT_SHARE), with a few example items and one
rationale from each side.

`transition_panel` is generic over two (view, round) pairs: round r-1 against round r of one run (the round
panels of report.html and report.md), or two conditions of a suite at one round (they hold the same item
ids). Rows are paired by question id, in A's order, over the ids both sides hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from html import escape

import numpy as np

from harness.summary import CONFIDENT_SHARE
from probes import SampleTable, answer_text, stats
from probes.common import vote
from reports.model import Panel, PanelExample, PanelPool, PanelTest

MAX_EXAMPLES = 3
MAX_RATIONALE = 600  # characters of a rationale kept in the report (longer ones end with "…")
Prompts = Mapping[str, str] | Callable[[set[str]], Mapping[str, str]]

CSS = """
.panel{border:1px solid #ddd;border-radius:6px;padding:4px 10px;margin:6px 0}
.panel>summary{padding:3px 0}.panel[open]>summary{border-bottom:1px solid #eee;margin-bottom:6px}
.panel table.counts td,.panel table.counts th{padding:3px 9px}
.panel .lists{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:4px 18px}
.panel h5{font-size:13px;margin:8px 0 2px}
.panel pre.rat{max-width:none;max-height:7.5em;overflow:auto}
"""


def _pair(a: SampleTable, b: SampleTable) -> tuple[SampleTable, SampleTable] | None:
    """Both tables restricted to the ids they share, in A's order (as probes.common.aligned pairs rounds)."""
    if not a.n_items or not b.n_items or not a.k or not b.k:
        return None
    in_b = set(b.question_ids)
    ids = tuple(q for q in a.question_ids if q in in_b)
    if not ids:
        return None
    return (a if a.question_ids == ids else a.restrict(ids)), (b if b.question_ids == ids else b.restrict(ids))


def _answer(x) -> str | None:
    return answer_text(x)


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= MAX_RATIONALE else text[:MAX_RATIONALE - 1] + "…"


def _majority(t: SampleTable, i: int | np.integer) -> tuple[str | None, float, str]:
    """(majority answer, its vote share, one completion that gave it) of pool row i."""
    mode, share = stats.row_mode(t.answers[i:i + 1], t.parsed[i:i + 1])
    gave = t.parsed[i] & (t.answers[i] == mode[0])
    j = int(np.argmax(gave)) if gave.any() else 0
    return (_answer(mode[0]) if gave.any() else None), float(share[0]), t.completions[i][j]


def _test_example(a: SampleTable, b: SampleTable, i: int) -> PanelExample:
    return PanelExample(id=a.question_ids[i], truth=answer_text(a.truth[i]), answer_a=_answer(a.answers[i, 0]),
                        answer_b=_answer(b.answers[i, 0]), rationale_a=_clip(a.completions[i][0]),
                        rationale_b=_clip(b.completions[i][0]))


def _pool_example(a: SampleTable, b: SampleTable, i: int | np.integer) -> PanelExample:
    (ans_a, sh_a, rat_a), (ans_b, sh_b, rat_b) = _majority(a, i), _majority(b, i)
    return PanelExample(id=a.question_ids[i], truth=answer_text(a.truth[i]), answer_a=ans_a, answer_b=ans_b,
                        share_a=sh_a, share_b=sh_b, rationale_a=_clip(rat_a), rationale_b=_clip(rat_b))


def _test(a: SampleTable, b: SampleTable, n_examples: int) -> PanelTest:
    right_a, right_b = a.correct[:, 0], b.correct[:, 0]
    lost, gained, p = stats.mcnemar_exact(right_a, right_b)
    return PanelTest(n_items=a.n_items, accuracy_a=float(right_a.mean()), accuracy_b=float(right_b.mean()),
                     right_to_wrong=lost, wrong_to_right=gained, mcnemar_p=p,
                     right_to_wrong_examples=[_test_example(a, b, i)
                                              for i in np.flatnonzero(right_a & ~right_b)[:n_examples]],
                     wrong_to_right_examples=[_test_example(a, b, i)
                                              for i in np.flatnonzero(~right_a & right_b)[:n_examples]])


def _pool(a: SampleTable, b: SampleTable, n_examples: int) -> PanelPool:
    (right_a, share_a), (right_b, share_b) = vote(a), vote(b)
    cw_a, cw_b = ~right_a & (share_a >= CONFIDENT_SHARE), ~right_b & (share_b >= CONFIDENT_SHARE)
    stopped, became, p = stats.mcnemar_exact(cw_a, cw_b)

    def pick(mask: np.ndarray, share: np.ndarray) -> list[PanelExample]:  # the most confident first, then by id
        rows = sorted(np.flatnonzero(mask), key=lambda i: (-share[i], a.question_ids[i]))
        return [_pool_example(a, b, i) for i in rows[:n_examples]]

    return PanelPool(n_items=a.n_items, confident_share=CONFIDENT_SHARE, confident_wrong_a=int(cw_a.sum()),
                     confident_wrong_b=int(cw_b.sum()), became=became, stopped=stopped, mcnemar_p=p,
                     became_examples=pick(~cw_a & cw_b, share_b), stopped_examples=pick(cw_a & ~cw_b, share_a))


def question_text(prompt: str | None) -> str | None:
    """The question itself: the prompt's last paragraph (a few-shot prompt's worked examples left out)."""
    if not prompt or not prompt.strip():
        return None
    return prompt.strip().split("\n\n")[-1].strip()


def example_ids(panels: Sequence[Panel]) -> set[str]:
    return {e.id for p in panels for e in _examples(p)}


def _examples(p: Panel) -> list[PanelExample]:
    return ([*p.test.right_to_wrong_examples, *p.test.wrong_to_right_examples] if p.test else []) + \
        ([*p.pool.became_examples, *p.pool.stopped_examples] if p.pool else [])


def with_questions(panel: Panel, prompts: Mapping[str, str]) -> Panel:
    """The panel with each example's question filled from {item id: prompt}."""
    def fill(examples: list[PanelExample]) -> list[PanelExample]:
        return [e.model_copy(update={"question": question_text(prompts.get(e.id)) or e.question}) for e in examples]

    update: dict[str, PanelTest | PanelPool] = {}
    if panel.test:
        update["test"] = panel.test.model_copy(update={
            "right_to_wrong_examples": fill(panel.test.right_to_wrong_examples),
            "wrong_to_right_examples": fill(panel.test.wrong_to_right_examples)})
    if panel.pool:
        update["pool"] = panel.pool.model_copy(update={"became_examples": fill(panel.pool.became_examples),
                                                       "stopped_examples": fill(panel.pool.stopped_examples)})
    return panel.model_copy(update=update)


def transition_panel(view_a, round_a: int, view_b, round_b: int, label_a: str, label_b: str,
                     prompts: Prompts | None = None, n_examples: int = MAX_EXAMPLES) -> Panel:
    """A (view_a at round_a) against B (view_b at round_b), paired by item id. `prompts`: {id: prompt}, or a
    function from a set of ids to that (e.g. `lambda ids: reports.sources.prompts(source, ids)`), for the
    examples' questions; None leaves them empty."""
    test = _pair(view_a.samples(round_a, "test", "greedy"), view_b.samples(round_b, "test", "greedy"))
    pool = _pair(view_a.samples(round_a), view_b.samples(round_b))
    panel = Panel(label_a=label_a, label_b=label_b, round_a=round_a, round_b=round_b,
                  test=_test(*test, n_examples) if test else None, pool=_pool(*pool, n_examples) if pool else None)
    if prompts is None:
        return panel
    return with_questions(panel, prompts(example_ids([panel])) if callable(prompts) else prompts)


def round_panels(view, prompts: Prompts | None = None) -> list[Panel]:
    """Round r against round r-1 for every consecutive pair of the view's rounds."""
    rounds = list(view.rounds)
    panels = [transition_panel(view, a, view, b, f"round {a}", f"round {b}") for a, b in itertools.pairwise(rounds)]
    if prompts is None:
        return panels
    texts = prompts(example_ids(panels)) if callable(prompts) else prompts
    return [with_questions(p, texts) for p in panels]


# ---------------------------------------------------------------- renderings


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _acc(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def title(panel: Panel) -> str:
    return f"{panel.label_b} vs {panel.label_a}"


def summary(panel: Panel) -> str:
    """One line: the counts of both lists with their McNemar p."""
    parts = []
    if panel.test:
        t = panel.test
        parts.append(f"test: {t.right_to_wrong} right→wrong, {t.wrong_to_right} wrong→right "
                     f"(McNemar p {_p(t.mcnemar_p)})")
    if panel.pool:
        q = panel.pool
        parts.append(f"pool: {q.became} became confident-wrong, {q.stopped} stopped (McNemar p {_p(q.mcnemar_p)})")
    return " · ".join(parts) or "no test or pool items in common"


def _lists(panel: Panel) -> list[tuple[str, list[PanelExample], bool]]:
    """(heading, examples, pool?) of the four example lists."""
    out = []
    if panel.test:
        out += [(f"test, right→wrong ({panel.test.right_to_wrong})", panel.test.right_to_wrong_examples, False),
                (f"test, wrong→right ({panel.test.wrong_to_right})", panel.test.wrong_to_right_examples, False)]
    if panel.pool:
        out += [(f"pool, became confident-wrong ({panel.pool.became})", panel.pool.became_examples, True),
                (f"pool, stopped being confident-wrong ({panel.pool.stopped})", panel.pool.stopped_examples, True)]
    return out


def _answer_text(answer: str | None, share: float | None, truth: str | None) -> str:
    mark = "" if answer is None or truth is None else (" ✓" if answer == truth else " ✗")
    return f"{'-' if answer is None else answer}{'' if share is None else f' ({share:.0%})'}{mark}"


def _count_rows(panel: Panel) -> list[tuple[str, str, str, str, str, str, str]]:
    rows = []
    if panel.test:
        t = panel.test
        rows.append(("test accuracy (greedy)", str(t.n_items), _acc(t.accuracy_a), _acc(t.accuracy_b),
                     f"{t.right_to_wrong} right→wrong", f"{t.wrong_to_right} wrong→right", _p(t.mcnemar_p)))
    if panel.pool:
        q = panel.pool
        rows.append((f"pool questions confident-wrong (majority wrong, vote share ≥ {q.confident_share:g})",
                     str(q.n_items),
                     str(q.confident_wrong_a), str(q.confident_wrong_b), f"{q.became} became",
                     f"{q.stopped} stopped", _p(q.mcnemar_p)))
    return rows


def _md_cell(text: str | None, limit: int = 160) -> str:
    text = (text or "").strip().replace("\n", " ⏎ ").replace("|", "\\|").replace("<", "&lt;")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def panel_markdown(panel: Panel) -> str:
    """The panel as Markdown: a counts table, then the example items in a collapsed block."""
    head = ["", "paired items", panel.label_a, panel.label_b, "lost / became", "gained / stopped",
            "exact McNemar p"]
    lines = [f"**{title(panel)}**: {summary(panel)}", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _count_rows(panel)]
    lists = [(h, ex, pool) for h, ex, pool in _lists(panel) if ex]
    if lists:
        lines += ["", f"<details><summary>example items ({title(panel)})</summary>", "",
                  f"| list | item | truth | {panel.label_a}: answer, rationale | {panel.label_b}: answer, rationale |",
                  "|---|---|---|---|---|"]
        for heading, examples, _ in lists:
            for e in examples:
                truth = "-" if e.truth is None else e.truth
                lines.append(f"| {heading} | `{e.id}` {_md_cell(e.question, 80)} | {truth} "
                             f"| **{_answer_text(e.answer_a, e.share_a, e.truth)}** {_md_cell(e.rationale_a)} "
                             f"| **{_answer_text(e.answer_b, e.share_b, e.truth)}** {_md_cell(e.rationale_b)} |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _html_answer(answer: str | None, share: float | None, truth: str | None, rationale: str | None) -> str:
    text = escape(_answer_text(answer, share, truth))
    cls = "" if answer is None or truth is None else ("ok" if answer == truth else "bad")
    rat = f'<pre class="rat">{escape(rationale)}</pre>' if rationale else ""
    return f'<td><b class="{cls}">{text}</b>{rat}</td>'


def panel_html(panel: Panel, open: bool = True) -> str:
    """The panel as a <details> block (open by default): a counts table and the example lists."""
    head = "".join(f"<th>{escape(h)}</th>" for h in ("", "paired items", panel.label_a, panel.label_b))
    rows = "".join("<tr>" + "".join(f'<td{" class=num" if i in (1, 2, 3, 6) else ""}>{escape(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in _count_rows(panel))
    counts = (f'<table class="counts"><tr>{head}<th colspan="2">changed between them</th><th>exact McNemar p</th>'
              f"</tr>{rows}</table>")
    lists = []
    for heading, examples, _ in _lists(panel):
        if not examples:
            lists.append(f'<div><h5>{escape(heading)}</h5><p class="muted">none</p></div>')
            continue
        body = "".join(f"<tr><td><code>{escape(e.id)}</code><br>{escape(e.question or '')}</td>"
                       f'<td class="num">{"-" if e.truth is None else e.truth}</td>'
                       + _html_answer(e.answer_a, e.share_a, e.truth, e.rationale_a)
                       + _html_answer(e.answer_b, e.share_b, e.truth, e.rationale_b) + "</tr>" for e in examples)
        lists.append(f"<div><h5>{escape(heading)}</h5><table><tr><th>item</th><th>truth</th>"
                     f"<th>{escape(panel.label_a)}</th><th>{escape(panel.label_b)}</th></tr>{body}</table></div>")
    return (f'<details class="panel"{" open" if open else ""} data-a="{escape(panel.label_a)}" '
            f'data-b="{escape(panel.label_b)}"><summary><b>{escape(title(panel))}</b> — {escape(summary(panel))}'
            f'</summary>{counts}<div class="lists">{"".join(lists)}</div></details>')


def panels_markdown(panels: Sequence[Panel]) -> str:
    """Round panels for report.md: the last pair shown, earlier pairs collapsed."""
    if not panels:
        return ""
    out = [panel_markdown(panels[-1])]
    if len(panels) > 1:
        out += ["<details><summary>earlier rounds</summary>", ""] + [panel_markdown(p) for p in reversed(panels[:-1])] \
            + ["</details>", ""]
    return "\n".join(out)


def panels_html(panels: Sequence[Panel]) -> str:
    """Round panels for report.html: the last pair open, earlier pairs collapsed (latest first)."""
    if not panels:
        return ""
    return "".join(panel_html(p, open=i == 0) for i, p in enumerate(reversed(panels)))
