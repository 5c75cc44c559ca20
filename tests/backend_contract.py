"""The ModelBackend contract as plain functions of a backend, so every backend is held to the same checks
(tests/test_hf_backend.py runs them on `tiny` and on `hf`, plain, chat-template and LoRA;
tests/test_backends.py runs the protocol check on the FunctionBackend test double)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.models.base import ModelBackend

PROMPTS = ["Q: 1+2\n", "Q: 34+5\n", "Q: 472+389\n", "Q: 7+8\n", "Q: 99-12\n"]
PAIRS = [("Q: 1+2\n", "1+2=3\nA: 3"), ("Q: 2+2\n", "2+2=4\nA: 4")] * 8


def implements_the_protocol(model) -> None:
    """isinstance on the runtime-checkable protocol (the methods exist), every parameter the protocol
    declares is accepted by name (what the loop and the strategies pass), and the keywords work."""
    assert isinstance(model, ModelBackend)
    for name in ("sample", "score", "finetune", "save"):
        declared = inspect.signature(getattr(ModelBackend, name)).parameters
        accepted = inspect.signature(getattr(model, name)).parameters
        missing = [p for p in declared if p != "self" and p not in accepted]
        assert not missing, f"{type(model).__name__}.{name} lacks {missing}"
    seen: list[int] = []
    out = model.sample(PROMPTS[:2], k=2, temperature=0.0, max_new_tokens=4, seed=0, batch_size=1,
                       progress=seen.append)
    assert len(out) == 2 and sum(seen) == 4


def k_samples_per_prompt_in_prompt_order(model) -> None:
    out = model.sample(PROMPTS, k=3, temperature=1.0, max_new_tokens=12, seed=1)
    assert len(out) == len(PROMPTS) and all(len(c) == 3 for c in out)
    for completions in out:
        for c in completions:
            assert 1 <= c.n_tokens <= 12 and c.sum_logprob < 0
            assert c.finished or c.n_tokens == 12


def sampling_is_deterministic_by_seed_and_varies_with_it(model) -> None:
    a = model.sample(PROMPTS, k=4, temperature=1.0, max_new_tokens=16, seed=7)
    b = model.sample(PROMPTS, k=4, temperature=1.0, max_new_tokens=16, seed=7)
    c = model.sample(PROMPTS, k=4, temperature=1.0, max_new_tokens=16, seed=8)
    assert a == b and a != c


def greedy_is_deterministic_and_batch_invariant(model) -> None:
    """Greedy: the same whatever the seed, k copies agree, and a batch decodes as each prompt alone."""
    batched = model.sample(PROMPTS, k=2, temperature=0.0, max_new_tokens=20, seed=0)
    again = model.sample(PROMPTS, k=2, temperature=0.0, max_new_tokens=20, seed=99)
    assert [[c.text for c in cs] for cs in batched] == [[c.text for c in cs] for cs in again]
    assert all(cs[0] == cs[1] for cs in batched)
    for prompt, cs in zip(PROMPTS, batched):
        alone = model.sample([prompt], k=1, temperature=0.0, max_new_tokens=20, seed=0)[0][0]
        assert alone.text == cs[0].text and alone.finished == cs[0].finished
        assert alone.sum_logprob == pytest.approx(cs[0].sum_logprob, abs=1e-3)


def sampled_logprobs_match_score(model) -> None:
    out = model.sample(PROMPTS, k=2, temperature=0.7, max_new_tokens=16, seed=3)
    flat = [(p, c) for p, cs in zip(PROMPTS, out) for c in cs]
    scored = model.score([p for p, _ in flat], [c.text for _, c in flat], [c.finished for _, c in flat])
    for (_, c), (lp, n) in zip(flat, scored):
        assert n == c.n_tokens
        assert lp == pytest.approx(c.sum_logprob, abs=1e-3)


def finetuning_fits_the_examples(model, lr: float = 1e-2, exact: bool = True) -> float:
    """40 AdamW steps on two repeated pairs raise their log-prob by > 10 nats (and, `exact`, greedy
    decoding then reproduces the completion). Returns that gain in nats."""
    prompts, completions = [p for p, _ in PAIRS[:2]], [c for _, c in PAIRS[:2]]
    before = sum(lp for lp, _ in model.score(prompts, completions))
    stats = model.finetune(PAIRS, lr=lr, epochs=20, batch_size=8, seed=0)
    after = sum(lp for lp, _ in model.score(prompts, completions))
    assert stats.steps == 40 and stats.tokens > 0 and after > before + 10
    assert stats.final_loss < stats.mean_loss
    if exact:
        greedy = model.sample(["Q: 1+2\n"], k=1, temperature=0.0, max_new_tokens=16, seed=0)[0][0]
        assert greedy.text == "1+2=3\nA: 3" and greedy.finished
    return after - before


def save_load_round_trips(model, load: Callable[[Path], ModelBackend], directory: Path) -> ModelBackend:
    """A saved checkpoint reloads to identical scores and identical samples. Returns the reloaded model."""
    model.save(directory)
    loaded = load(directory)
    prompts, completions = [p for p, _ in PAIRS[:2]], [c for _, c in PAIRS[:2]]
    assert loaded.score(prompts, completions) == model.score(prompts, completions)
    assert (loaded.sample(PROMPTS, k=2, temperature=1.0, max_new_tokens=10, seed=5)
            == model.sample(PROMPTS, k=2, temperature=1.0, max_new_tokens=10, seed=5))
    return loaded
