"""Multi-digit addition with a column-by-column chain of thought; subtraction as the held-out skill.

Prompt and completion (one line per column, least significant first, then the answer line)::

    Q: 472+389            Q: 472-389
    2+9=11                12-9=3        (a borrow shows as the 10 added to the top digit)
    7+8+1=16              17-8-1=8      (an incoming carry or borrow shows as "+1" / "-1")
    4+3+1=8               4-3-1=0
    A: 861                A: 83

Two controlled kinds of base-model error can be written into base-train:
- answer noise: the answer line of a fraction of examples gets one random wrong digit (diffuse errors);
- a planted misconception: a named systematic rule error, written consistently into the rationale and the
  answer of exactly a fraction of the examples where the rule applies (errors a majority vote shares).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.bounds import MAX_SPLIT, Float, Int, space_problem
from harness.domains.base import Example, Question, Splits, integer_slip, register_domain
from harness.seeding import derive_seed

Skill = Literal["add", "sub"]
_OP = {"add": "+", "sub": "-"}
_ANSWER_LINE = re.compile(r"^A: ?(-?\d{1,12})[ \t]*$", re.MULTILINE)


# ---------------------------------------------------------------- rationales


def _digits(n: int, width: int) -> list[int]:
    """Digits of n, least significant first, zero-padded to width."""
    return [(n // 10**i) % 10 for i in range(width)]


def _width(a: int, b: int) -> int:
    return max(len(str(a)), len(str(b)))


@dataclass(frozen=True)
class Misconception:
    """A systematic rule error for addition: `drops(column, n_columns)` says which carries are lost.

    A carry into column c (c == n_columns means the final carry-out) is dropped when drops(c, n) is True.
    """

    name: str
    description: str
    drops: Callable[[int, int], bool]

    def applies(self, a: int, b: int) -> bool:
        """True when the rule error changes this question's rationale."""
        return add_rationale(a, b, self) != add_rationale(a, b)


MISCONCEPTIONS: dict[str, Misconception] = {
    m.name: m
    for m in [
        Misconception("drop_carry_tens", "the carry from the units into the tens column is forgotten",
                      lambda c, n: c == 1 and n >= 2),
        Misconception("drop_final_carry", "the carry out of the leftmost column is not written (95+17=12)",
                      lambda c, n: c == n),
        Misconception("drop_all_carries", "no carry is ever propagated (column sums taken mod 10)",
                      lambda c, n: True),
    ]
}


def add_rationale(a: int, b: int, misconception: Misconception | None = None) -> str:
    n = _width(a, b)
    da, db = _digits(a, n), _digits(b, n)
    lines, out, carry = [], [], 0
    for c in range(n):
        if carry and misconception is not None and misconception.drops(c, n):
            carry = 0
        s = da[c] + db[c] + carry
        lines.append(f"{da[c]}+{db[c]}+{carry}={s}" if carry else f"{da[c]}+{db[c]}={s}")
        out.append(s % 10)
        carry = s // 10
    if carry and misconception is not None and misconception.drops(n, n):
        carry = 0
    answer = carry * 10**n + sum(d * 10**i for i, d in enumerate(out))
    return "\n".join(lines + [f"A: {answer}"])


def sub_rationale(a: int, b: int) -> str:
    """Column subtraction with borrowing; requires a >= b."""
    n = _width(a, b)
    da, db = _digits(a, n), _digits(b, n)
    lines, out, borrow = [], [], 0
    for c in range(n):
        d = da[c] - db[c] - borrow
        top = da[c] + 10 if d < 0 else da[c]
        lines.append(f"{top}-{db[c]}-{borrow}={d % 10}" if borrow else f"{top}-{db[c]}={d % 10}")
        out.append(d % 10)
        borrow = int(d < 0)
    return "\n".join(lines + [f"A: {sum(d * 10**i for i, d in enumerate(out))}"])


