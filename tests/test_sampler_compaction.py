"""Finished rows leave the sampler's batch, with bit-identical results: the samples, log-probs and token counts
equal those of decoding every row to the batch's end with transformers' concatenating KV cache and
`torch.multinomial`, the sampler as it was before (`reference_generate`, kept here as the reference)."""

from __future__ import annotations

import pytest
import torch

from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain
from harness.models.tiny import sampler
from harness.models.tiny.model import TinyConfig, TinyModel
from harness.models.tiny.pretrain import SHIPPED_DIR


@torch.inference_mode()
def reference_generate(model, ids, max_new_tokens, temperature, eos, pad, banned, generator, use_cache):
    """The sampler before compaction: every row to the end, DynamicCache, torch.multinomial."""
    batch = ids.shape[0]
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache = out.cache
    logits = out.logits[:, -1].float()
    logits[:, list(banned)] = -torch.inf
    finished = torch.zeros(batch, dtype=torch.bool)
    sum_lp = torch.zeros(batch, dtype=torch.float64)
    n_tok = torch.zeros(batch, dtype=torch.long)
    tokens = []
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(logits, dim=-1)
        if temperature == 0:
            tok = logits.argmax(dim=-1)
        else:
            tok = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=generator).squeeze(1)
        live = ~finished
        tok = torch.where(live, tok, torch.full_like(tok, pad))
        sum_lp += torch.where(live, logp.gather(1, tok[:, None]).squeeze(1), 0.0).double()
        n_tok += live.long()
        finished |= tok == eos
        tokens.append(tok)
        if bool(finished.all()):
            break
        out = model(input_ids=tok[:, None], cache=cache, use_cache=True)
        cache = out.cache
        logits = out.logits[:, -1].float()
        logits[:, list(banned)] = -torch.inf
    return torch.stack(tokens, dim=1), sum_lp, n_tok, finished


@pytest.fixture(scope="module")
def trained():
    return TinyModel.load(next(p for p in SHIPPED_DIR.iterdir() if not p.name.startswith(".")))


POOL = [q.prompt for q in ArithmeticDomain(ArithmeticConfig(), seed=0).splits().pool][:160]


@pytest.mark.parametrize("k,temperature,seed", [(8, 0.8, 0), (8, 1.0, 1), (1, 0.0, 0), (3, 0.5, 2)])
def test_compacting_sampler_is_bit_identical_to_decoding_every_row(trained, monkeypatch, k, temperature, seed):
    torch.set_num_threads(1)
    ours = trained.sample(POOL, k=k, temperature=temperature, max_new_tokens=40, seed=seed)
    monkeypatch.setattr(sampler, "_generate", reference_generate)
    before = trained.sample(POOL, k=k, temperature=temperature, max_new_tokens=40, seed=seed)
    assert ours == before  # texts, sum log-probs (float equality), token counts, finished flags


def test_compaction_really_happens_and_keeps_at_least_min_rows(trained, monkeypatch):
    """The rows computed shrink (so the test above covers compaction), never below MIN_ROWS."""
    sizes = []
    forward = trained.model.forward

    def counting(*args, **kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    monkeypatch.setattr(trained.model, "forward", counting)
    trained.sample(POOL[:64], k=8, temperature=0.8, max_new_tokens=40, seed=0)
    assert min(sizes) == sampler.MIN_ROWS and len(set(sizes)) > 3 and max(sizes) > 4 * sampler.MIN_ROWS


def test_an_untrained_model_at_fixed_length_is_unchanged_too():
    model = TinyModel.initialise(TinyConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128), 0)
    prompts = POOL[:40]
    ours = model.sample(prompts, k=4, temperature=1.0, max_new_tokens=16, seed=5)
    original = sampler._generate
    try:
        sampler._generate = reference_generate
        before = model.sample(prompts, k=4, temperature=1.0, max_new_tokens=16, seed=5)
    finally:
        sampler._generate = original
    assert ours == before
