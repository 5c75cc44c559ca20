"""Selection: which of a round's samples become the next round's training set.

A selector is a function `(samples, context) -> list[SelectedRow]` registered with `@register_selector`,
which records whether it reads labels. Label-free selectors receive `UnlabeledSample`s, a type with no truth
and no correctness field, and a `SelectionContext` whose domain is a `LabelFreeDomain` (the parser and the
learner-side capabilities: no item sets, no checker, no hints), so they cannot use labels even by accident;
`strip_labels` is the only way the loop hands samples to them. Selectors that read labels get `SampleRow`s
and a `LabeledContext` (harness.strategies.labeled).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.artifacts import SampleRow, SelectedRow
from harness.registry import register


@dataclass(frozen=True)
class UnlabeledSample:
    question_id: str
    sample_index: int
    prompt: str
    completion: str
    parsed_answer: str | None  # canonical


class LabelFreeDomain:
    """What a label-free selector may ask of the domain: its name, the parser, and the capabilities that
    act on what the learner sees (`direct_completion`, `check_prompt`, `check_verdicts`). No item sets, no
    checker, no hints, no planted rule: those would carry the truth."""

    _ALLOWED = ("parse", "direct_completion", "check_prompt", "check_verdicts")

    def __init__(self, domain: Any):
        self.name: str = domain.name
        for attr in self._ALLOWED:
            if hasattr(domain, attr):
                object.__setattr__(self, attr, getattr(domain, attr))


@dataclass(frozen=True)
class SelectionContext:
    """Everything a label-free selector gets besides the samples."""

    round: int
    loop: Any  # the run's LoopConfig: tau, judge_keep, ... (selector settings)
    args: Any  # the selector's own validated `[loop] select_args` (its `args` model), or None
    model: Any  # the round's ModelBackend: judge and self_verify score with it
    domain: LabelFreeDomain
    seed: int  # a seed of this round's selection, for selectors that draw
    reporter: Any = None  # harness.progress.Reporter, for long-running selectors
    extra: dict[str, Any] = field(default_factory=dict)


Selector = Callable[[Sequence[Any], Any], list[SelectedRow]]


def register_selector(name: str, *, uses_labels: bool, requires: tuple[type, ...] = (), args: type | None = None,
                      prompts: tuple[str, ...] = (), seed_label: str | None = None,
                      description: str = "") -> Callable[[Selector], Selector]:
    """Register a selector. `uses_labels`: it gets `SampleRow`s and a `LabeledContext` (truth included);
    otherwise `UnlabeledSample`s and a `SelectionContext`. `requires`: the domain capabilities it needs
    (harness.domains.base), checked when a suite is validated. `args`: a pydantic model for its settings
    under `[loop] select_args`. `prompts`: keys of the domain config's `text_lengths()` for prompts it has the
    model complete with up to max_new_tokens (checked against the tiny backend's context). `seed_label`: the
    label of its per-round seed (default: its name)."""
    return register("selector", name, uses_labels=uses_labels, requires=requires, args=args, prompts=prompts,
                    seed_label=seed_label or name, description=description)


def strip_labels(rows: Sequence[SampleRow]) -> list[UnlabeledSample]:
    return [UnlabeledSample(r.question_id, r.sample_index, r.prompt, r.completion, r.parsed_answer) for r in rows]


@dataclass(frozen=True)
class Vote:
    answer: str | None  # None when no sample parsed
    share: float  # votes for the majority answer / all samples of the question (unparsed ones included)
    entropy: float  # Shannon entropy (nats) of the parsed-answer distribution; unparsed counts as one answer


def majority_vote(answers: Sequence[str | None]) -> Vote:
    """Majority over parsed answers; ties go to the answer seen first, so the vote is deterministic."""
    counts = Counter(answers)
    p = np.array(list(counts.values()), dtype=float) / len(answers)
    entropy = float(-(p * np.log(p)).sum())
    parsed = [(n, -answers.index(a), a) for a, n in counts.items() if a is not None]
    if not parsed:
        return Vote(None, 0.0, entropy)
    n, _, answer = max(parsed)
    return Vote(answer, n / len(answers), entropy)


def group_by_question(samples: Sequence[UnlabeledSample]) -> dict[str, list[UnlabeledSample]]:
    groups: dict[str, list[UnlabeledSample]] = defaultdict(list)
    for s in samples:
        groups[s.question_id].append(s)
    return {q: sorted(g, key=lambda s: s.sample_index) for q, g in groups.items()}


@register_selector("self_consistency", uses_labels=False,
                   description="LMSI: the samples agreeing with a majority vote of share >= tau")
def select_self_consistency(samples: Sequence[UnlabeledSample], ctx: SelectionContext) -> list[SelectedRow]:
    return self_consistency(samples, ctx.loop.tau, ctx.round)


def self_consistency(samples: Sequence[UnlabeledSample], tau: float, round: int) -> list[SelectedRow]:
    """LMSI (Huang et al. 2022): keep every sample that agrees with its question's majority answer when
    the majority's vote share is at least tau."""
    kept = []
    for qid, group in group_by_question(samples).items():
        vote = majority_vote([s.parsed_answer for s in group])
        if vote.answer is None or vote.share < tau:
            continue
        kept += [SelectedRow(question_id=qid, round=round, sample_index=s.sample_index, prompt=s.prompt,
                             completion=s.completion, answer=vote.answer, vote_share=vote.share)
                 for s in group if s.parsed_answer == vote.answer]
    return kept


def vote_shares(samples: Sequence[UnlabeledSample]) -> dict[tuple[str, str | None], float]:
    """(question id, answer) -> share of that question's samples giving the answer (label-free)."""
    out = {}
    for qid, group in group_by_question(samples).items():
        counts = Counter(s.parsed_answer for s in group)
        out.update({(qid, a): n / len(group) for a, n in counts.items()})
    return out


@register_selector("none", uses_labels=False, description="train on every sample (a control)")
def select_none(samples: Sequence[UnlabeledSample], ctx: SelectionContext) -> list[SelectedRow]:
    return keep_all(samples, ctx.round)


def keep_all(samples: Sequence[UnlabeledSample], round: int) -> list[SelectedRow]:
    """The `none` control: every sample is trained on, unparsed ones included."""
    shares = vote_shares(samples)
    return [SelectedRow(question_id=s.question_id, round=round, sample_index=s.sample_index, prompt=s.prompt,
                        completion=s.completion, answer=s.parsed_answer,
                        vote_share=shares[s.question_id, s.parsed_answer]) for s in samples]


def top_scored(samples: Sequence[UnlabeledSample], scores: Sequence[float] | np.ndarray, keep: float,
               round: int) -> list[SelectedRow]:
    """Self-rewarding: keep the top `keep` share of all parsed candidates by the judge's score (ties by
    question and sample order, so the choice is deterministic)."""
    shares = vote_shares(samples)
    ranked = sorted((i for i, s in enumerate(samples) if s.parsed_answer is not None and np.isfinite(scores[i])),
                    key=lambda i: (-scores[i], samples[i].question_id, samples[i].sample_index))
    chosen = sorted(ranked[: round_half_up(keep * len(samples))],
                    key=lambda i: (samples[i].question_id, samples[i].sample_index))
    return [SelectedRow(question_id=samples[i].question_id, round=round, sample_index=samples[i].sample_index,
                        prompt=samples[i].prompt, completion=samples[i].completion,
                        answer=samples[i].parsed_answer, score=float(scores[i]),
                        vote_share=shares[samples[i].question_id, samples[i].parsed_answer]) for i in chosen]


def round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))
