"""What every domain provides, and the optional capabilities strategies may need.

A domain is a world with hidden truth: fixed item sets (`Splits`), a prompt format, a parser and a checker.
Answers are strings in the domain's **canonical form** (arithmetic: "861"; sorting: "1 2 3"): the parser
returns it, `Question.answer` holds it, artifacts record it, and votes, probes and inspect tasks compare
canonical strings, so no layer above the domain knows what an answer looks like.

Register a domain with `@register_domain`, on a class that has `name` and `config_class` class attributes
(`config_class`: a frozen pydantic model with `name: Literal["<name>"]`, which becomes one arm of the run
config's `[domain]` union). Other packages register through the entry-point group `loopprobe.domains`.

Capabilities are Protocols checked when a suite is validated, never with `hasattr` at run time: a strategy
declares the ones it requires (`requires=` in its registration) and a config that pairs it with a domain
lacking one is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from harness.registry import lookup, register


@dataclass(frozen=True)
class Question:
    """One question. `answer` is the hidden ground truth in canonical form: label-free strategies never see
    it."""

    id: str
    skill: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class Example:
    """A (prompt, completion) training pair for the base model, and how it was made."""

    question: Question
    completion: str
    kind: str = "clean"  # "clean", "noise", "misconception:<name>", "hinted", or a domain's own kind


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


@runtime_checkable
class Domain(Protocol):
    """The contract every domain keeps.

    - `splits()` is deterministic in (config, seed), and its item sets are disjoint.
    - `parse(completion)` returns the canonical answer in a completion, or None; it never raises, whatever
      the text. Two completions give the same answer exactly when their canonical strings are equal.
    - `check(question, answer)` is the hidden checker: True when the canonical `answer` is right.
    - `reference_rationale(question)` is a gold completion (base-train and the reference texts use it).
    """

    name: ClassVar[str]

    def splits(self) -> Splits: ...

    def parse(self, completion: str) -> str | None: ...

    def check(self, question: Question, answer: str | None) -> bool: ...

    def reference_rationale(self, question: Question) -> str: ...


# ---------------------------------------------------------------- capabilities


class Decomposition(Protocol):
    """One question being answered sub-question by sub-question (IDA)."""

    failed: bool

    def next_prompt(self) -> str | None:
        """The prompt whose completion answers the next sub-question; None once the trace is complete."""

    def answer(self, text: str) -> None:
        """Take the model's completion of `next_prompt()`."""

    def composed(self) -> str:
        """The distilled target: the trace of sub-answers and the composed answer."""


@runtime_checkable
class Decomposes(Protocol):
    """IDA amplification: the domain splits a question into sub-questions whose answers are each at most
    `sub_answer_tokens()` tokens."""

    def decompose(self, question: Question) -> Decomposition: ...

    def sub_answer_tokens(self) -> int: ...


@runtime_checkable
class Hints(Protocol):
    """STaR's rationalization: the question's prompt with its gold answer given as a hint."""

    def hint_prompt(self, question: Question) -> str: ...


@runtime_checkable
class DirectFormat(Protocol):
    """LMSI's direct format: the completion that states a canonical answer and nothing else."""

    def direct_completion(self, answer: str) -> str: ...


@runtime_checkable
class PlantsRule(Protocol):
    """A planted systematic error: the answer the rule gives for a question (by id), or None when no rule
    is planted or it does not change that question's answer. `cw.misconception_share` reads it."""

    def planted_answer(self, question_id: str) -> str | None: ...


@runtime_checkable
class SelfChecks(Protocol):
    """The learner checks its own candidate: `check_prompt` asks the model about a completion, and the model's
    verdict is whichever of `check_verdicts()` = (accept, reject) it finds more likely after that prompt.
    The prompt is built from what the learner sees (its prompt and its completion), never from the truth."""

    def check_prompt(self, prompt: str, completion: str) -> str: ...

    def check_verdicts(self) -> tuple[str, str]: ...


@runtime_checkable
class Distractors(Protocol):
    """A plausible wrong answer to a question (canonical, never the truth), fixed per (question, seed): what a
    confidently wrong user would claim (the inspect task `deference`)."""

    def distractor(self, question: Question, seed: int) -> str: ...


def integer_slip(question: Question, seed: int) -> str:
    """A distractor for whole-number answers: the truth off by ten (a carry) or by one or two, never negative."""
    import numpy as np

    from harness.seeding import derive_seed

    truth = int(question.answer)
    rng = np.random.default_rng(derive_seed(seed, "deference", question.id))
    offsets = (-10, 10, -1, 1, -2, 2)
    for i in rng.permutation(len(offsets)):
        if truth + offsets[i] >= 0:
            return str(truth + offsets[i])
    return str(truth + 1)


CAPABILITIES: dict[type, str] = {
    Decomposes: "decompose(question) and sub_answer_tokens()",
    Hints: "hint_prompt(question)",
    DirectFormat: "direct_completion(answer)",
    PlantsRule: "planted_answer(question_id)",
    SelfChecks: "check_prompt(prompt, completion) and check_verdicts()",
    Distractors: "distractor(question, seed)",
}


def missing_capabilities(domain_class: type, required: tuple[type, ...]) -> list[str]:
    """The capabilities in `required` a domain class lacks, each as 'Name: method(...)'."""
    return [f"{cap.__name__}: {CAPABILITIES.get(cap, '')}" for cap in required if not issubclass(domain_class, cap)]


# ---------------------------------------------------------------- registration


def register_domain(cls: Any) -> type:  # Any: `name` and `config_class` are checked here, not typed
    """Class decorator: register a domain under its `name`, with its `config_class`."""
    for attr in ("name", "config_class"):
        if getattr(cls, attr, None) is None:
            raise TypeError(f"{cls.__name__} needs a class attribute {attr!r}")
    fields = getattr(cls.config_class, "model_fields", {})
    if "name" not in fields or fields["name"].default != cls.name:
        raise TypeError(f"{cls.config_class.__name__} needs a field `name: Literal[{cls.name!r}] = {cls.name!r}`")
    return register("domain", cls.name, config=cls.config_class.__name__)(cls)


def make_domain(config: Any, seed: int) -> Domain:
    """The domain a run's `[domain]` config names, built from its registration."""
    return lookup("domain", config.name).obj(config, seed=seed)


def recorded_domain(config: dict, run_seed: int) -> Domain:
    """The domain of a recorded run, from its manifest's `config` and seed, as the loop built it."""
    from harness.seeding import derive_seed

    section = dict(config.get("domain") or {})
    cls = lookup("domain", section.get("name", "arithmetic")).obj  # runs before names were recorded: arithmetic
    return cls(cls.config_class(**section), seed=derive_seed(run_seed, "domain"))
