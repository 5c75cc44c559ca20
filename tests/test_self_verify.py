"""self_verify: the learner's own check decides which samples are kept, and it never reads the truth."""

from __future__ import annotations

import inspect
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.artifacts import SampleRow
from harness.config import RunConfig
from harness.domains.base import SelfChecks
from harness.domains.sorting import SortingConfig, SortingDomain, make_question, rationale
from harness.models.testing import FunctionBackend
from harness.registry import lookup
from harness.strategies.select import LabelFreeDomain, SelectionContext, UnlabeledSample, strip_labels
from harness.strategies.self_verify import SelfVerifyArgs, check_margins, select_self_verify

WORDS = ["daca", "hbe", "cgcf", "fedcba"]


def candidates(word: str) -> list[str]:
    """Completions for one question: right twice, a dropped duplicate or letter, a swap, and no answer."""
    right = rationale(word)
    letters = sorted(word)
    swapped = letters[:-2] + [letters[-1], letters[-2]]
    return [right, right, f"x\nA: {' '.join(letters[1:])}", f"x\nA: {' '.join(swapped)}", "no answer"]


def rows(truth_scrambled: bool = False, rnd: random.Random | None = None) -> list[SampleRow]:
    out = []
    for word in WORDS:
        q = make_question("asc", word)
        for j, c in enumerate(candidates(word)):
            parsed = SortingDomain().parse(c)
            truth, correct = q.answer, parsed == q.answer
            if truth_scrambled:
                truth, correct = " ".join(rnd.sample("abcdefgh", 3)), rnd.random() < 0.5
            out.append(SampleRow(question_id=q.id, split="pool", round=1, sample_index=j, decoding="sample",
                                 prompt=q.prompt, completion=c, parsed_answer=parsed, sum_logprob=-1.0, n_tokens=5,
                                 finished=True, truth=truth, correct=correct))
    return out


def sorted_checker(margin: float = 3.0):
    """A model whose check accepts exactly the candidates that are the sorted input (as a perfect learner
    would): log p(Y) - log p(N) = +margin for those and -margin for the others."""
    def score(prompt: str, verdict: str) -> float:
        head, counts, _ = prompt.split("\n")
        shown = " ".join(c[0] for c in counts.split(" ") for _ in range(int(c[1:])))
        ok = shown == " ".join(sorted(head.removeprefix("S: ").split(" ")))
        return 0.0 if (verdict == "Y") == ok else -margin
    return score


def context(model, domain=None, margin: float | None = None) -> SelectionContext:
    return SelectionContext(round=1, loop=None, args=None if margin is None else SelfVerifyArgs(margin=margin),
                            model=model, domain=LabelFreeDomain(domain or SortingDomain()), seed=0)


def test_keeps_exactly_the_samples_the_check_accepts():
    samples = strip_labels(rows())
    model = FunctionBackend(lambda p, rng: "", sorted_checker())
    kept = select_self_verify(samples, context(model))
    assert [(r.question_id, r.sample_index) for r in kept] == [(f"asc:{w}", j) for w in sorted(WORDS) for j in (0, 1)]
    for r in kept:
        q = make_question("asc", r.question_id.split(":")[1])
        assert r.answer == q.answer and r.completion == rationale(r.question_id.split(":")[1])
        assert r.score == pytest.approx(3.0) and r.vote_share == pytest.approx(2 / 5) and r.round == 1
        assert r.prompt == q.prompt and r.source == "sample"


def test_a_check_that_accepts_everything_keeps_every_parsed_sample_and_scores_none_unparsed():
    samples = strip_labels(rows())
    seen: list[str] = []
    model = FunctionBackend(lambda p, rng: "", lambda p, c: seen.append(p) or (0.0 if c == "Y" else -1.0))
    kept = select_self_verify(samples, context(model))
    parsed = [s for s in samples if s.parsed_answer is not None]
    assert len(kept) == len(parsed) == 16
    assert len(seen) == 2 * len(parsed) and not any("\n?\n" in p for p in seen)
    margins = check_margins(model, LabelFreeDomain(SortingDomain()), samples)
    assert [math.isnan(m) for m in margins] == [s.parsed_answer is None for s in samples]  # nan where unparsed


def test_the_margin_argument_raises_the_bar():
    samples = strip_labels(rows())
    model = FunctionBackend(lambda p, rng: "", sorted_checker(margin=3.0))
    assert len(select_self_verify(samples, context(model, margin=2.9))) == 8
    assert select_self_verify(samples, context(model, margin=3.0)) == []  # strictly above the margin
    reject_all = FunctionBackend(lambda p, rng: "", lambda p, c: -1.0 if c == "Y" else 0.0)
    assert select_self_verify(samples, context(reject_all)) == []


def test_the_check_prompt_is_the_domains_and_the_verdicts_are_scored_after_it():
    samples = strip_labels(rows())[:1]
    calls: list[tuple[str, str]] = []
    model = FunctionBackend(lambda p, rng: "", lambda p, c: calls.append((p, c)) or 0.0)
    check_margins(model, LabelFreeDomain(SortingDomain()), samples)
    assert calls == [("S: d a c a\na2 c1 d1\nOK? ", "Y"), ("S: d a c a\na2 c1 d1\nOK? ", "N")]


@given(st.randoms(use_true_random=False))
def test_scrambling_the_truth_leaves_the_selection_unchanged(rnd):
    model = FunctionBackend(lambda p, rng: "", sorted_checker())
    assert (select_self_verify(strip_labels(rows()), context(model))
            == select_self_verify(strip_labels(rows(True, rnd)), context(model)))


def test_it_never_reads_the_truth():
    """It is registered label-free, takes UnlabeledSamples, and works with a domain whose checker and item
    sets raise: the LabelFreeDomain it gets exposes neither."""
    entry = lookup("selector", "self_verify")
    assert entry.metadata["uses_labels"] is False and entry.metadata["requires"] == (SelfChecks,)
    assert "UnlabeledSample" in str(inspect.signature(select_self_verify).parameters["samples"].annotation)

    class Sealed(SortingDomain):
        def check(self, question, answer):
            raise AssertionError("self_verify called the hidden checker")

        def splits(self):
            raise AssertionError("self_verify read the item sets")

        def planted_answer(self, question_id):
            raise AssertionError("self_verify read the planted rule")

    domain = LabelFreeDomain(Sealed(SortingConfig()))
    assert not any(hasattr(domain, a) for a in ("check", "splits", "planted_answer", "hint_prompt"))
    model = FunctionBackend(lambda p, rng: "", sorted_checker())
    kept = select_self_verify(strip_labels(rows()), SelectionContext(round=1, loop=None, args=None, model=model,
                                                                     domain=domain, seed=0))
    assert len(kept) == 8
    assert all(isinstance(s, UnlabeledSample) for s in strip_labels(rows()))


def test_the_run_config_pairs_it_only_with_a_domain_that_checks_itself():
    cfg = RunConfig(domain={"name": "sorting"}, loop={"select": "self_verify", "select_args": {"margin": 0.5}})
    assert cfg.loop.selector_args() == SelfVerifyArgs(margin=0.5)
    with pytest.raises(ValueError, match="SelfChecks"):
        RunConfig(loop={"select": "self_verify"})  # arithmetic has no check prompt
    with pytest.raises(ValueError, match="margin"):
        RunConfig(domain={"name": "sorting"}, loop={"select": "self_verify", "select_args": {"margin": -1}})
    with pytest.raises(ValueError, match="select_args"):
        RunConfig(domain={"name": "sorting"}, loop={"select": "self_verify", "select_args": {"tau": 1}})
