"""One registry for domains, selectors, amplifiers, data policies and backends: built-ins are all there,
unknown names are one line with the nearest choice, capabilities are checked when a suite is validated, and
a label-free selector cannot reach the truth."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from harness import registry
from harness.app.suite import SuiteError, parse_suite
from harness.artifacts import SampleRow
from harness.config import LoopConfig, RunConfig
from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain, make_question
from harness.loop import select
from harness.progress import SilentReporter
from harness.registry import RegistryError, lookup, register, registered
from harness.strategies.select import LabelFreeDomain, register_selector
from tests.conftest import tiny_run_config
from tests.fake_backend import FunctionBackend

BUILT_IN = {
    "domain": {"arithmetic", "word_problems", "sorting"},
    "selector": {"self_consistency", "verifier", "gold_rationalization", "judge", "none", "self_verify"},
    "reward": {"majority", "verifier", "noisy_verifier", "self_certainty"},
    "amplifier": {"sample", "decompose"},
    "data_policy": {"replace", "accumulate", "mix_real"},
    "backend": {"tiny", "hf"},
}


@pytest.mark.parametrize("kind", list(registry.GROUPS))
def test_every_built_in_module_exists_and_registers_its_extensions(kind):
    assert all(importlib.util.find_spec(m) is not None for m in registry.BUILTINS[kind])
    assert BUILT_IN[kind] <= set(registered(kind)), registered(kind)


@pytest.mark.parametrize("kind, typo, nearest", [("domain", "arithmatic", "arithmetic"),
                                                 ("selector", "self_consistancy", "self_consistency"),
                                                 ("amplifier", "decompse", "decompose"),
                                                 ("data_policy", "acumulate", "accumulate"),
                                                 ("backend", "tny", "tiny")])
def test_an_unknown_name_is_one_line_with_the_nearest_choice(kind, typo, nearest):
    with pytest.raises(RegistryError) as e:
        lookup(kind, typo)
    assert f"did you mean {nearest!r}" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("section, key, typo, nearest", [("loop", "select", "self_consistancy", "self_consistency"),
                                                         ("loop", "amplify", "sampel", "sample"),
                                                         ("loop", "data_policy", "replac", "replace"),
                                                         ("domain", "name", "arithmatic", "arithmetic"),
                                                         ("model", "backend", "tny", "tiny")])
def test_a_suite_naming_an_unknown_extension_is_refused_at_load(section, key, typo, nearest):
    text = f'[suite]\nname = "t"\n[{section}]\n{key} = "{typo}"\n'
    with pytest.raises(SuiteError) as e:
        parse_suite(text, "t.toml")
    message = str(e.value)
    assert f"{section}.{key}" in message and repr(nearest) in message and "\n" not in message, message


def test_nothing_falls_through_to_a_default():
    with pytest.raises(ValueError, match="unknown selector"):
        LoopConfig(select="star")
    with pytest.raises(RegistryError, match="unknown domain"):
        lookup("domain", "chess")


def test_a_strategy_needing_a_capability_the_domain_lacks_is_refused_at_validation():
    with pytest.raises(ValueError, match="amplifier 'decompose' needs a domain with Decomposes"):
        RunConfig(domain={"name": "word_problems"}, model={"backend": "hf", "path": "/nowhere"},
                  loop={"amplify": "decompose"})
    text = '[suite]\nname = "t"\n[domain]\nname = "word_problems"\n[model]\nbackend = "hf"\npath = "/x"\n' \
           '[[conditions]]\nname = "ida"\nloop = { amplify = "decompose" }\n'
    with pytest.raises(SuiteError, match="loop.amplify: amplifier 'decompose' needs"):
        parse_suite(text, "t.toml")


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(RegistryError, match="already registered"):
        register("selector", "self_consistency")(lambda samples, ctx: [])


def test_select_args_are_validated_against_the_selectors_own_model():
    with pytest.raises(ValueError, match="takes no settings"):
        LoopConfig(select_args={"margin": 1})


# ---------------------------------------------------------------- label-free selectors cannot reach the truth

TRUTH = "4242"  # no sample, prompt or completion below holds it


def test_a_label_free_selector_gets_nothing_that_holds_the_truth(monkeypatch):
    seen = {}

    def peek(samples, ctx):
        seen["samples"], seen["ctx"] = samples, ctx
        return []

    monkeypatch.setitem(registry._REGISTRY["selector"], "peek", None)  # restored after the test
    del registry._REGISTRY["selector"]["peek"]
    register_selector("peek", uses_labels=False)(peek)
    cfg = tiny_run_config(select="peek")
    domain = ArithmeticDomain(cfg.domain, seed=0)
    question = make_question("add", 4000, 242)
    assert question.answer == TRUTH
    rows = [SampleRow(question_id=question.id, split="pool", round=0, sample_index=j, decoding="sample",
                      prompt=question.prompt, completion=f"A: {j}", parsed_answer=str(j), sum_logprob=-1.0,
                      n_tokens=3, finished=True, truth=TRUTH, correct=False) for j in range(3)]
    splits = domain.splits()
    select(cfg, FunctionBackend(lambda p, rng: ""), domain, splits, rows, 0, SilentReporter())

    samples, ctx = seen["samples"], seen["ctx"]
    assert all(not hasattr(s, "truth") and not hasattr(s, "correct") for s in samples)
    assert TRUTH not in repr(samples)
    assert isinstance(ctx.domain, LabelFreeDomain)
    for leak in ("splits", "check", "hint_prompt", "planted_answer", "decompose", "config", "reference_rationale"):
        assert not hasattr(ctx.domain, leak), leak
    fields = {f.name for f in dataclasses.fields(ctx)}
    assert not fields & {"pool", "decode", "splits", "questions"}, fields
    assert ctx.domain.parse("A: 12") == "12"  # what it may do: read answers


def test_a_selector_that_reads_labels_gets_the_truth(monkeypatch):
    seen = {}

    def oracle(samples, ctx):
        seen["truth"] = {s.truth for s in samples}
        seen["pool"] = len(ctx.pool)
        return []

    monkeypatch.setitem(registry._REGISTRY["selector"], "oracle", None)
    del registry._REGISTRY["selector"]["oracle"]
    register_selector("oracle", uses_labels=True)(oracle)
    cfg = tiny_run_config(select="oracle")
    domain = ArithmeticDomain(cfg.domain, seed=0)
    splits = domain.splits()
    q = splits.pool[0]
    rows = [SampleRow(question_id=q.id, split="pool", round=0, sample_index=0, decoding="sample", prompt=q.prompt,
                      completion="A: 1", parsed_answer="1", sum_logprob=-1.0, n_tokens=3, finished=True,
                      truth=q.answer, correct=q.answer == "1")]
    select(cfg, FunctionBackend(lambda p, rng: ""), domain, splits, rows, 0, SilentReporter())
    assert seen == {"truth": {q.answer}, "pool": len(splits.pool)}


def test_registered_objects_record_their_metadata():
    star = lookup("selector", "gold_rationalization")
    assert star.metadata["uses_labels"] is True and star.metadata["prompts"] == ("hint_prompt",)
    assert lookup("selector", "self_consistency").metadata["uses_labels"] is False
    assert lookup("domain", "arithmetic").obj.config_class is ArithmeticConfig
    assert lookup("amplifier", "decompose").metadata["requires"]
