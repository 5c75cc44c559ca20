"""Sorting short lists of letters with a counting chain of thought; descending order as the held-out skill.

Prompt and completion (the distinct letters in order with their counts, then the answer line)::

    S: d a c a            R: d a c a        (S: ascending, the trained skill; R: descending, the ood one)
    a2 c1 d1              d1 c1 a2
    A: a a c d            A: d c a a

Answers are strings: the canonical form is the letters separated by single spaces ("a a c d"). Question
ids are the skill and the input's letters ("asc:daca", "desc:daca"); `question_from_id` parses them back.

The learner can check a candidate in one scored token instead of a sampled chain of thought (are its
letters in order, and are they exactly the input's?). The `SelfChecks` prompt shows the question and the candidate's answer rewritten
in the counting line's form, run by run in its own order (a function of the completion alone, never of the
truth), and the verdict is one character, "Y" (accept) or "N" (reject)::

    S: d a c a            S: d a c a            S: d a c a
    a2 c1 d1              a1 c1 d1              a1 c1 a1 d1      (answers "a a c d", "a c d", "a c a d")
    OK? Y                 OK? N                 OK? N

Base-train holds `check_share` such check examples per question, half with the right answer and half with
a wrong one made by the generator's own corruptions (`corrupt`: a letter replaced, dropped or added, or an
error of order), so the learner's check is learned from data and imperfect, not an oracle.

Two controlled kinds of base-model error can be written into base-train (ascending skill only):
- answer noise: the answer line of a fraction of examples gets one corruption (diffuse errors);
- a planted misconception: a named systematic rule error, written consistently into the counting line and
  the answer of exactly a fraction of the examples where the rule applies (errors a majority vote shares).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from string import ascii_lowercase
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.bounds import MAX_SPLIT, Float, Int, space_problem
from harness.domains.base import Example, Question, Splits, register_domain
from harness.seeding import derive_seed

Skill = Literal["asc", "desc"]
_TAG = {"asc": "S", "desc": "R"}
_ANSWER_LINE = re.compile(r"^A: ?([a-z](?: [a-z])*)[ \t]*$", re.MULTILINE)
_ID = re.compile(r"(asc|desc):([a-z]{1,64})")
ACCEPT, REJECT = "Y", "N"
MAX_LENGTH = 12  # letters per list: counts stay short and every text fits the default context


# ---------------------------------------------------------------- rationales


@dataclass(frozen=True)
class Misconception:
    """A systematic rule error of ascending sorting: `rewrite(order, counts)` turns the right (letters in
    order, count of each) into the misconception's."""

    name: str
    description: str
    rewrite: Callable[[list[str], dict[str, int]], tuple[list[str], dict[str, int]]]

    def applies(self, letters: str) -> bool:
        """True when the rule error changes this question's answer."""
        return rationale(letters, "asc", self) != rationale(letters, "asc")


MISCONCEPTIONS: dict[str, Misconception] = {
    m.name: m
    for m in [
        Misconception("drop_duplicates", "a repeated letter is written once (d a c a -> a c d)",
                      lambda order, counts: (order, {c: 1 for c in order})),
        Misconception("c_last", "the letter c is placed after every other letter (d a c -> a d c)",
                      lambda order, counts: ([c for c in order if c != "c"] + [c for c in order if c == "c"],
                                             counts)),
    ]
}


def rationale(letters: str, skill: Skill = "asc", misconception: Misconception | None = None) -> str:
    """The counting chain of thought and answer line for the letters of a list (a string, "daca")."""
    counts = dict(Counter(letters))
    order = sorted(counts, reverse=skill == "desc")
    if misconception is not None:
        order, counts = misconception.rewrite(order, counts)
    answer = " ".join(c for c in order for _ in range(counts[c]))
    return " ".join(f"{c}{counts[c]}" for c in order) + f"\nA: {answer}"


def parse_answer(completion: str) -> str | None:
    """The letters on the first line that reads exactly `A: <letters separated by single spaces>`, in
    canonical form ("a a c d"); None for anything else. Never raises."""
    if not isinstance(completion, str):
        return None
    m = _ANSWER_LINE.search(completion)
    return m.group(1) if m else None


