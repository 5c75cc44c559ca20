"""Self-consistency selection: the vote, the threshold, and that it cannot see labels."""

import dataclasses
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.artifacts import SampleRow
from harness.strategies.select import UnlabeledSample, majority_vote, self_consistency, strip_labels


def rows(answers_by_q: dict[str, list[int | None]], truth: dict[str, int] | None = None) -> list[SampleRow]:
    out = []
    for q, answers in answers_by_q.items():
        t = (truth or {}).get(q, 0)
        for j, a in enumerate(answers):
            out.append(SampleRow(question_id=q, split="pool", round=0, sample_index=j, decoding="sample",
                                 prompt=f"Q: {q}\n", completion=f"...\nA: {a}" if a is not None else "junk",
                                 parsed_answer=None if a is None else str(a), sum_logprob=-1.0, n_tokens=5,
                                 finished=True, truth=str(t), correct=a == t))
    return out


def test_majority_vote_share_entropy_and_ties():
    v = majority_vote([3, 3, 5, None])
    assert v.answer == 3 and v.share == 0.5
    assert v.entropy == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert majority_vote([5, 3, 3, 5]).answer == 5  # tie: first seen wins
    assert majority_vote([None, None]).answer is None


def test_keeps_only_majority_agreeing_samples_above_tau():
    samples = strip_labels(rows({"a": [1, 1, 1, 2], "b": [4, 5, 6, 4], "c": [None, None, None, 7]}))
    kept = self_consistency(samples, tau=0.6, round=2)
    assert {(r.question_id, r.sample_index) for r in kept} == {("a", 0), ("a", 1), ("a", 2)}
    assert all(r.answer == "1" and r.vote_share == 0.75 and r.round == 2 for r in kept)
    kept_low = self_consistency(samples, tau=0.25, round=0)
    assert {(r.question_id, r.sample_index) for r in kept_low} == {("a", 0), ("a", 1), ("a", 2), ("b", 0),
                                                                  ("b", 3), ("c", 3)}


def test_unlabeled_samples_carry_no_labels():
    fields = {f.name for f in dataclasses.fields(UnlabeledSample)}
    assert not fields & {"truth", "correct", "answer"}
    assert fields <= set(SampleRow.model_fields)


answers = st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=1, max_size=8)


@given(st.dictionaries(st.sampled_from("abcdefgh"), answers, min_size=1), st.floats(0, 1), st.randoms())
def test_scrambling_labels_leaves_selection_unchanged(by_q, tau, rnd):
    truth = {q: 0 for q in by_q}
    original = rows(by_q, truth)
    scrambled = [r.model_copy(update={"truth": str(rnd.randint(0, 9)), "correct": rnd.random() < 0.5})
                 for r in original]
    assert self_consistency(strip_labels(original), tau, 1) == self_consistency(strip_labels(scrambled), tau, 1)


def test_selection_does_not_depend_on_row_order():
    original = rows({"a": [1, 1, 2], "b": [3, 3, 3], "c": [1, 2, 2]})
    shuffled = original[:]
    random.Random(0).shuffle(shuffled)
    key = lambda r: (r.question_id, r.sample_index)
    assert sorted(self_consistency(strip_labels(original), 0.5, 0), key=key) == \
        sorted(self_consistency(strip_labels(shuffled), 0.5, 0), key=key)
