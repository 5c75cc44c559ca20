from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.domains.arithmetic import (
    MISCONCEPTIONS,
    ArithmeticConfig,
    ArithmeticDomain,
    add_rationale,
    corrupt_answer,
    operands,
    parse_answer,
    sub_rationale,
)


@given(st.text())
def test_parser_never_crashes_on_arbitrary_text(text):
    result = parse_answer(text)
    assert result is None or isinstance(result, int)


@given(st.binary())
def test_parser_never_crashes_on_decoded_bytes(raw):
    for text in (raw.decode("utf-8", errors="replace"), raw.decode("latin-1")):
        result = parse_answer(text)
        assert result is None or isinstance(result, int)


@pytest.mark.parametrize("junk", [None, 12, b"A: 3", ["A: 3"]])
def test_parser_returns_none_for_non_text(junk):
    assert parse_answer(junk) is None


@given(st.integers(0, 999_999), st.integers(0, 999_999))
def test_reference_rationales_parse_back_to_the_answer(a, b):
    assert parse_answer(add_rationale(a, b)) == str(a + b)  # canonical: the decimal string
    hi, lo = max(a, b), min(a, b)
    assert parse_answer(sub_rationale(hi, lo)) == str(hi - lo)


@given(st.integers(0, 999), st.integers(0, 999), st.text(max_size=20))
def test_parser_reads_the_first_answer_line_and_ignores_junk_around_it(a, b, junk):
    junk = junk.replace("\n", " ")
    text = f"{junk}\n{add_rationale(a, b)}\nA: 12345\n{junk}"
    assert parse_answer(text) == str(a + b)


@pytest.mark.parametrize("text", ["A: 12x", "A:", "a: 12", "A: 1 2", "B: 12", "", "A: --3", "AA: 4"])
def test_parser_rejects_malformed_answer_lines(text):
    assert parse_answer(text) is None


def test_rationale_format():
    assert add_rationale(472, 389) == "2+9=11\n7+8+1=16\n4+3+1=8\nA: 861"
    assert sub_rationale(472, 389) == "12-9=3\n17-8-1=8\n4-3-1=0\nA: 83"
    assert add_rationale(95, 17, MISCONCEPTIONS["drop_final_carry"]).endswith("A: 12")
    assert add_rationale(472, 389, MISCONCEPTIONS["drop_carry_tens"]) == "2+9=11\n7+8=15\n4+3+1=8\nA: 851"


@given(st.integers(0, 999), st.integers(0, 999))
def test_misconceptions_apply_exactly_where_their_rule_fires(a, b):
    units_carry = (a % 10 + b % 10) >= 10 and max(len(str(a)), len(str(b))) >= 2
    assert MISCONCEPTIONS["drop_carry_tens"].applies(a, b) == units_carry
    assert MISCONCEPTIONS["drop_final_carry"].applies(a, b) == (len(str(a + b)) > max(len(str(a)), len(str(b))))
    for m in MISCONCEPTIONS.values():
        wrong = parse_answer(add_rationale(a, b, m))
        assert (wrong != str(a + b)) == m.applies(a, b)


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 1.0])
def test_planted_misconception_hits_exactly_the_configured_fraction_of_applicable_examples(rate):
    cfg = ArithmeticConfig(base_train_size=3000, ood_train_size=200, misconception="drop_carry_tens",
                           misconception_rate=rate)
    splits = ArithmeticDomain(cfg, seed=11).splits()
    m = MISCONCEPTIONS["drop_carry_tens"]
    add = [e for e in splits.base_train if e.question.skill == "add"]
    applicable = [e for e in add if m.applies(*operands(e.question))]
    hit = [e for e in add if e.kind == "misconception:drop_carry_tens"]
    assert len(hit) == round(rate * len(applicable))
    assert all(m.applies(*operands(e.question)) for e in hit)
    assert all(e.completion == add_rationale(*operands(e.question), m) for e in hit)
    clean = [e for e in add if e.kind == "clean"]
    assert all(parse_answer(e.completion) == e.question.answer for e in clean)
    assert all(e.kind == "clean" for e in splits.base_train if e.question.skill == "sub")