def parse_answer(completion: str) -> str | None:
    """The integer on the first line that reads exactly `A: <integer>`, in canonical form (no leading zeros,
    no "-0"); None for anything else."""
    if not isinstance(completion, str):
        return None
    m = _ANSWER_LINE.search(completion)
    return str(int(m.group(1))) if m else None


def make_question(skill: Skill, a: int, b: int) -> Question:
    answer = a + b if skill == "add" else a - b
    return Question(id=f"{skill}:{a}{_OP[skill]}{b}", skill=skill, prompt=f"Q: {a}{_OP[skill]}{b}\n",
                    answer=str(answer))


def question_from_id(question_id: str) -> Question:
    """The question an id names ("add:472+389"); a ValueError for anything else."""
    skill, _, expr = question_id.partition(":")
    if skill not in _OP or _OP[skill] not in expr:
        raise ValueError(f"{question_id!r} is not an arithmetic question id (add:A+B or sub:A-B)")
    a, b = expr.split(_OP[skill], 1)
    return make_question(skill, int(a), int(b))  # type: ignore[arg-type]


def operands(question: Question) -> tuple[int, int]:
    a, b = question.id.split(":", 1)[1].split(_OP[question.skill])
    return int(a), int(b)


def hint_prompt(question: Question) -> str:
    """STaR's rationalization prompt: the question with its gold answer given as a hint."""
    return f"{question.prompt[:-1]} (hint {question.answer})\n"


class ColumnDecomposition:
    """IDA for addition: the sub-questions are the column sums, units first. The model answers each one in
    the context of the trace so far; the harness writes the sub-question (carrying what the model's last
    sub-answer implies) and composes the answer line from the model's sub-answers."""

    _SUB_ANSWER = re.compile(r"(\d{1,2})(?:\n|$)")

    def __init__(self, question: Question):
        a, b = operands(question)
        n = _width(a, b)
        self.prompt = question.prompt
        self.da, self.db = _digits(a, n), _digits(b, n)
        self.lines: list[str] = []
        self.out: list[int] = []
        self.carry = 0
        self.failed = False

    def _head(self) -> str:
        c = len(self.lines)
        return f"{self.da[c]}+{self.db[c]}+1=" if self.carry else f"{self.da[c]}+{self.db[c]}="

    def next_prompt(self) -> str | None:
        """The prompt whose completion answers the next sub-question; None once the trace is complete."""
        if self.failed or len(self.lines) == len(self.da):
            return None
        return self.prompt + "".join(line + "\n" for line in self.lines) + self._head()

    def answer(self, text: str) -> None:
        """Take the model's completion of `next_prompt()`: a column sum of one or two digits, then a newline."""
        m = self._SUB_ANSWER.match(text)
        if m is None:
            self.failed = True
            return
        total = int(m.group(1))
        self.lines.append(self._head() + str(total))
        self.out.append(total % 10)
        self.carry = total // 10

    def composed(self) -> str:
        """The distilled target: the sub-answers' trace and the composed answer (no answer line if a
        sub-answer was unreadable, so the trace parses as no answer)."""
        if self.failed:
            return "\n".join(self.lines)
        answer = self.carry * 10 ** len(self.out) + sum(d * 10**i for i, d in enumerate(self.out))
        return "\n".join(self.lines + [f"A: {answer}"])


def corrupt_answer(completion: str, rng: np.random.Generator) -> str:
    """Replace one digit of the answer line with a different digit (never a leading zero)."""
    head, answer = completion.rsplit("A: ", 1)
    digits = list(answer)
    i = int(rng.integers(len(digits)))
    choices = [d for d in "0123456789" if d != digits[i] and not (i == 0 and d == "0" and len(digits) > 1)]
    digits[i] = choices[int(rng.integers(len(choices)))]
    return f"{head}A: {''.join(digits)}"


# ---------------------------------------------------------------- configuration


