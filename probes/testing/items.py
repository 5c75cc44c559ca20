"""Where a synthetic run's questions and texts come from: arithmetic's own (the default) or any registered
domain's. An item source gives the questions, wrong answers, the gold rationale's step lines and answer line,
the parser, the planted rule's answer (where the domain plants one) and a rationale with one wrong step.
"""

from __future__ import annotations

import functools
import json
from typing import Literal, Protocol

import numpy as np

from harness.domains.arithmetic import add_rationale, make_question, parse_answer, sub_rationale
from harness.domains.base import Distractors, PlantsRule, Question, recorded_domain


class ItemSource(Protocol):
    basin: str  # the one wrong answer a basin gathers questions onto

    def questions(self, n_train: int, n_ood: int, rng: np.random.Generator) -> tuple[list, list]: ...

    def near_wrong(self, q: Question, rng: np.random.Generator) -> str: ...

    def far_wrong(self, q: Question, rng: np.random.Generator) -> str: ...

    def rationale_lines(self, q: Question) -> list[str]: ...

    def answer_line(self, q: Question, answer: str) -> str: ...

    def parse(self, completion: str) -> str | None: ...

    def rule_answer(self, question_id: str) -> str | None: ...

    def plants_rule(self) -> bool: ...


def _questions(skill: Literal["add", "sub"], n: int, rng: np.random.Generator) -> list[Question]:
    seen: set[tuple[int, int]] = set()
    out: list[Question] = []
    while len(out) < n:
        a, b = (int(x) for x in rng.integers(10, 1000, size=2))
        if skill == "sub" and a < b:
            a, b = b, a
        if (a, b) not in seen:
            seen.add((a, b))
            out.append(make_question(skill, a, b))
    return out


class ArithmeticItems:
    """The default items: addition (trained skill) and subtraction (ood) questions with column rationales.
    The run records no `[domain]`, so its recorded domain (arithmetic, no misconception) plants no rule."""

    basin = "1000"

    def questions(self, n_train: int, n_ood: int, rng: np.random.Generator) -> tuple[list, list]:
        return _questions("add", n_train, rng), _questions("sub", n_ood, rng)

    def near_wrong(self, q: Question, rng: np.random.Generator) -> str:
        return str(int(q.answer) + int(rng.choice([-1, 1])) * int(rng.integers(1, 30)))

    def far_wrong(self, q: Question, rng: np.random.Generator) -> str:
        return str(int(q.answer) + int(rng.integers(31, 400)))

    def rationale_lines(self, q: Question) -> list[str]:
        a, b = (int(x) for x in q.id.split(":")[1].replace("-", "+").split("+"))
        return (add_rationale(a, b) if q.skill == "add" else sub_rationale(a, b)).split("\n")[:-1]

    def answer_line(self, q: Question, answer: str) -> str:
        return f"A: {answer}"

    def parse(self, completion: str) -> str | None:
        return parse_answer(completion)

    def rule_answer(self, question_id: str) -> str | None:
        return None

    def plants_rule(self) -> bool:
        return False


@functools.lru_cache(maxsize=8)
def _domain_items(config_json: str, seed: int):
    """(domain, its splits), built once per process per (config, seed): splits are deterministic in both, and
    building them (base-train included) dominates the cost of a small synthetic run."""
    domain = recorded_domain({"domain": json.loads(config_json)}, seed)
    return domain, domain.splits()


class DomainItems:
    """Any registered domain's items: its pool and test questions (trained skill) and ood ones, its gold
    rationales; a wrong answer replaces the truth in the rationale's last line."""

    basin = "<basin>"

    def __init__(self, domain_config: dict, seed: int):
        self.domain, self._splits = _domain_items(json.dumps(domain_config, sort_keys=True), seed)

    def questions(self, n_train: int, n_ood: int, rng: np.random.Generator) -> tuple[list, list]:
        splits = self._splits
        train, ood = (splits.pool + splits.test)[:n_train], splits.ood[:n_ood]
        if len(train) < n_train or len(ood) < n_ood:
            raise ValueError(f"domain {self.domain.name!r} has {len(train)} pool+test and {len(ood)} ood items; "
                             f"the synthetic run asks for {n_train} and {n_ood}")
        return train, ood

    def near_wrong(self, q: Question, rng: np.random.Generator) -> str:
        offset = int(rng.choice([-1, 1])) * int(rng.integers(1, 30))
        if isinstance(self.domain, Distractors):
            wrong = self.domain.distractor(q, abs(offset))
            if wrong != q.answer:
                return wrong
        return f"{q.answer}~{offset}"

    def far_wrong(self, q: Question, rng: np.random.Generator) -> str:
        return f"{q.answer}#{int(rng.integers(31, 400))}"

    def rationale_lines(self, q: Question) -> list[str]:
        return self.domain.reference_rationale(q).split("\n")[:-1]

    def answer_line(self, q: Question, answer: str) -> str:
        last = self.domain.reference_rationale(q).split("\n")[-1]
        head, found, tail = last.rpartition(q.answer)
        return f"{head}{answer}{tail}" if found else f"{last} {answer}"

    def parse(self, completion: str) -> str | None:
        return self.domain.parse(completion)

    def rule_answer(self, question_id: str) -> str | None:
        return self.domain.planted_answer(question_id) if isinstance(self.domain, PlantsRule) else None

    def plants_rule(self) -> bool:
        """Whether the rule changes the answer of any of the domain's pool or test questions (not only those
        a small run holds)."""
        return any(self.rule_answer(q.id) not in (None, q.answer) for q in self._splits.pool + self._splits.test)


def _last_symbol(text: str) -> tuple[int, str] | None:
    """(position, alphabet) of the last digit of `text` or, without one, of its last lowercase letter."""
    for alphabet in ("0123456789", "abcdefghijklmnopqrstuvwxyz"):
        at = max((i for i, c in enumerate(text) if c in alphabet), default=None)
        if at is not None:
            return at, alphabet
    return None


def _replace_last(text: str, rng: np.random.Generator) -> str | None:
    """`text` with its last digit (or, without one, its last lowercase letter) replaced by another one."""
    found = _last_symbol(text)
    if found is None:
        return None
    at, alphabet = found
    others = alphabet.replace(text[at], "")
    return text[:at] + others[int(rng.integers(len(others)))] + text[at + 1:]


def wrong_step(lines: list[str], answer_line: str, answer: str, rng: np.random.Generator
               ) -> tuple[list[str], str] | None:
    """The rationale with one wrong intermediate step and the same answer: the last digit of one step line
    replaced (arithmetic: a column's sum, "7+8+1=16" -> "7+8+1=13"; sorting: a letter's count, "a2 c1" ->
    "a2 c4"). A rationale that is its answer line alone (word problems) gets the last digit before its final
    answer replaced ("15 - 6 = 9. The answer is 9." -> "15 - 6 = 4. The answer is 9."). None when no step
    can be changed. The caller checks that the text still parses to `answer`."""
    steps = [i for i, line in enumerate(lines) if _last_symbol(line) is not None]
    if steps:
        i = steps[int(rng.integers(len(steps)))]
        return lines[:i] + [_replace_last(lines[i], rng) or lines[i]] + lines[i + 1:], answer_line
    head, found, tail = answer_line.rpartition(answer)
    changed = _replace_last(head, rng) if found else None
    return None if changed is None else (lines, changed + answer + tail)
