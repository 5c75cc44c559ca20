"""Selectors, amplifiers and the distill data policy: each one's contract on a function-driven backend,
label isolation for the label-free selectors, and determinism under a fixed seed."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.artifacts import RoundRecord, RunStore, SelectedRow, write_jsonl
from harness.config import LoopConfig
from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain, add_rationale, make_question
from harness.loop import run_loop, select
from harness.strategies.amplify import decompose
from harness.strategies.distill import training_set
from harness.strategies.judge import judge_scores
from harness.strategies.labeled import gold_filter, rationalizations, verifier
from harness.strategies.select import keep_all, strip_labels, top_scored
from tests.conftest import tiny_run_config
from tests.fake_backend import FunctionBackend
from tests.test_select import rows

# ---------------------------------------------------------------- verifier (ReST-EM)

def test_verifier_keeps_exactly_the_checked_samples():
    samples = rows({"a": [1, 2, 1, None], "b": [3, 3, 4, 5]}, truth={"a": 1, "b": 4})
    kept = verifier(samples, noise=0.0, seed=0, round=1)
    assert {(r.question_id, r.sample_index) for r in kept} == {("a", 0), ("a", 2), ("b", 2)}
    assert [r.vote_share for r in kept] == [0.5, 0.5, 0.25]


def test_verifier_noise_one_flips_every_verdict_and_partial_noise_is_seeded():
    samples = rows({q: [0, 1, 2, None] * 25 for q in "abcd"}, truth={q: 1 for q in "abcd"})
    flipped = verifier(samples, noise=1.0, seed=0, round=0)
    assert all(r.answer != "1" for r in flipped) and len(flipped) == 300
    noisy = verifier(samples, noise=0.3, seed=7, round=0)
    assert noisy == verifier(samples, noise=0.3, seed=7, round=0)
    assert noisy != verifier(samples, noise=0.3, seed=8, round=0)
    wrong_kept = sum(r.answer != "1" for r in noisy)
    assert 0.2 < wrong_kept / 300 < 0.4  # 30% of the 300 wrong samples, binomial sd 2.6 points


# ---------------------------------------------------------------- gold rationalization (STaR)

def test_gold_filter_and_rationalizations_train_without_the_hint():
    domain = ArithmeticDomain()
    qs = [make_question("add", 12, 39), make_question("add", 5, 4)]
    samples = rows({qs[0].id: [51, 41], qs[1].id: [8, 9]}, truth={qs[0].id: 51, qs[1].id: 9})
    kept, failed = gold_filter(samples, round=0)
    assert [(r.question_id, r.sample_index) for r in kept] == [(qs[0].id, 0), (qs[1].id, 1)] and failed == []
    samples = rows({qs[0].id: [41, 41], qs[1].id: [9, 8]}, truth={qs[0].id: 51, qs[1].id: 9})
    kept, failed = gold_filter(samples, round=0)
    assert failed == [qs[0].id]
    hinted = rows({qs[0].id: [51, 41, 51]}, truth={qs[0].id: 51})
    hinted = [h.model_copy(update={"prompt": domain.hint_prompt(qs[0])}) for h in hinted]
    rat = rationalizations([qs[0]], hinted, samples, round=0)
    assert [r.sample_index for r in rat] == [0, 2]
    assert all(r.source == "rationalization" and r.prompt == qs[0].prompt == "Q: 12+39\n" for r in rat)
    assert domain.hint_prompt(qs[0]) == "Q: 12+39 (hint 51)\n"


def test_hint_share_adds_hinted_copies_of_clean_examples():
    cfg = ArithmeticConfig(max_digits=2, base_train_size=400, ood_train_size=10, base_val_size=10, pool_size=10,
                           test_size=10, ood_size=10, reference_size=4, hint_share=0.1)
    train = ArithmeticDomain(cfg, seed=1).splits().base_train
    hinted = [e for e in train if e.kind == "hinted"]
    assert len(hinted) == 40 and all("(hint " in e.question.prompt for e in hinted)
    assert all(e.completion == add_rationale(*map(int, e.question.id[4:].split("+"))) for e in hinted)
    plain = ArithmeticDomain(cfg.model_copy(update={"hint_share": 0.0}), seed=1).splits().base_train
    assert sorted(e.question.id for e in train if e.kind != "hinted") == sorted(e.question.id for e in plain)


# ---------------------------------------------------------------- judge and none

def test_top_scored_keeps_the_best_share_deterministically():
    samples = strip_labels(rows({"a": [1, 2, None, 4], "b": [5, 6, 7, 8]}))
    scores = [0.0, -1.0, 5.0, -3.0, -0.5, -0.5, -2.0, -9.0]
    kept = top_scored(samples, scores, keep=0.5, round=3)
    # the unparsed sample (score 5) is never kept; ties at -0.5 both fit
    assert [(r.question_id, r.sample_index) for r in kept] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert kept[0].score == 0.0 and kept[0].round == 3


def test_judge_scores_are_mean_logprob_of_the_target_after_the_scoring_prompt():
    seen = []
    backend = FunctionBackend(lambda p, r: "", score=lambda p, c: seen.append((p, c)) or (-2.0 if "A: 3" in c else -1.0))
    samples = strip_labels(rows({"a": [3, 4]}))
    scores = judge_scores(backend, samples, "{prompt}{completion}\nok?", " yes")
    assert list(scores) == [-1.0, -1.0] and seen[0] == ("Q: a\n...\nA: 3\nok?", " yes")
    assert list(judge_scores(backend, samples, "{prompt}", "{completion}")) == [-2.0, -1.0]


def test_none_keeps_every_sample():
    samples = strip_labels(rows({"a": [1, None, 1], "b": [2]}))
    kept = keep_all(samples, round=0)
    assert len(kept) == 4 and kept[1].answer is None and kept[0].vote_share == pytest.approx(2 / 3)


answers = st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=1, max_size=6)


@given(st.dictionaries(st.sampled_from("abcdef"), answers, min_size=1), st.randoms())
def test_label_free_selectors_ignore_scrambled_labels(by_q, rnd):
    original = rows(by_q)
    scrambled = [r.model_copy(update={"truth": rnd.randint(0, 9), "correct": rnd.random() < 0.5}) for r in original]
    scores = [rnd.random() for _ in original]
    for pick in (lambda s: keep_all(strip_labels(s), 0), lambda s: top_scored(strip_labels(s), scores, 0.4, 0)):
        assert pick(original) == pick(scrambled)


def test_loop_select_is_label_free_for_label_free_strategies(tiny_config):
    """Through the loop's own dispatch, with a real (tiny) model as judge."""
    from harness.models.tiny.model import TinyModel

    model = TinyModel.initialise(tiny_config.model, 0)
    domain = ArithmeticDomain(tiny_config.domain)
    splits = domain.splits()
    original = rows({q.id: [1, 2, 2, None] for q in splits.pool[:6]})
    rnd = random.Random(0)
    scrambled = [r.model_copy(update={"truth": rnd.randint(0, 9), "correct": rnd.random() < 0.5}) for r in original]
    for name in ("self_consistency", "judge", "none"):
        cfg = tiny_config.model_copy(update={"loop": tiny_config.loop.model_copy(update={"select": name})})
        assert select(cfg, model, domain, splits, original, 0, _Quiet()) == \
            select(cfg, model, domain, splits, scrambled, 0, _Quiet())