class ArithmeticConfig(BaseModel):
    """The arithmetic world: digit range, split sizes and the planted errors of base-train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["arithmetic"] = "arithmetic"
    min_digits: Int = Field(1, ge=1, le=6)
    max_digits: Int = Field(3, ge=1, le=6)
    # Every split is at most 10**6 items, and the splits of a skill must fit its question space (they are
    # disjoint): sum of the addition splits <= (numbers of min..max digits)**2, likewise for subtraction.
    base_train_size: Int = Field(12000, ge=10, le=MAX_SPLIT, description="addition examples in base-train")
    ood_train_size: Int = Field(4000, ge=0, le=MAX_SPLIT, description="subtraction examples in base-train")
    base_val_size: Int = Field(200, ge=10, le=MAX_SPLIT)
    pool_size: Int = Field(500, ge=1, le=MAX_SPLIT)
    test_size: Int = Field(300, ge=1, le=MAX_SPLIT)
    ood_size: Int = Field(300, ge=1, le=MAX_SPLIT)
    reference_size: Int = Field(200, ge=0, le=MAX_SPLIT, description="gold texts scored every round (3/4 add, "
                                                                     "1/4 sub)")
    answer_noise: Float = Field(0.0, ge=0.0, le=1.0, description="fraction of addition answers corrupted")
    misconception: str | None = Field(None, description=f"one of {sorted(MISCONCEPTIONS)}")
    misconception_rate: Float = Field(0.0, ge=0.0, le=1.0, description="fraction of applicable examples")
    hint_share: Float = Field(0.0, ge=0.0, le=1.0, description="share of clean addition examples also trained "
                                                              "with the gold answer as a hint (for STaR)")

    @model_validator(mode="after")
    def _check(self) -> ArithmeticConfig:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) must not exceed max_digits ({self.max_digits})")
        if self.misconception is not None and self.misconception not in MISCONCEPTIONS:
            raise ValueError(f"unknown misconception {self.misconception!r}; choose from {sorted(MISCONCEPTIONS)}")
        if self.misconception_rate > 0 and self.misconception is None:
            raise ValueError("misconception_rate > 0 needs a misconception name")
        problem = space_problem(self, self._spaces(), "lower the split sizes or raise max_digits")
        if problem:
            raise ValueError(problem)
        return self

    def question_space(self, skill: Skill) -> int:
        """How many distinct questions of a skill the digit range holds (subtraction: a >= b)."""
        counts = [_count(d) for d in range(self.min_digits, self.max_digits + 1)]
        if skill == "add":
            return sum(counts) ** 2
        return sum(ca * cb for i, ca in enumerate(counts) for cb in counts[:i]) + sum(
            (c * c + c) // 2 for c in counts)

    def _spaces(self) -> list[tuple[str, int, dict]]:
        """The splits drawn from each skill's question space (as ArithmeticDomain.splits draws them)."""
        digits = f"{self.min_digits}-{self.max_digits}" if self.min_digits < self.max_digits else str(self.min_digits)
        same = lambda n: n
        return [(f"{digits}-digit addition", self.question_space("add"),
                 {"test_size": same, "pool_size": same, "base_val_size": same,
                  "reference_size": lambda n: n - n // 4, "base_train_size": same}),
                (f"{digits}-digit subtraction (a >= b)", self.question_space("sub"),
                 {"ood_size": same, "reference_size": lambda n: n // 4, "ood_train_size": same})]

    def text_lengths(self) -> dict[str, int]:
        """Upper bounds on the characters of a prompt, a hint prompt (STaR), the longest prompt of a
        decomposition (IDA) and its sub-answer, a gold completion, and the longest base-train prompt."""
        d = self.max_digits
        prompt = 2 * d + 5  # "Q: " a op b "\n"
        hint = prompt + 8 + d + 1
        return {"prompt": prompt, "hint_prompt": hint, "decompose_prompt": prompt + 9 * (d - 1) + 6,
                "sub_questions": d, "sub_answer": 3, "completion": 10 * d + 4,
                "base_train_prompt": hint if self.hint_share else prompt}


# ---------------------------------------------------------------- splits


def _count(d: int) -> int:
    """How many integers have exactly d digits (0 counts as a 1-digit number)."""
    return 10 if d == 1 else 9 * 10 ** (d - 1)


def _low(d: int) -> int:
    return 0 if d == 1 else 10 ** (d - 1)


def _spread(total: int, k: int) -> list[int]:
    return [total // k + (i < total % k) for i in range(k)]


class _Stratum:
    """All (a, b) with a of da digits and b of db digits (for subtraction: a >= b). Draws without repeats."""

    def __init__(self, skill: Skill, da: int, db: int, rng: np.random.Generator):
        self.skill, self.da, self.db, self.rng = skill, da, db, rng
        self.size = _count(da) * _count(db)
        if skill == "sub" and da == db:
            self.size = (self.size + _count(da)) // 2  # unordered pairs with a >= b
        self._enumerated = self.size <= 50_000
        if self._enumerated:
            pairs = [(a, b) for a in range(_low(da), _low(da) + _count(da))
                     for b in range(_low(db), _low(db) + _count(db)) if skill == "add" or a >= b]
            self._order = [pairs[i] for i in rng.permutation(len(pairs))]
        self._used: set[tuple[int, int]] = set()
        self.taken = 0

    def draw(self, n: int) -> list[tuple[int, int]]:
        n = min(n, self.size - self.taken)
        if self._enumerated:
            out = self._order[self.taken:self.taken + n]
        else:
            out = []
            while len(out) < n:
                a = int(self.rng.integers(_low(self.da), _low(self.da) + _count(self.da)))
                b = int(self.rng.integers(_low(self.db), _low(self.db) + _count(self.db)))
                if self.skill == "sub" and a < b:
                    a, b = b, a
                if (a, b) not in self._used:
                    self._used.add((a, b))
                    out.append((a, b))
        self.taken += len(out)
        return out


def stratified_splits(skill: Skill, cfg: ArithmeticConfig, requests: dict[str, int], seed: int
                      ) -> dict[str, list[tuple[int, int]]]:
    """Disjoint, stratified item sets for one skill. Held-out splits first, base-train last."""
    rng = np.random.default_rng(seed)
    digit_range = range(cfg.min_digits, cfg.max_digits + 1)
    strata = [_Stratum(skill, da, db, rng) for da in digit_range for db in digit_range
              if skill == "add" or da >= db]
    cap = 0.5
    budget = {id(s): int(s.size * cap) for s in strata}
    out: dict[str, list[tuple[int, int]]] = {}
    for name, total in requests.items():
        held_out = name != "base_train"
        items: list[tuple[int, int]] = []
        for s, want in zip(strata, _spread(total, len(strata))):
            got = s.draw(min(want, budget[id(s)]) if held_out else want)
            if held_out:
                budget[id(s)] -= len(got)
            items += got
        for s in sorted(strata, key=lambda s: -s.size):  # refill any shortfall from the largest strata
            if len(items) >= total:
                break
            items += s.draw(total - len(items))
        out[name] = [items[i] for i in rng.permutation(len(items))]
    return out


@register_domain
class ArithmeticDomain:
    """Addition is the trained skill; subtraction the out-of-distribution one."""

    name = "arithmetic"
    config_class = ArithmeticConfig

    def __init__(self, config: ArithmeticConfig | None = None, seed: int = 0):
        self.config = config or ArithmeticConfig()
        self.seed = seed
        self.misconception = MISCONCEPTIONS.get(self.config.misconception or "")

    def parse(self, completion: str) -> str | None:
        return parse_answer(completion)

    def check(self, question: Question, answer: str | None) -> bool:
        return answer is not None and answer == question.answer

    def reference_rationale(self, question: Question) -> str:
        a, b = operands(question)
        return add_rationale(a, b) if question.skill == "add" else sub_rationale(a, b)

    def direct_completion(self, answer: str) -> str:
        """The answer-only format of a completion (LMSI's direct format)."""
        return f"A: {answer}"

    def distractor(self, question: Question, seed: int) -> str:
        return integer_slip(question, seed)

    def planted_answer(self, question_id: str) -> str | None:
        """The planted misconception's answer to an addition question, when it changes the rationale."""
        m = self.misconception
        try:
            q = question_from_id(question_id)
        except ValueError:
            return None
        if m is None or q.skill != "add" or not m.applies(*operands(q)):
            return None
        return parse_answer(add_rationale(*operands(q), m))

    def hint_prompt(self, question: Question) -> str:
        return hint_prompt(question)

    def sub_answer_tokens(self) -> int:
        return 3  # a column sum is at most two digits, then a newline

    def decompose(self, question: Question) -> ColumnDecomposition:
        if question.skill != "add":
            raise ValueError(f"{question.id}: only addition decomposes into column sums")
        return ColumnDecomposition(question)

    def splits(self) -> Splits:
        c = self.config
        n_ref_sub = c.reference_size // 4
        add = stratified_splits("add", c, {
            "test": c.test_size, "pool": c.pool_size, "base_val": c.base_val_size,
            "reference": c.reference_size - n_ref_sub, "base_train": c.base_train_size,
        }, derive_seed(self.seed, "arithmetic", "add"))
        sub = stratified_splits("sub", c, {
            "ood": c.ood_size, "reference": n_ref_sub, "base_train": c.ood_train_size,
        }, derive_seed(self.seed, "arithmetic", "sub"))
        q = {name: [make_question("add", a, b) for a, b in items] for name, items in add.items()}
        q_sub = {name: [make_question("sub", a, b) for a, b in items] for name, items in sub.items()}
        base_train = self._plant_errors(q["base_train"])
        base_train += self._hinted(base_train) + [
            Example(x, self.reference_rationale(x)) for x in q_sub["base_train"]]
        order = np.random.default_rng(derive_seed(self.seed, "arithmetic", "shuffle")).permutation(len(base_train))
        reference = [(f"ref:{x.id}", x.prompt, self.reference_rationale(x))
                     for x in q["reference"] + q_sub["reference"]]
        return Splits(base_train=[base_train[i] for i in order], base_val=q["base_val"], pool=q["pool"],
                      test=q["test"], ood=q_sub["ood"], reference=reference)

    def _hinted(self, examples: list[Example]) -> list[Example]:
        """Copies of round(hint_share * n) clean examples under the hint prompt, so that the model learns to
        use a hint (STaR rationalizes with a model that can)."""
        if self.config.hint_share == 0:
            return []
        rng = np.random.default_rng(derive_seed(self.seed, "arithmetic", "hints"))
        clean = [e for e in examples if e.kind == "clean"]
        chosen = rng.permutation(len(clean))[: round(self.config.hint_share * len(examples))]
        return [Example(Question(e.question.id, e.question.skill, hint_prompt(e.question), e.question.answer),
                        e.completion, "hinted") for e in (clean[i] for i in sorted(chosen))]

    def _plant_errors(self, questions: list[Question]) -> list[Example]:
        """Clean rationales, then the misconception on exactly round(rate * applicable) of the applicable
        examples, then answer noise on exactly round(noise * n) of the remaining ones."""
        c = self.config
        rng = np.random.default_rng(derive_seed(self.seed, "arithmetic", "errors"))
        kinds = ["clean"] * len(questions)
        texts = [self.reference_rationale(q) for q in questions]
        m = self.misconception
        if m is not None and c.misconception_rate > 0:
            applicable = [i for i, q in enumerate(questions) if m.applies(*operands(q))]
            chosen = rng.permutation(applicable)[: round(c.misconception_rate * len(applicable))]
            for i in chosen:
                texts[i] = add_rationale(*operands(questions[i]), m)
                kinds[i] = f"misconception:{m.name}"
        if c.answer_noise > 0:
            clean = [i for i, k in enumerate(kinds) if k == "clean"]
            for i in rng.permutation(clean)[: round(c.answer_noise * len(questions))]:
                texts[i] = corrupt_answer(texts[i], rng)
                kinds[i] = "noise"
        return [Example(q, t, k) for q, t, k in zip(questions, texts, kinds)]
