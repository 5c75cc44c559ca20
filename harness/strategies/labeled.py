"""Selectors that use labels: the domain's checker (ReST-EM) and the gold answer (STaR).

They receive `SampleRow`s, truth included, and a `LabeledContext`. The label-free selectors in `select.py`
never do; the loop hands samples to them only through `strip_labels`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.artifacts import SampleRow, SelectedRow
from harness.domains.base import Hints, Question
from harness.strategies.select import register_selector, strip_labels, vote_shares


@dataclass(frozen=True)
class LabeledContext:
    """What a selector that reads labels gets besides the samples: the whole domain, the pool questions
    (with their answers) and `decode(questions, label, seed)`, which samples k completions per question
    with the round's model as the loop does and returns them as `SampleRow`s."""

    round: int
    loop: Any
    args: Any
    model: Any
    domain: Any
    pool: Sequence[Question]
    decode: Callable[[list[Question], str, int], list[SampleRow]]
    seed: int
    reporter: Any = None


@register_selector("verifier", uses_labels=True,
                   description="ReST-EM: the samples the hidden checker accepts (verifier_noise flips verdicts)")
def select_verifier(samples: Sequence[SampleRow], ctx: LabeledContext) -> list[SelectedRow]:
    return verifier(samples, ctx.loop.verifier_noise, ctx.seed, ctx.round)


@register_selector("gold_rationalization", uses_labels=True, requires=(Hints,), prompts=("hint_prompt",),
                   seed_label="rationalize",
                   description="STaR: the samples reaching the gold answer, plus rationalizations under a hint")
def select_gold_rationalization(samples: Sequence[SampleRow], ctx: LabeledContext) -> list[SelectedRow]:
    kept, failed = gold_filter(samples, ctx.round)
    failed_ids = set(failed)
    failed_q = [q for q in ctx.pool if q.id in failed_ids]
    hinted_q = [Question(q.id, q.skill, ctx.domain.hint_prompt(q), q.answer) for q in failed_q]
    hinted = ctx.decode(hinted_q, f"round {ctx.round}: rationalize x{ctx.loop.k}", ctx.seed)
    return kept + rationalizations(failed_q, hinted, samples, ctx.round)


def _row(s: SampleRow, round: int, shares: dict, **extra) -> SelectedRow:
    return SelectedRow(question_id=s.question_id, round=round, sample_index=s.sample_index, prompt=s.prompt,
                       completion=s.completion, answer=s.parsed_answer,
                       vote_share=shares.get((s.question_id, s.parsed_answer), 0.0), **extra)


def verifier(samples: Sequence[SampleRow], noise: float, seed: int, round: int) -> list[SelectedRow]:
    """ReST-EM (Singh et al. 2023): keep every sample the domain's checker accepts. With `noise` > 0 each
    verdict is flipped with that probability (one seeded draw per sample), so wrong samples slip in and
    right ones are lost, as with an imperfect unit-test suite or reward model."""
    flips = np.random.default_rng(seed).random(len(samples)) < noise
    shares = vote_shares(strip_labels(samples))
    return [_row(s, round, shares) for s, flip in zip(samples, flips) if s.correct != bool(flip)]


def gold_filter(samples: Sequence[SampleRow], round: int) -> tuple[list[SelectedRow], list[str]]:
    """STaR's first pass: the samples that reach the gold answer, and the ids of the questions none did."""
    shares = vote_shares(strip_labels(samples))
    kept = [_row(s, round, shares) for s in samples if s.correct]
    solved = {row.question_id for row in kept}
    failed = list(dict.fromkeys(s.question_id for s in samples if s.question_id not in solved))
    return kept, failed


def rationalizations(questions: Sequence[Question], hinted: Sequence[SampleRow], samples: Sequence[SampleRow],
                     round: int) -> list[SelectedRow]:
    """STaR's second pass: of the samples drawn with the gold answer as a hint, those that reach it, to be
    trained under the question's own prompt (the hint is dropped)."""
    prompts = {q.id: q.prompt for q in questions}
    shares = vote_shares(strip_labels(samples))
    return [_row(s, round, shares, source="rationalization").model_copy(update={"prompt": prompts[s.question_id]})
            for s in hinted if s.correct]