class _Quiet:
    def task(self, *a, **k):
        from contextlib import nullcontext
        return nullcontext(lambda n: None)

    def log(self, *a):
        pass


# ---------------------------------------------------------------- decompose (IDA)

def _column_sum(prompt: str, rng) -> str:
    a, b, *carry = map(int, re.search(r"(\d)\+(\d)(?:\+(1))?=$", prompt).groups(default="0"))
    return f"{a + b + sum(carry)}\n"


def test_decompose_composes_the_models_sub_answers():
    domain = ArithmeticDomain()
    qs = [make_question("add", a, b) for a, b in [(347, 514), (95, 17), (4, 3)]]
    out = decompose(FunctionBackend(_column_sum), domain, qs, k=2, temperature=0.8, seed=0)
    assert [[c.text for c in row] for row in out] == [[add_rationale(*ab)] * 2 for ab in [(347, 514), (95, 17), (4, 3)]]
    assert all(c.finished for row in out for c in row)
    # a model that forgets to add one in every column with a carry still gets the carry written by the scaffold
    wrong = decompose(FunctionBackend(lambda p, r: "9\n"), domain, qs[:1], k=1, temperature=0, seed=0)[0][0]
    assert wrong.text == "7+4=9\n4+1=9\n3+5=9\nA: 999"
    broken = decompose(FunctionBackend(lambda p, r: "x"), domain, qs[:1], k=1, temperature=0, seed=0)[0][0]
    assert broken.text == "" and not broken.finished and domain.parse(broken.text) is None