def test_answer_noise_corrupts_exactly_the_configured_fraction_and_only_the_answer():
    cfg = ArithmeticConfig(base_train_size=2000, ood_train_size=100, answer_noise=0.4)
    add = [e for e in ArithmeticDomain(cfg, seed=5).splits().base_train if e.question.skill == "add"]
    noisy = [e for e in add if e.kind == "noise"]
    assert len(noisy) == round(0.4 * len(add))
    for e in noisy:
        gold = add_rationale(*operands(e.question))
        assert e.completion.rsplit("\n", 1)[0] == gold.rsplit("\n", 1)[0]  # rationale untouched
        wrong = parse_answer(e.completion)
        assert wrong is not None and wrong != e.question.answer
        assert len(str(wrong)) == len(str(e.question.answer))  # no leading zero, same width


@given(st.integers(0, 99999), st.integers(0, 2**32 - 1))
def test_corrupt_answer_always_changes_exactly_one_digit(answer, seed):
    out = corrupt_answer(f"x\nA: {answer}", np.random.default_rng(seed))
    new = out.rsplit("A: ", 1)[1]
    assert len(new) == len(str(answer)) and sum(x != y for x, y in zip(new, str(answer))) == 1
    assert int(new) != answer and (len(new) == 1 or new[0] != "0")


def test_splits_are_disjoint_stratified_and_keep_small_strata_in_base_train():
    splits = ArithmeticDomain(ArithmeticConfig(), seed=0).splits()
    ids = {name: {q.id for q in qs} for name, qs in [("pool", splits.pool), ("test", splits.test),
                                                      ("val", splits.base_val), ("ood", splits.ood)]}
    ids["train"] = {e.question.id for e in splits.base_train}
    ids["reference"] = {tid.removeprefix("ref:") for tid, _, _ in splits.reference}
    names = list(ids)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not ids[a] & ids[b], (a, b)
    assert len(splits.pool) == 500 and len(splits.test) == 300 and len(splits.ood) == 300

    def stratum(qid):
        a, b = qid[4:].replace("-", "+").split("+")
        return len(a), len(b)

    single = [q for q in ids["train"] if q.startswith("add:") and stratum(q) == (1, 1)]
    assert len(single) >= 45  # half of the 100 single-digit pairs stay in base-train
    for name in ("pool", "test"):
        counts = Counter(stratum(q) for q in ids[name])
        assert len(counts) == 9 and min(counts.values()) >= 10, (name, counts)
    assert all(int(q.answer) >= 0 for q in splits.ood)


def test_splits_are_deterministic_by_seed():
    a = ArithmeticDomain(ArithmeticConfig(answer_noise=0.1), seed=1).splits()
    b = ArithmeticDomain(ArithmeticConfig(answer_noise=0.1), seed=1).splits()
    c = ArithmeticDomain(ArithmeticConfig(answer_noise=0.1), seed=2).splits()
    assert a == b and a.pool != c.pool


def test_config_rejects_inconsistent_conditions():
    with pytest.raises(ValueError, match="min_digits"):
        ArithmeticConfig(min_digits=3, max_digits=2)
    with pytest.raises(ValueError, match="unknown misconception"):
        ArithmeticConfig(misconception="off_by_one")
    with pytest.raises(ValueError, match="needs a misconception"):
        ArithmeticConfig(misconception_rate=0.2)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2))
def test_small_configs_fill_every_split(max_digits, seed):
    cfg = ArithmeticConfig(max_digits=max_digits, base_train_size=50, ood_train_size=10, base_val_size=10,
                           pool_size=20, test_size=10, ood_size=10, reference_size=4)
    s = ArithmeticDomain(cfg, seed=seed).splits()
    assert (len(s.pool), len(s.test), len(s.ood), len(s.reference)) == (20, 10, 10, 4)
    assert len(s.base_train) == 60
