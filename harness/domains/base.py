"""What every domain provides: questions with hidden truth, a prompt format, a parser and a checker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Question:
    """One question. `answer` is the hidden ground truth: label-free strategies never see it."""

    id: str
    skill: str
    prompt: str
    answer: int


@dataclass(frozen=True)
class Example:
    """A (prompt, completion) training pair for the base model, and how it was made."""

    question: Question
    completion: str
    kind: str = "clean"  # "clean", "noise" or "misconception:<name>"


@dataclass(frozen=True)
class Splits:
    """The fixed item sets of a run (base-train, base-val, pool, test, ood, reference)."""

    base_train: list[Example]
    base_val: list[Question]  # held out from everything; steers base training only
    pool: list[Question]  # unlabeled questions the loop trains on
    test: list[Question]  # held-out questions of the trained skill
    ood: list[Question]  # a second skill the loop never trains on
    # (text id, context, text): the text's NLL given its context is scored every round (context may be "")
    reference: list[tuple[str, str, str]] = field(default_factory=list)


class Domain(Protocol):
    name: str

    def splits(self) -> Splits: ...

    def parse(self, completion: str) -> int | None:
        """The final answer in a completion, or None. Never raises, whatever the text."""

    def check(self, question: Question, answer: int | None) -> bool: ...

    def reference_rationale(self, question: Question) -> str: ...