def make_question(skill: Skill, letters: str) -> Question:
    answer = " ".join(sorted(letters, reverse=skill == "desc"))
    return Question(id=f"{skill}:{letters}", skill=skill, prompt=f"{_TAG[skill]}: {' '.join(letters)}\n",
                    answer=answer)


def question_from_id(question_id: str) -> Question:
    """The question an id names ("asc:daca"); a ValueError for anything else."""
    m = _ID.fullmatch(question_id) if isinstance(question_id, str) else None
    if m is None:
        raise ValueError(f"{question_id!r} is not a sorting question id (asc:LETTERS or desc:LETTERS)")
    return make_question(m.group(1), m.group(2))  # type: ignore[arg-type]


def letters_of(question: Question) -> str:
    return question.id.split(":", 1)[1]


def hint_prompt(question: Question) -> str:
    """STaR's rationalization prompt: the question with its gold answer given as a hint."""
    return f"{question.prompt[:-1]} (hint {question.answer})\n"


def counts_line(answer: str) -> str:
    """An answer in the counting line's form, run by run in its own order: "a a c d" -> "a2 c1 d1",
    "a c a" -> "a1 c1 a1"."""
    return " ".join(f"{c}{len(list(run))}" for c, run in groupby(answer.split(" ")))


def check_prompt(prompt: str, completion: str) -> str:
    """The learner's check of a candidate: the question, the candidate's answer in the counting line's form
    ("?" when it has no answer line), then "OK? "; the verdict that follows is ACCEPT or REJECT."""
    answer = parse_answer(completion)
    head = prompt if isinstance(prompt, str) else ""
    return f"{head if head.endswith(chr(10)) else head + chr(10)}{'?' if answer is None else counts_line(answer)}\nOK? "


def corrupt(answer: str, alphabet: str, rng: np.random.Generator) -> str:
    """A wrong answer made from a right one by one corruption: half a letter replaced by any letter of the
    alphabet (kept in order), a quarter an error of order (two different neighbours swapped, or a letter
    moved elsewhere), a quarter a letter dropped or one added (in order). Never the answer itself."""
    letters = answer.split(" ")
    ascending = letters == sorted(letters)
    while True:
        out, u = list(letters), rng.random()
        if u < 0.25 and len(set(letters)) > 1:  # order
            if rng.random() < 0.5:
                i = int(rng.choice([i for i in range(len(out) - 1) if out[i] != out[i + 1]]))
                out[i], out[i + 1] = out[i + 1], out[i]
            else:
                out.insert(int(rng.integers(len(out))), out.pop(int(rng.integers(len(out)))))
        else:  # content: replace (u < 0.75), else drop or add
            drop = u >= 0.75 and len(out) > 1 and rng.random() < 0.5
            if u < 0.75 or drop:
                del out[int(rng.integers(len(out)))]
            if not drop:
                out.append(alphabet[int(rng.integers(len(alphabet)))])
                out.sort(reverse=not ascending)
        if out != letters:
            return " ".join(out)


# ---------------------------------------------------------------- configuration


