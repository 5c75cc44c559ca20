"""The sorting domain: string answers, disjoint splits, a parser that never raises, the planted rule and the
check examples the learner's self-check is trained on."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from harness.domains.base import DirectFormat, Hints, PlantsRule, SelfChecks, make_domain
from harness.domains.sorting import (
    ACCEPT,
    MISCONCEPTIONS,
    REJECT,
    SortingConfig,
    SortingDomain,
    check_prompt,
    corrupt,
    counts_line,
    letters_of,
    make_question,
    parse_answer,
    question_from_id,
    rationale,
)

SMALL = SortingConfig(base_train_size=600, ood_train_size=100, base_val_size=20, pool_size=50, test_size=40,
                      ood_size=30, reference_size=20)
letters = st.text(alphabet="abcdefgh", min_size=1, max_size=12)


@pytest.fixture(scope="module")
def splits():
    return SortingDomain(SMALL, seed=3).splits()


# ---------------------------------------------------------------- format and parser


def test_format_of_a_question_its_rationale_and_its_check():
    q = make_question("asc", "daca")
    assert (q.id, q.prompt, q.answer) == ("asc:daca", "S: d a c a\n", "a a c d")
    assert rationale("daca") == "a2 c1 d1\nA: a a c d"
    r = make_question("desc", "daca")
    assert (r.prompt, r.answer, rationale("daca", "desc")) == ("R: d a c a\n", "d c a a", "d1 c1 a2\nA: d c a a")
    assert check_prompt(q.prompt, "a2 c1 d1\nA: a c d") == "S: d a c a\na1 c1 d1\nOK? "  # the answer, not the CoT
    assert check_prompt(q.prompt, "junk\nA: c a a d") == "S: d a c a\nc1 a2 d1\nOK? "
    assert check_prompt(q.prompt, "no answer here") == "S: d a c a\n?\nOK? "
    assert counts_line("a a c d") == "a2 c1 d1" and counts_line("b a b") == "b1 a1 b1"
    assert SortingDomain().check_verdicts() == (ACCEPT, REJECT) == ("Y", "N")


@given(st.text())
def test_parser_never_raises_on_arbitrary_text(text):
    result = parse_answer(text)
    assert result is None or (isinstance(result, str) and result == " ".join(result.split(" ")))


@given(st.binary())
def test_parser_never_raises_on_decoded_bytes(raw):
    for text in (raw.decode("utf-8", errors="replace"), raw.decode("latin-1")):
        assert parse_answer(text) is None or isinstance(parse_answer(text), str)


@pytest.mark.parametrize("junk", [None, 12, b"A: a b", ["A: a b"]])
def test_parser_returns_none_for_non_text(junk):
    assert parse_answer(junk) is None
    assert check_prompt("S: a b\n", junk) == "S: a b\n?\nOK? "


@pytest.mark.parametrize("text", ["A: ab", "A:", "A: a  b", "a: a b", "A: A B", "A: a,b", "A: 1 2", "", "AA: a",
                                  "A: a b 3", " A: a b"])
def test_parser_rejects_malformed_answer_lines(text):
    assert parse_answer(text) is None


@given(letters, st.text(max_size=20))
def test_rationales_parse_back_to_the_answer_and_junk_around_them_is_ignored(word, junk):
    junk = junk.replace("\n", " ").replace("\r", " ")
    for skill in ("asc", "desc"):
        q = make_question(skill, word)
        assert parse_answer(f"{junk}\n{rationale(word, skill)}\nA: z z\n{junk}") == q.answer
        assert SortingDomain().check(q, q.answer) and not SortingDomain().check(q, None)
    assert parse_answer("A: a b  \nA: c") == "a b"


@given(st.sampled_from(["asc", "desc"]), letters)
def test_question_ids_parse_back(skill, word):
    q = make_question(skill, word)
    assert question_from_id(q.id) == q and letters_of(q) == word


@pytest.mark.parametrize("qid", ["", "asc:", "asc:AB", "up:abc", "asc:ab c", "asc:a1", "ascabc", None, 3])
def test_bad_question_ids_are_value_errors(qid):
    with pytest.raises(ValueError):
        question_from_id(qid)


@given(letters, st.integers(0, 2**32 - 1))
def test_corrupt_never_returns_the_answer_and_keeps_to_the_alphabet(word, seed):
    answer = make_question("asc", word).answer
    wrong = corrupt(answer, "abcdefgh", np.random.default_rng(seed))
    assert wrong != answer and parse_answer(f"A: {wrong}") == wrong
    assert set(wrong.split(" ")) <= set("abcdefgh")


# ---------------------------------------------------------------- misconceptions


def test_misconception_formats():
    assert rationale("daca", "asc", MISCONCEPTIONS["drop_duplicates"]) == "a1 c1 d1\nA: a c d"
    assert rationale("dcab", "asc", MISCONCEPTIONS["c_last"]) == "a1 b1 d1 c1\nA: a b d c"


@given(letters)
def test_misconceptions_apply_exactly_where_their_rule_fires(word):
    assert MISCONCEPTIONS["drop_duplicates"].applies(word) == (len(set(word)) < len(word))
    assert MISCONCEPTIONS["c_last"].applies(word) == ("c" in word and any(x > "c" for x in word))
    for name, m in MISCONCEPTIONS.items():
        d = SortingDomain(SortingConfig(misconception=name), seed=0)
        planted = d.planted_answer(f"asc:{word}")
        assert (planted is not None) == m.applies(word)
        assert planted != make_question("asc", word).answer
        assert d.planted_answer(f"desc:{word}") is None


def test_planted_answer_is_none_without_a_rule_or_for_a_bad_id():
    assert SortingDomain().planted_answer("asc:dcab") is None
    d = SortingDomain(SortingConfig(misconception="c_last"))
    assert d.planted_answer("asc:dcab") == "a b d c"
    assert d.planted_answer("nonsense") is None and d.planted_answer("add:1+2") is None


@pytest.mark.parametrize("name", sorted(MISCONCEPTIONS))
@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_planted_misconception_hits_exactly_the_configured_fraction_of_applicable_examples(name, rate):
    cfg = SMALL.model_copy(update={"misconception": name, "misconception_rate": rate, "answer_noise": 0.1})
    cfg = SortingConfig(**cfg.model_dump())
    d = SortingDomain(cfg, seed=11)
    m = MISCONCEPTIONS[name]
    train = [e for e in d.splits().base_train if e.kind != "check"]
    asc = [e for e in train if e.question.skill == "asc"]
    applicable = [e for e in asc if m.applies(letters_of(e.question))]
    hit = [e for e in asc if e.kind == f"misconception:{name}"]
    assert len(hit) == round(rate * len(applicable)) and all(e in applicable for e in hit)
    assert all(d.parse(e.completion) == d.planted_answer(e.question.id) for e in hit)
    assert all(d.parse(e.completion) == e.question.answer for e in asc if e.kind == "clean")
    noisy = [e for e in asc if e.kind == "noise"]
    assert len(noisy) == round(0.1 * len(asc)) and all(d.parse(e.completion) != e.question.answer for e in noisy)
    assert all(e.kind == "clean" for e in train if e.question.skill == "desc")


# ---------------------------------------------------------------- splits


def test_splits_are_deterministic_and_depend_on_the_seed():
    a, b, c = SortingDomain(SMALL, seed=3).splits(), SortingDomain(SMALL, seed=3).splits(), SortingDomain(SMALL, seed=4).splits()
    assert a == b
    assert [q.id for q in a.test] != [q.id for q in c.test]


def test_splits_have_their_sizes_skills_and_no_shared_item(splits):
    held_out = {"base_val": splits.base_val, "pool": splits.pool, "test": splits.test, "ood": splits.ood}
    assert [len(v) for v in held_out.values()] == [20, 50, 40, 30] and len(splits.reference) == 20
    assert {q.skill for q in splits.test + splits.pool + splits.base_val} == {"asc"}
    assert {q.skill for q in splits.ood} == {"desc"}
    train_ids = {e.question.id for e in splits.base_train}
    assert len({e.question.id for e in splits.base_train if e.kind != "check"}) == 700
    groups = [[q.id for q in v] for v in held_out.values()] + [[t.removeprefix("ref:") for t, _, _ in splits.reference]]
    flat = [i for g in groups for i in g]
    assert len(flat) == len(set(flat)) and not set(flat) & train_ids
    # every length of the range is represented in the test split, evenly
    assert Counter(len(letters_of(q)) for q in splits.test) == {3: 10, 4: 10, 5: 10, 6: 10}
    for q in splits.test + splits.ood:
        assert q.answer == " ".join(sorted(letters_of(q), reverse=q.skill == "desc"))
        assert set(letters_of(q)) <= set("abcdefgh")


def test_check_examples_are_half_right_half_wrong_with_true_verdicts(splits):
    checks = [e for e in splits.base_train if e.kind == "check"]
    assert len(checks) == round(0.5 * 700)
    verdicts = Counter(e.completion for e in checks)
    assert verdicts[ACCEPT] == (len(checks) + 1) // 2 and verdicts[REJECT] == len(checks) // 2
    kinds = set()
    for e in checks:
        head, counts, tail = e.question.prompt.split("\n")
        assert f"{head}\n" == make_question(e.question.skill, letters_of(e.question)).prompt and tail == "OK? "
        shown = " ".join(c[0] for c in counts.split(" ") for _ in range(int(c[1:])))
        assert counts_line(shown) == counts
        assert (e.completion == ACCEPT) == (shown == e.question.answer)
        if e.completion == REJECT:
            ordered = shown.split(" ") == sorted(shown.split(" "), reverse=e.question.skill == "desc")
            kinds.add("content" if ordered else "order")
    assert kinds == {"content", "order"}  # both kinds of error are taught
    assert {e.question.skill for e in checks} == {"asc", "desc"}


def test_hinted_examples_use_the_hint_prompt_and_the_gold_rationale():
    d = SortingDomain(SortingConfig(**{**SMALL.model_dump(), "hint_share": 0.1}), seed=1)
    hinted = [e for e in d.splits().base_train if e.kind == "hinted"]
    assert len(hinted) == round(0.1 * 600)
    for e in hinted:
        plain = make_question("asc", letters_of(e.question))
        assert e.question.prompt == d.hint_prompt(plain) == f"{plain.prompt[:-1]} (hint {plain.answer})\n"
        assert e.completion == rationale(letters_of(e.question)) and d.parse(e.completion) == e.question.answer


@pytest.mark.parametrize("cfg", [SMALL, SortingConfig(min_length=1, max_length=12, alphabet_size=26, answer_noise=0.3,
                                                      hint_share=0.2, check_share=1.0, base_train_size=300,
                                                      ood_train_size=100, misconception="drop_duplicates",
                                                      misconception_rate=1.0)])
def test_text_lengths_bound_every_text(cfg):
    d = SortingDomain(cfg, seed=0)
    s = d.splits()
    lengths = cfg.text_lengths()
    for e in s.base_train:
        key = {"check": "check_prompt", "hinted": "hint_prompt"}.get(e.kind, "prompt")
        assert len(e.question.prompt) <= lengths[key]
        assert len(e.completion) <= lengths["completion"]
        assert len(e.question.prompt) + len(e.completion) <= lengths["base_train_prompt"] + lengths["completion"]
    for q in s.test + s.ood + s.pool:
        assert len(q.prompt) <= lengths["prompt"] and len(d.reference_rationale(q)) <= lengths["completion"]
        assert len(d.hint_prompt(q)) <= lengths["hint_prompt"]
    n = cfg.max_length
    assert len(make_question("asc", "a" * n).prompt) == lengths["prompt"]  # the bounds are tight
    assert len(rationale("abcdefghijkl"[:n])) == lengths["completion"] - 2  # noise may add one letter


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=60), st.sampled_from([1, 6, 12]))
def test_a_candidate_of_any_length_has_a_check_prompt_within_the_bound(word, n):
    """A sampled answer line may hold many more letters than any question; its check prompt still fits the
    bound the context check relies on, and a candidate of plausible length is shown whole."""
    cfg = SMALL.model_copy(update={"min_length": 1, "max_length": n, "alphabet_size": 26})  # splits unused
    d = SortingDomain(cfg, seed=0)
    prompt = make_question("asc", "z" * n).prompt
    shown = d.check_prompt(prompt, f"A: {' '.join(word)}")
    assert len(shown) <= cfg.text_lengths()["check_prompt"]
    if len(word) <= n + 1:
        assert shown == check_prompt(prompt, f"A: {' '.join(word)}")


# ---------------------------------------------------------------- configuration and protocol


@pytest.mark.parametrize("bad, key", [({"min_length": 5, "max_length": 4}, "min_length"),
                                      ({"misconception": "nope"}, "unknown misconception"),
                                      ({"misconception_rate": 0.2}, "needs a misconception"),
                                      ({"alphabet_size": 3, "misconception": "c_last"}, "c_last"),
                                      ({"alphabet_size": 27}, "alphabet_size"),
                                      ({"max_length": 13}, "max_length"),
                                      ({"check_share": 4.5}, "check_share"),
                                      ({"pool_size": True}, "pool_size"),
                                      ({"extra": 1}, "extra")])
def test_config_refuses_bad_values(bad, key):
    with pytest.raises(ValidationError, match=key):
        SortingConfig(**bad)


def test_splits_must_fit_the_question_space():
    cfg = {"alphabet_size": 2, "min_length": 3, "max_length": 4}  # 8 + 16 lists per skill
    with pytest.raises(ValidationError, match=r"test_size: there are only 24 distinct ascending 3-4-letter \(a-b\) "
                                              r"questions.*the largest valid test_size is 3"):
        SortingConfig(**cfg, base_train_size=10, test_size=12, pool_size=1, base_val_size=10, reference_size=0)
    SortingConfig(alphabet_size=2, min_length=3, max_length=6, base_train_size=10, ood_train_size=0, pool_size=30,
                  test_size=30, base_val_size=10, ood_size=40, reference_size=0)  # 120 lists: fits exactly
    assert SortingConfig().question_space() == 8**3 + 8**4 + 8**5 + 8**6


def test_whole_small_space_is_drawn_without_repeats():
    cfg = SortingConfig(alphabet_size=2, min_length=3, max_length=6, base_train_size=10, ood_train_size=0,
                        pool_size=30, test_size=30, base_val_size=10, ood_size=40, reference_size=0)
    s = SortingDomain(cfg, seed=0).splits()
    ids = [q.id for q in s.test + s.pool + s.base_val] + [e.question.id for e in s.base_train
                                                             if e.kind != "check" and e.question.skill == "asc"]
    assert len(ids) == len(set(ids)) == 80


def test_the_domain_is_registered_with_its_capabilities():
    d = make_domain(SortingConfig(), seed=0)
    assert isinstance(d, SortingDomain)
    for cap in (DirectFormat, Hints, PlantsRule, SelfChecks):
        assert isinstance(d, cap)
    assert d.direct_completion("a b") == "A: a b" and d.parse(d.direct_completion("a b")) == "a b"
