"""Generated grade-school word problems with known integer answers, for pretrained models.

One-step problems (add, subtract, multiply, share) are the trained skill; two-step problems (make-and-sell,
gain twice, packs plus extras) are the out-of-distribution one. A prompt is a two-shot chain of thought whose
two worked examples are of the question's own kind: a small pretrained model (SmolLM2-135M) copies the
operation of the last example it saw, so mixed examples turned "buys 3 more" into a multiplication
(measured: greedy 4/20 with one addition and one multiplication shot for every question).

    Answer each question. Think step by step, then finish with "The answer is N."

    Question: Anna had 7 balloons. She gave 4 to a friend. How many balloons does Anna have left?
    Answer: Anna had 7 balloons and gave away 4, so 7 - 4 = 3. The answer is 3.

    Question: Omar had 6 jars. ...
    Answer: ...

    Question: Tom had 15 marbles. He gave 6 to a friend. How many marbles does Tom have left?
    Answer:

The completion starts with a space (" Tom had 15 marbles ... The answer is 9."), as a BPE model continues
"Answer:". The examples use names and objects the generator never draws, so they leak no item.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.bounds import MAX_SPLIT, Int, space_problem
from harness.domains.base import Example, Question, Splits, integer_slip, register_domain
from harness.seeding import derive_seed

NAMES = {"Tom": "He", "Sara": "She", "Lily": "She", "Ben": "He", "Maya": "She", "Sam": "He", "Nora": "She",
         "Leo": "He"}
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "cards", "shells"]

INSTRUCTION = 'Answer each question. Think step by step, then finish with "The answer is N."'
SHOT_NAMES = {"Anna": "She", "Omar": "He"}  # never drawn for items
SHOT_ITEMS = ["balloons", "jars"]
SHOT_NUMBERS: dict[int, list[tuple[int, ...]]] = {2: [(7, 4), (6, 3)], 3: [(4, 3, 5), (3, 5, 2)]}
STOP = ["\nQuestion:"]  # a base model given this prompt goes on to write the next question: stop there

_ANSWER = re.compile(r"answer\s+is\s*:?\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Template:
    name: str
    skill: str
    kinds: str  # one letter per operand: "n" a count in [min_number, max_number], "f" a factor up to max_factor
    valid: Callable[..., bool]
    answer: Callable[..., int]
    question: str  # format fields: name, Pron, item and a, b, c
    rationale: str


TEMPLATES = [
    Template("add", "one_step", "nn", lambda a, b: True, lambda a, b: a + b,
             "{name} has {a} {item}. {Pron} buys {b} more. How many {item} does {name} have now?",
             "{name} starts with {a} {item} and buys {b} more, so {a} + {b} = {ans}."),
    Template("sub", "one_step", "nn", lambda a, b: a > b, lambda a, b: a - b,
             "{name} had {a} {item}. {Pron} gave {b} to a friend. How many {item} does {name} have left?",
             "{name} had {a} {item} and gave away {b}, so {a} - {b} = {ans}."),
    Template("mul", "one_step", "ff", lambda a, b: True, lambda a, b: a * b,
             "A box holds {a} {item}. How many {item} are in {b} boxes?",
             "Each box holds {a} {item}, so {b} boxes hold {b} x {a} = {ans} {item}."),
    Template("share", "one_step", "ff", lambda a, b: True, lambda a, b: a,
             "{name} shares {ab} {item} equally among {b} friends. How many {item} does each friend get?",
             "{ab} {item} shared among {b} friends is {ab} / {b} = {ans} each."),
    Template("make_sell", "two_step", "ffn", lambda a, b, c: c < a * b, lambda a, b, c: a * b - c,
             "A baker makes {a} trays of {b} {item} and sells {c}. How many {item} are left?",
             "The baker makes {a} x {b} = {ab} {item}. After selling {c}, {ab} - {c} = {ans} are left."),
    Template("gain_twice", "two_step", "nnn", lambda a, b, c: True, lambda a, b, c: a + b + c,
             "{name} has {a} {item}, gets {b} more on Monday and {c} more on Tuesday. How many {item} does "
             "{name} have now?",
             "{name} has {a} + {b} = {a_b} after Monday, then {a_b} + {c} = {ans}."),
    Template("packs_plus", "two_step", "ffn", lambda a, b, c: True, lambda a, b, c: a * b + c,
             "{name} buys {a} packs of {b} {item} and finds {c} more. How many {item} does {name} have?",
             "{a} packs of {b} is {a} x {b} = {ab} {item}, and {ab} + {c} = {ans}."),
]
_BY_NAME = {t.name: t for t in TEMPLATES}


def parse_answer(completion: str) -> str | None:
    """The whole number after the first "The answer is", in canonical form ("1,200" and "1200.0" give
    "1200"); None when there is none. Never raises."""
    value = _parse_int(completion)
    return None if value is None else str(value)


def _parse_int(completion: str) -> int | None:
    """The integer after the first "The answer is" (case-insensitive; "$", "**", "1,200" and a final "."
    allowed); None when there is none or it is not a whole number. Never raises."""
    if not isinstance(completion, str):
        return None
    m = _ANSWER.search(completion)
    if m is None:
        return None
    number = m.group(1).replace(",", "")
    try:
        value = float(number) if "." in number else int(number)
    except ValueError:
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e15 else None
    return value


def _fields(t: Template, name: str, item: str, nums: tuple[int, ...]) -> dict:
    a, b, c = (*nums, 0)[:3]
    return {"name": name, "Pron": {**NAMES, **SHOT_NAMES}[name], "item": item, "a": a, "b": b, "c": c,
            "ab": a * b, "a_b": a + b, "ans": t.answer(*nums)}


def worked_example(t: Template, name: str, item: str, nums: tuple[int, ...]) -> tuple[str, str]:
    f = _fields(t, name, item, nums)
    return t.question.format(**f), f"{t.rationale.format(**f)} The answer is {f['ans']}."


def few_shot_prompt(t: Template, question_text: str, shots: int = 2) -> str:
    """The instruction, `shots` worked examples of the same template, then the question."""
    examples = [worked_example(t, name, item, nums)
                for name, item, nums in zip(SHOT_NAMES, SHOT_ITEMS, SHOT_NUMBERS[len(t.kinds)][:shots])]
    parts = [INSTRUCTION, ""] + [f"Question: {q}\nAnswer: {a}\n" for q, a in examples]
    return "\n".join(parts + [f"Question: {question_text}\nAnswer:"])


class WordProblemsConfig(BaseModel):
    """Number ranges and split sizes of the word-problem world."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["word_problems"] = "word_problems"
    # Operands at most 100: a template's every operand tuple is enumerated (100**3 for three counts).
    min_number: Int = Field(2, ge=1, le=99)
    max_number: Int = Field(20, ge=2, le=100, description="counts are drawn from [min_number, max_number] (at "
                                                           "most 100)")
    max_factor: Int = Field(10, ge=2, le=100, description="factors (multiply, share) from [min_number, max_factor] "
                                                           "(at most 100)")
    shots: Int = Field(2, ge=0, le=2, description="worked examples (of the question's kind) in every prompt")
    # Every split is at most 10**6 items, and the splits of a skill must fit its question space (disjoint
    # operand tuples of its templates).
    base_train_size: Int = Field(200, ge=0, le=MAX_SPLIT, description="one-step examples with gold rationales")
    ood_train_size: Int = Field(0, ge=0, le=MAX_SPLIT, description="two-step examples in base-train")
    base_val_size: Int = Field(20, ge=1, le=MAX_SPLIT)
    pool_size: Int = Field(64, ge=1, le=MAX_SPLIT)
    test_size: Int = Field(50, ge=1, le=MAX_SPLIT)
    ood_size: Int = Field(50, ge=1, le=MAX_SPLIT)
    reference_size: Int = Field(20, ge=0, le=MAX_SPLIT, description="gold texts scored every round (one-step)")

    @model_validator(mode="after")
    def _check(self) -> WordProblemsConfig:
        if self.min_number >= min(self.max_number, self.max_factor):
            raise ValueError(f"min_number ({self.min_number}) must be below max_number ({self.max_number}) "
                             f"and max_factor ({self.max_factor})")
        same = lambda n: n
        problem = space_problem(self, [
            ("one-step word problem", self.question_space("one_step"),
             {"test_size": same, "pool_size": same, "base_val_size": same, "reference_size": same,
              "base_train_size": same}),
            ("two-step word problem", self.question_space("two_step"), {"ood_size": same, "ood_train_size": same})],
            "the splits do not fit the number ranges: raise max_number / max_factor or lower the split sizes")
        if problem:
            raise ValueError(problem)
        return self

    def question_space(self, skill: str) -> int:
        """Distinct questions of a skill: the valid operand tuples of its templates (WordProblemsDomain._space)."""
        return _space_size(skill, self.min_number, self.max_number, self.max_factor)

    def text_lengths(self) -> dict[str, int]:
        """Upper bounds on the characters of a prompt, a hint prompt (STaR) and a gold completion: each
        template written with its largest operands and the longest name and item."""
        name, item = max(NAMES, key=len), max(ITEMS, key=len)
        prompt = completion = 0
        for t in TEMPLATES:
            nums = tuple(self.max_number if k == "n" else self.max_factor for k in t.kinds)
            f = _fields(t, name, item, nums)
            f = {**f, "ans": max(f["ab"], f["a_b"] + f["c"], abs(f["ans"]))}  # at least as long as any answer
            text = t.question.format(**f)
            prompt = max(prompt, len(few_shot_prompt(t, text, self.shots)))
            completion = max(completion, len(f" {t.rationale.format(**f)} The answer is {f['ans']}."))
        hint = len(" (Hint: the answer is .)") + len(str(self.max_number * self.max_factor + self.max_number))
        return {"prompt": prompt, "hint_prompt": prompt + hint, "completion": completion}


