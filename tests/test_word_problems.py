"""The word-problem domain: known answers, disjoint splits, the two-shot prompt, a robust parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.domains.word_problems import (
    TEMPLATES,
    WordProblemsConfig,
    WordProblemsDomain,
    few_shot_prompt,
    parse_answer,
)

SMALL = WordProblemsConfig(base_train_size=40, ood_train_size=8, base_val_size=10, pool_size=30, test_size=30,
                           ood_size=21, reference_size=10)


@pytest.fixture(scope="module")
def domain():
    return WordProblemsDomain(SMALL, seed=5)


@pytest.fixture(scope="module")
def splits(domain):
    return domain.splits()


def test_splits_have_their_sizes_skills_and_no_shared_item(splits):
    held_out = {"base_val": splits.base_val, "pool": splits.pool, "test": splits.test, "ood": splits.ood}
    assert [len(v) for v in held_out.values()] == [10, 30, 30, 21]
    assert len(splits.base_train) == 48 and len(splits.reference) == 10
    assert {q.skill for q in splits.test + splits.pool} == {"one_step"} and {q.skill for q in splits.ood} == {"two_step"}
    # every one-step template is represented in the test split, every two-step one in ood
    assert {q.id.split(":")[0] for q in splits.test} == {t.name for t in TEMPLATES if t.skill == "one_step"}
    assert {q.id.split(":")[0] for q in splits.ood} == {t.name for t in TEMPLATES if t.skill == "two_step"}

    def key(qid):  # template and operands: the arithmetic, whatever the names
        parts = qid.split(":")
        return parts[0], *parts[3:]

    groups = [[key(q.id) for q in qs] for qs in held_out.values()]
    groups.append([key(e.question.id) for e in splits.base_train])
    groups.append([key(tid.removeprefix("ref:")) for tid, _, _ in splits.reference])
    flat = [k for g in groups for k in g]
    assert len(flat) == len(set(flat))


def test_answers_are_right_and_the_gold_rationale_parses_to_them(domain, splits):
    for e in splits.base_train:
        q = e.question
        assert domain.parse(e.completion) == q.answer and domain.check(q, q.answer)
        assert e.completion.startswith(" ") and e.completion.endswith(f"The answer is {q.answer}.")
    by_template = {q.id.split(":")[0]: q for q in splits.test + splits.ood}
    _template, _name, item, a, b = by_template["sub"].id.split(":")
    assert int(by_template["sub"].answer) == int(a) - int(b) > 0
    _template, _name, item, a, b = by_template["share"].id.split(":")
    assert f"shares {int(a) * int(b)} {item}" in by_template["share"].prompt and by_template["share"].answer == str(int(a))
    _template, _name, item, a, b, c = by_template["make_sell"].id.split(":")
    assert int(by_template["make_sell"].answer) == int(a) * int(b) - int(c) > 0


def test_the_prompt_is_two_worked_examples_of_the_same_kind_then_the_question(splits):
    q = next(q for q in splits.test if q.id.startswith("sub:"))
    blocks = q.prompt.split("\n\n")
    assert blocks[0].startswith("Answer each question.") and len(blocks) == 4
    assert all(" - " in b and "The answer is" in b for b in blocks[1:3])
    assert blocks[3].startswith("Question: ") and blocks[3].endswith("\nAnswer:")
    assert "Anna" not in blocks[3] and "Omar" not in blocks[3]  # the examples' names are never drawn
    zero = few_shot_prompt(TEMPLATES[0], "How many?", shots=0)
    assert zero.endswith("\n\nQuestion: How many?\nAnswer:") and zero.count("Question:") == 1


def test_same_seed_same_items_other_seed_other_items():
    a = WordProblemsDomain(SMALL, seed=1).splits()
    assert a.test == WordProblemsDomain(SMALL, seed=1).splits().test
    assert a.test != WordProblemsDomain(SMALL, seed=2).splits().test


@pytest.mark.parametrize("text, expected", [
    (" 3 + 4 = 7. The answer is 7.", 7),
    ("the answer is: 12", 12),
    ("The answer is **42**.", 42),
    ("The answer is $1,200.", 1200),
    ("The final answer is -3.", -3),
    ("The answer is 8.0", 8),
    ("The answer is 7.5", None),
    ("The answer is 7. The answer is 9.", 7),
    ("So 3 + 4 = 7.", None),
    ("", None),
])
def test_parser_reads_the_answer_phrase(text, expected):
    assert parse_answer(text) == (None if expected is None else str(expected))


@given(st.text())
def test_parser_never_raises(text):
    assert parse_answer(text) is None or isinstance(parse_answer(text), int)


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="min_number"):
        WordProblemsConfig(min_number=12, max_number=10)
    with pytest.raises(ValueError, match="do not fit the number ranges"):
        WordProblemsDomain(WordProblemsConfig(max_number=4, max_factor=4, test_size=500)).splits()


def test_hint_and_direct_formats(domain, splits):
    q = splits.test[0]
    hinted = domain.hint_prompt(q)
    assert hinted.endswith(f" (Hint: the answer is {q.answer}.)\nAnswer:")
    assert domain.parse(domain.direct_completion(q.answer)) == q.answer