class SortingConfig(BaseModel):
    """The sorting world: alphabet, list lengths, split sizes, check examples and planted errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["sorting"] = "sorting"
    alphabet_size: Int = Field(8, ge=2, le=26, description="letters a, b, ... used (at most 26)")
    min_length: Int = Field(3, ge=1, le=MAX_LENGTH, description=f"letters per list (at most {MAX_LENGTH})")
    max_length: Int = Field(6, ge=1, le=MAX_LENGTH, description=f"letters per list (at most {MAX_LENGTH})")
    base_train_size: Int = Field(8000, ge=10, le=MAX_SPLIT, description="ascending examples in base-train")
    ood_train_size: Int = Field(2000, ge=0, le=MAX_SPLIT, description="descending examples in base-train")
    base_val_size: Int = Field(200, ge=10, le=MAX_SPLIT)
    pool_size: Int = Field(500, ge=1, le=MAX_SPLIT)
    test_size: Int = Field(300, ge=1, le=MAX_SPLIT)
    ood_size: Int = Field(300, ge=1, le=MAX_SPLIT)
    reference_size: Int = Field(200, ge=0, le=MAX_SPLIT, description="gold texts scored every round (3/4 "
                                                                     "ascending, 1/4 descending)")
    check_share: Float = Field(0.5, ge=0.0, le=4.0, description="check examples per base-train question (at most "
                                                                "4; half right, half wrong)")
    answer_noise: Float = Field(0.0, ge=0.0, le=1.0, description="fraction of ascending answers corrupted")
    misconception: str | None = Field(None, description=f"one of {sorted(MISCONCEPTIONS)}")
    misconception_rate: Float = Field(0.0, ge=0.0, le=1.0, description="fraction of applicable examples")
    hint_share: Float = Field(0.0, ge=0.0, le=1.0, description="share of clean ascending examples also trained "
                                                              "with the gold answer as a hint (for STaR)")

    @model_validator(mode="after")
    def _check(self) -> SortingConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) must not exceed max_length ({self.max_length})")
        if self.misconception is not None and self.misconception not in MISCONCEPTIONS:
            raise ValueError(f"unknown misconception {self.misconception!r}; choose from {sorted(MISCONCEPTIONS)}")
        if self.misconception_rate > 0 and self.misconception is None:
            raise ValueError("misconception_rate > 0 needs a misconception name")
        if self.misconception == "c_last" and self.alphabet_size < 4:
            raise ValueError("misconception c_last needs an alphabet_size of at least 4 (a letter after c)")
        problem = space_problem(self, self._spaces(), "lower the split sizes or raise alphabet_size or max_length")
        if problem:
            raise ValueError(problem)
        return self

    @property
    def alphabet(self) -> str:
        return ascii_lowercase[: self.alphabet_size]

    def question_space(self) -> int:
        """How many distinct lists (of each skill) the alphabet and lengths hold."""
        return sum(self.alphabet_size**n for n in range(self.min_length, self.max_length + 1))

    def _spaces(self) -> list[tuple[str, int, dict]]:
        """The splits drawn from each skill's question space (as SortingDomain.splits draws them)."""
        lengths = f"{self.min_length}-{self.max_length}" if self.min_length < self.max_length else str(self.min_length)
        lists = f"{lengths}-letter ({self.alphabet[0]}-{self.alphabet[-1]})"
        same = lambda n: n
        return [(f"ascending {lists}", self.question_space(),
                 {"test_size": same, "pool_size": same, "base_val_size": same,
                  "reference_size": lambda n: n - n // 4, "base_train_size": same}),
                (f"descending {lists}", self.question_space(),
                 {"ood_size": same, "reference_size": lambda n: n // 4, "ood_train_size": same})]

    def text_lengths(self) -> dict[str, int]:
        """Upper bounds on the characters of a prompt, a hint prompt (STaR), a check prompt of a candidate of
        at most max_length + 1 letters (its verdict is one more), a gold completion (a noisy answer may hold
        one letter more), and `base_train_prompt`: with `completion` added, a bound on every base-train text
        (a check example is its check prompt and a one-character verdict)."""
        n = self.max_length
        prompt, hint, check, completion = 2 * n + 3, 4 * n + 10, 5 * n + 10, 5 * n + 4  # prompt: "S: " letters "\n"
        longest = max(prompt, hint if self.hint_share else 0, check + 1 - completion if self.check_share else 0)
        return {"prompt": prompt, "hint_prompt": hint, "check_prompt": check, "completion": completion,
                "base_train_prompt": longest}


# ---------------------------------------------------------------- splits


class _Stratum:
    """All lists of one length over the alphabet, drawn without repeats in a seeded order."""

    def __init__(self, alphabet: str, length: int, rng: np.random.Generator):
        self.alphabet, self.length, self.rng = alphabet, length, rng
        self.size = len(alphabet) ** length
        self._order = rng.permutation(self.size) if self.size <= 50_000 else None
        self._used: set[int] = set()
        self.taken = 0

    def _letters(self, index: int) -> str:
        return "".join(self.alphabet[(index // len(self.alphabet) ** i) % len(self.alphabet)]
                       for i in range(self.length))

    def draw(self, n: int) -> list[str]:
        n = min(n, self.size - self.taken)
        if self._order is not None:
            out = [int(i) for i in self._order[self.taken:self.taken + n]]
        else:
            out = []
            while len(out) < n:
                i = int(self.rng.integers(self.size))
                if i not in self._used:
                    self._used.add(i)
                    out.append(i)
        self.taken += n
        return [self._letters(i) for i in out]


def stratified_splits(cfg: SortingConfig, requests: dict[str, int], seed: int) -> dict[str, list[str]]:
    """Disjoint item sets spread evenly over the list lengths (a held-out split takes at most half of a
    length's lists); any shortfall is drawn from the longest lengths. Held-out splits first, base-train last."""
    rng = np.random.default_rng(seed)
    strata = [_Stratum(cfg.alphabet, n, rng) for n in range(cfg.min_length, cfg.max_length + 1)]
    budget = {s.length: s.size // 2 for s in strata}
    out: dict[str, list[str]] = {}
    for name, total in requests.items():
        held_out = not name.endswith("train")
        items: list[str] = []
        for i, s in enumerate(strata):
            want = total // len(strata) + (i < total % len(strata))
            got = s.draw(min(want, budget[s.length]) if held_out else want)
            if held_out:
                budget[s.length] -= len(got)
            items += got
        for s in reversed(strata):
            if len(items) >= total:
                break
            items += s.draw(total - len(items))
        out[name] = [items[i] for i in rng.permutation(len(items))]
    return out


@register_domain
class SortingDomain:
    """Ascending sorting is the trained skill; descending the out-of-distribution one. The learner can
    check its own answers (`SelfChecks`)."""

    name = "sorting"
    config_class = SortingConfig

    def __init__(self, config: SortingConfig | None = None, seed: int = 0):
        self.config = config or SortingConfig()
        self.seed = seed
        self.misconception = MISCONCEPTIONS.get(self.config.misconception or "")

    def parse(self, completion: str) -> str | None:
        return parse_answer(completion)

    def check(self, question: Question, answer: str | None) -> bool:
        return answer is not None and answer == question.answer

    def reference_rationale(self, question: Question) -> str:
        return rationale(letters_of(question), question.skill)  # type: ignore[arg-type]

    def direct_completion(self, answer: str) -> str:
        """The answer-only format of a completion (LMSI's direct format)."""
        return f"A: {answer}"

    def planted_answer(self, question_id: str) -> str | None:
        """The planted misconception's answer to an ascending question, when it changes the answer."""
        try:
            q = question_from_id(question_id)
        except ValueError:
            return None
        m = self.misconception
        if m is None or q.skill != "asc" or not m.applies(letters_of(q)):
            return None
        return parse_answer(rationale(letters_of(q), "asc", m))

    def hint_prompt(self, question: Question) -> str:
        return hint_prompt(question)

    def check_prompt(self, prompt: str, completion: str) -> str:
        """The check prompt of a candidate; one longer than max_length + 1 letters is shown by its first
        max_length + 1 (still a wrong length), so every check prompt fits `text_lengths()["check_prompt"]`."""
        answer = parse_answer(completion)
        if answer is not None and len(letters := answer.split(" ")) > self.config.max_length + 1:
            completion = self.direct_completion(" ".join(letters[:self.config.max_length + 1]))
        return check_prompt(prompt, completion)

    def check_verdicts(self) -> tuple[str, str]:
        return ACCEPT, REJECT

    def splits(self) -> Splits:
        c = self.config
        n_ref_desc = c.reference_size // 4
        asc = stratified_splits(c, {"test": c.test_size, "pool": c.pool_size, "base_val": c.base_val_size,
                                    "reference": c.reference_size - n_ref_desc, "base_train": c.base_train_size},
                                derive_seed(self.seed, "sorting", "asc"))
        desc = stratified_splits(c, {"ood": c.ood_size, "reference": n_ref_desc, "ood_train": c.ood_train_size},
                                 derive_seed(self.seed, "sorting", "desc"))
        q = {name: [make_question("asc", x) for x in items] for name, items in asc.items()}
        q_desc = {name: [make_question("desc", x) for x in items] for name, items in desc.items()}
        base_train = self._plant_errors(q["base_train"])
        base_train += [Example(x, self.reference_rationale(x)) for x in q_desc["ood_train"]]
        base_train += self._hinted(base_train) + self._checks([e.question for e in base_train])
        order = np.random.default_rng(derive_seed(self.seed, "sorting", "shuffle")).permutation(len(base_train))
        reference = [(f"ref:{x.id}", x.prompt, self.reference_rationale(x)) for x in q["reference"] + q_desc["reference"]]
        return Splits(base_train=[base_train[i] for i in order], base_val=q["base_val"], pool=q["pool"],
                      test=q["test"], ood=q_desc["ood"], reference=reference)

    def _checks(self, questions: list[Question]) -> list[Example]:
        """round(check_share * n) check examples, over the questions in seeded passes: the first half with the
        right answer (verdict ACCEPT), the rest with a corrupted one (REJECT). The prompt is the check prompt,
        the completion the verdict."""
        rng = np.random.default_rng(derive_seed(self.seed, "sorting", "checks"))
        n = round(self.config.check_share * len(questions))
        passes = [rng.permutation(len(questions)) for _ in range(-(-n // max(1, len(questions))))]
        chosen: list[int] = [int(i) for i in np.concatenate(passes)[:n]] if passes else []
        out = []
        for j, i in enumerate(chosen):
            x = questions[int(i)]
            right = j < (len(chosen) + 1) // 2
            answer = x.answer if right else corrupt(x.answer, self.config.alphabet, rng)
            out.append(Example(Question(x.id, x.skill, check_prompt(x.prompt, f"A: {answer}"), x.answer),
                               ACCEPT if right else REJECT, "check"))
        return out

    def _hinted(self, examples: list[Example]) -> list[Example]:
        """Copies of round(hint_share * n) clean ascending examples under the hint prompt, so that the model
        learns to use a hint (STaR rationalizes with a model that can)."""
        if self.config.hint_share == 0:
            return []
        rng = np.random.default_rng(derive_seed(self.seed, "sorting", "hints"))
        clean = [e for e in examples if e.kind == "clean" and e.question.skill == "asc"]
        chosen = rng.permutation(len(clean))[: round(self.config.hint_share * len(clean))]
        return [Example(Question(e.question.id, e.question.skill, hint_prompt(e.question), e.question.answer),
                        e.completion, "hinted") for e in (clean[i] for i in sorted(chosen))]

    def _plant_errors(self, questions: list[Question]) -> list[Example]:
        """Clean rationales, then the misconception on exactly round(rate * applicable) of the applicable
        examples, then answer noise on exactly round(noise * n) of the remaining ones."""
        c = self.config
        rng = np.random.default_rng(derive_seed(self.seed, "sorting", "errors"))
        kinds = ["clean"] * len(questions)
        texts = [self.reference_rationale(q) for q in questions]
        m = self.misconception
        if m is not None and c.misconception_rate > 0:
            applicable = [i for i, q in enumerate(questions) if m.applies(letters_of(q))]
            for i in rng.permutation(applicable)[: round(c.misconception_rate * len(applicable))]:
                texts[i] = rationale(letters_of(questions[i]), "asc", m)
                kinds[i] = f"misconception:{m.name}"
        if c.answer_noise > 0:
            clean = [i for i, k in enumerate(kinds) if k == "clean"]
            for i in rng.permutation(clean)[: round(c.answer_noise * len(questions))]:
                head, answer = texts[i].rsplit("A: ", 1)
                texts[i] = f"{head}A: {corrupt(answer, c.alphabet, rng)}"
                kinds[i] = "noise"
        return [Example(q, t, k) for q, t, k in zip(questions, texts, kinds)]