@functools.lru_cache(maxsize=256)
def _space_size(skill: str, low: int, max_number: int, max_factor: int) -> int:
    total = 0
    for t in (t for t in TEMPLATES if t.skill == skill):
        ranges = [np.arange(low, (max_number if k == "n" else max_factor) + 1) for k in t.kinds]
        grids = np.meshgrid(*ranges, indexing="ij", sparse=True)
        total += int(np.broadcast_to(np.asarray(t.valid(*grids)), tuple(len(r) for r in ranges)).sum())
    return total


@register_domain
class WordProblemsDomain:
    """The Domain protocol over generated word problems (see the module docstring for the format)."""

    name = "word_problems"
    config_class = WordProblemsConfig

    def __init__(self, config: WordProblemsConfig | None = None, seed: int = 0):
        self.config = config or WordProblemsConfig()
        self.seed = seed

    def parse(self, completion: str) -> str | None:
        return parse_answer(completion)

    def check(self, question: Question, answer: str | None) -> bool:
        return answer is not None and answer == question.answer

    def reference_rationale(self, question: Question) -> str:
        return " " + worked_example(*self._decode_id(question.id))[1]

    def direct_completion(self, answer: str) -> str:
        return f" The answer is {answer}."

    def distractor(self, question: Question, seed: int) -> str:
        return integer_slip(question, seed)

    def hint_prompt(self, question: Question) -> str:
        head, _, tail = question.prompt.rpartition("\nAnswer:")
        return f"{head} (Hint: the answer is {question.answer}.)\nAnswer:{tail}"

    @staticmethod
    def _decode_id(qid: str) -> tuple[Template, str, str, tuple[int, ...]]:
        template, name, item, *nums = qid.split(":")
        return _BY_NAME[template], name, item, tuple(int(n) for n in nums)

    def make_question(self, template: str, name: str, item: str, nums: tuple[int, ...]) -> Question:
        t = _BY_NAME[template]
        text = t.question.format(**_fields(t, name, item, nums))
        qid = ":".join([t.name, name, item, *map(str, nums)])
        return Question(id=qid, skill=t.skill, prompt=few_shot_prompt(t, text, self.config.shots),
                        answer=str(t.answer(*nums)))

    def _space(self, t: Template, rng: np.random.Generator) -> list[tuple[int, ...]]:
        """Every valid operand tuple of a template, in a seeded random order."""
        c = self.config
        ranges = [range(c.min_number, (c.max_number if k == "n" else c.max_factor) + 1) for k in t.kinds]
        tuples = [nums for nums in itertools.product(*ranges) if t.valid(*nums)]
        return [tuples[i] for i in rng.permutation(len(tuples))]

    def _draw(self, skill: str, requests: dict[str, int], rng: np.random.Generator) -> dict[str, list[Question]]:
        """Disjoint item sets (no two share a template and operands), templates taken in turn while they last."""
        spaces = {t.name: self._space(t, rng) for t in TEMPLATES if t.skill == skill}
        total = sum(requests.values())
        if total > sum(map(len, spaces.values())):
            raise ValueError(f"word_problems: {total} {skill} items do not fit the number ranges; raise "
                             "max_number / max_factor or lower the split sizes")
        turn = 0
        out: dict[str, list[Question]] = {}
        for split, n in requests.items():
            items: list[Question] = []
            while len(items) < n:
                live = [name for name, space in spaces.items() if space]
                template = live[turn % len(live)]
                turn += 1
                nums = spaces[template].pop()
                name = list(NAMES)[int(rng.integers(len(NAMES)))]
                items.append(self.make_question(template, name, ITEMS[int(rng.integers(len(ITEMS)))], nums))
            out[split] = [items[j] for j in rng.permutation(len(items))]
        return out

    def splits(self) -> Splits:
        c = self.config
        one = self._draw("one_step", {"test": c.test_size, "pool": c.pool_size, "base_val": c.base_val_size,
                                      "reference": c.reference_size, "base_train": c.base_train_size},
                         np.random.default_rng(derive_seed(self.seed, "word_problems", "one_step")))
        two = self._draw("two_step", {"ood": c.ood_size, "base_train": c.ood_train_size},
                         np.random.default_rng(derive_seed(self.seed, "word_problems", "two_step")))
        base_train = [Example(q, self.reference_rationale(q)) for q in one["base_train"] + two["base_train"]]
        reference = [(f"ref:{q.id}", q.prompt, self.reference_rationale(q)) for q in one["reference"]]
        return Splits(base_train=base_train, base_val=one["base_val"], pool=one["pool"], test=one["test"],
                      ood=two["ood"], reference=reference)