def test_decompose_asks_each_sub_question_in_the_context_of_the_trace():
    backend = FunctionBackend(_column_sum)
    decompose(backend, ArithmeticDomain(), [make_question("add", 58, 67)], k=1, temperature=0, seed=0)
    assert [c[0] for c in backend.calls] == ["Q: 58+67\n8+7=", "Q: 58+67\n8+7=15\n5+6+1="]


# ---------------------------------------------------------------- distill: data policies and formats

def _store_with_selections(tmp_path, n_rounds=2):
    store = RunStore(tmp_path)
    for r in range(n_rounds):
        write_jsonl(store.round_dir(r) / "selected.jsonl", [
            SelectedRow(question_id=f"q{r}{i}", round=r, sample_index=0, prompt=f"Q: {r}+{i}\n",
                        completion=f"{r}+{i}={r + i}\nA: {r + i}", answer=str(r + i), vote_share=1.0) for i in range(10)])
        store.finish_round(RoundRecord(round=r, metrics={}, counts={}, training=None, seconds={},
                                       files=store.round_files(r)))  # reads are checked against these hashes
    return store


def test_data_policies_and_formats(tmp_path):
    store = _store_with_selections(tmp_path)
    domain = ArithmeticDomain(ArithmeticConfig(max_digits=2, base_train_size=500, ood_train_size=50,
                                               base_val_size=10, pool_size=10, test_size=10, ood_size=10,
                                               reference_size=4))
    splits = domain.splits()
    replace, c = training_set(store, 1, LoopConfig(), domain, splits, 0)
    assert len(replace) == 10 and all(p.startswith("Q: 1+") for p, _ in replace) and c["real"] == 0
    acc, _ = training_set(store, 1, LoopConfig(data_policy="accumulate"), domain, splits, 0)
    assert len(acc) == 20
    both, _ = training_set(store, 1, LoopConfig(formats=["cot", "direct"]), domain, splits, 0)
    assert both[:2] == [("Q: 1+0\n", "1+0=1\nA: 1"), ("Q: 1+0\n", "A: 1")]
    mixed, c = training_set(store, 1, LoopConfig(data_policy="mix_real", real_fraction=0.5), domain, splits, 3)
    real = {(e.question.prompt, e.completion) for e in splits.base_train}
    assert c == {"selected": 10, "self_generated": 10, "real": 10} and set(mixed[10:]) <= real
    assert mixed == training_set(store, 1, LoopConfig(data_policy="mix_real", real_fraction=0.5), domain, splits, 3)[0]


# ---------------------------------------------------------------- every strategy in the loop, twice

STRATEGIES = {
    "verifier": ({"select": "verifier", "verifier_noise": 0.2}, {}),
    "star": ({"select": "gold_rationalization", "distill_from": "base", "steps": 3}, {"hint_share": 0.1}),
    "judge": ({"select": "judge"}, {}),
    "none": ({"select": "none", "formats": ["cot", "direct"]}, {}),
    "decompose": ({"amplify": "decompose"}, {}),
    "mix_real": ({"data_policy": "mix_real", "real_fraction": 0.3}, {}),
    "pg_majority": ({"distill": "policy_gradient", "reward": "majority"}, {}),
    "pg_self_certainty_kl": ({"distill": "policy_gradient", "reward": "self_certainty", "kl_beta": 0.04,
                             "pg_loss": "dapo"}, {}),
    "pg_noisy_verifier": ({"distill": "policy_gradient", "reward": "noisy_verifier", "reward_args": {"flip": 0.3}},
                          {}),
}


@pytest.fixture(scope="module")
def base_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("base-cache")  # strategies with the same domain share one base model


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_is_deterministic_under_a_fixed_seed(name, tmp_path, base_cache):
    loop, domain = STRATEGIES[name]
    cfg = tiny_run_config(rounds=1, **loop)
    cfg = cfg.model_copy(update={"domain": cfg.domain.model_copy(update=domain),
                                 "base": cfg.base.model_copy(update={"steps": 150})})
    a = run_loop(cfg, tmp_path / "a", base_cache)
    b = run_loop(cfg, tmp_path / "b", base_cache)
    for r in (0, 1):
        for f in ("samples.jsonl", "selected.jsonl", "eval.jsonl"):
            assert (a.round_dir(r) / f).read_bytes() == (b.round_dir(r) / f).read_bytes(), (r, f)
    if name != "star":  # this barely trained model reaches no gold answer, even with a hint
        assert a.read_round(1).training["examples"] > 0
