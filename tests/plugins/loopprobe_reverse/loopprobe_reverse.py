"""Reverse a short word, letter by letter: a loopprobe domain and a label-free selector, out of tree.

    R: cab          (the prompt)
    b|a|c           (the chain of thought: the letters, last first)
    A: bac          (the answer line; the canonical answer is "bac")

Words of 3-4 letters are the trained skill, 5 letters the ood one. Written only against loopprobe's public
protocol: `harness.domains.base` (Domain, Question, Example, Splits, register_domain) and
`harness.strategies.select` (register_selector, majority_vote, group_by_question).
"""

from __future__ import annotations

import itertools
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.artifacts import SelectedRow
from harness.domains.base import Example, Question, Splits, register_domain
from harness.strategies.select import group_by_question, majority_vote, register_selector

LETTERS = "abcdef"
_ANSWER = re.compile(r"^A: ([a-z]{1,12})$", re.MULTILINE)


class ReverseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["reverse"] = "reverse"
    base_train_size: int = Field(400, ge=10, le=1000)
    base_val_size: int = Field(10, ge=1, le=100)
    pool_size: int = Field(24, ge=1, le=200)
    test_size: int = Field(12, ge=1, le=100)
    ood_size: int = Field(12, ge=1, le=100)

    def text_lengths(self) -> dict[str, int]:
        return {"prompt": 3 + 5 + 1, "completion": 2 * 5 - 1 + 1 + 3 + 5}


def _question(word: str) -> Question:
    return Question(id=f"rev:{word}", skill=f"len{len(word)}", prompt=f"R: {word}\n", answer=word[::-1])


@register_domain
class ReverseDomain:
    name = "reverse"
    config_class = ReverseConfig

    def __init__(self, config: ReverseConfig, seed: int):
        self.config, self.seed = config, seed

    def splits(self) -> Splits:
        c, rng = self.config, np.random.default_rng(self.seed)
        short = ["".join(w) for n in (3, 4) for w in itertools.product(LETTERS, repeat=n)]
        long = ["".join(w) for w in itertools.product(LETTERS, repeat=5)]
        short = [short[i] for i in rng.permutation(len(short))]
        long = [long[i] for i in rng.permutation(len(long))[: c.ood_size]]
        sizes = [c.test_size, c.pool_size, c.base_val_size, c.base_train_size]
        test, pool, val, train = (short[sum(sizes[:i]):sum(sizes[:i + 1])] for i in range(4))
        return Splits(base_train=[Example(q, self.reference_rationale(q)) for q in map(_question, train)],
                      base_val=list(map(_question, val)), pool=list(map(_question, pool)),
                      test=list(map(_question, test)), ood=list(map(_question, long)))

    def parse(self, completion: str) -> str | None:
        m = _ANSWER.search(completion) if isinstance(completion, str) else None
        return m.group(1) if m else None

    def check(self, question: Question, answer: str | None) -> bool:
        return answer == question.answer

    def reference_rationale(self, question: Question) -> str:
        return "|".join(question.answer) + f"\nA: {question.answer}"


@register_selector("shortest_agreeing", uses_labels=False,
                   description="of the samples agreeing with the majority, the shortest one per question")
def shortest_agreeing(samples, ctx) -> list[SelectedRow]:
    kept = []
    for qid, group in group_by_question(samples).items():
        vote = majority_vote([s.parsed_answer for s in group])
        if vote.answer is None:
            continue
        best = min((s for s in group if s.parsed_answer == vote.answer), key=lambda s: len(s.completion))
        kept.append(SelectedRow(question_id=qid, round=ctx.round, sample_index=best.sample_index, prompt=best.prompt,
                                completion=best.completion, answer=vote.answer, vote_share=vote.share))
    return kept
