"""The model-backend contract, on the embedded tiny model (random weights are enough for most of it)."""

import pytest
import torch
from transformers import GenerationConfig

from harness.models.tiny.model import TinyConfig, TinyModel
from harness.models.tiny.tokenizer import CharTokenizer
from harness.models.tiny.training import encode_pairs
from harness.models.training import IGNORE
from tests.backend_contract import PROMPTS

# k samples in prompt order and seeded determinism: tests/backend_contract.py, run on tiny by test_hf_backend.


def test_greedy_decoding_is_the_same_with_and_without_kv_cache(random_model):
    cached = random_model.sample(PROMPTS, k=1, temperature=0.0, max_new_tokens=24, seed=0)
    uncached = random_model.sample(PROMPTS, k=1, temperature=0.0, max_new_tokens=24, seed=0, use_cache=False)
    assert [c[0].text for c in cached] == [c[0].text for c in uncached]
    for x, y in zip(cached, uncached):
        assert x[0].sum_logprob == pytest.approx(y[0].sum_logprob, abs=1e-4)


def test_greedy_decoding_matches_transformers_generate(random_model):
    tok = random_model.tokenizer
    ours = random_model.sample(PROMPTS, k=1, temperature=0.0, max_new_tokens=20, seed=0)
    for prompt, completions in zip(PROMPTS, ours):
        ids = torch.tensor([[tok.bos_id, *tok.encode(prompt)]])
        gen = random_model.model.generate(ids, generation_config=GenerationConfig(
            do_sample=False, max_new_tokens=20, eos_token_id=tok.eos_id, pad_token_id=tok.pad_id,
            suppress_tokens=list(tok.never_generated)))
        assert tok.decode(gen[0, ids.shape[1]:].tolist()) == completions[0].text


def test_sampled_logprobs_match_a_direct_forward_pass(random_model):
    out = random_model.sample(PROMPTS, k=2, temperature=0.7, max_new_tokens=16, seed=3)
    flat = [(p, c) for p, cs in zip(PROMPTS, out) for c in cs]
    scored = random_model.score([p for p, _ in flat], [c.text for _, c in flat], [c.finished for _, c in flat])
    for (_, c), (lp, n) in zip(flat, scored):
        assert n == c.n_tokens
        assert lp == pytest.approx(c.sum_logprob, abs=1e-3)


def test_loss_labels_cover_the_completion_and_eos_only():
    tok = CharTokenizer()
    ids, labels, mask = encode_pairs(tok, ["Q: 1+2\n", "Q: 10+20\n"], ["A: 3", "A: 30"], [True, True])
    assert mask is None  # right padding in a causal model: no attention mask needed
    for row, (p, c) in enumerate([("Q: 1+2\n", "A: 3"), ("Q: 10+20\n", "A: 30")]):
        supervised = labels[row][labels[row] != IGNORE].tolist()
        assert supervised == tok.encode(c) + [tok.eos_id]
        assert ids[row, 0] == tok.bos_id


def test_finetuning_fits_the_examples_and_save_load_round_trips(tmp_path):
    model = TinyModel.initialise(TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64), 1)
    pairs = [("Q: 1+2\n", "1+2=3\nA: 3"), ("Q: 2+2\n", "2+2=4\nA: 4")] * 8
    before = sum(lp for lp, _ in model.score([p for p, _ in pairs[:2]], [c for _, c in pairs[:2]]))
    stats = model.finetune(pairs, lr=1e-2, epochs=20, batch_size=8, seed=0)
    after = sum(lp for lp, _ in model.score([p for p, _ in pairs[:2]], [c for _, c in pairs[:2]]))
    assert stats.steps == 40 and after > before + 10
    greedy = model.sample(["Q: 1+2\n"], k=1, temperature=0.0, max_new_tokens=16, seed=0)[0][0].text
    assert greedy == "1+2=3\nA: 3"
    model.save(tmp_path / "m")
    loaded = TinyModel.load(tmp_path / "m")
    for a, b in zip(model.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    assert loaded.score(["Q: 1+2\n"], ["1+2=3\nA: 3"]) == model.score(["Q: 1+2\n"], ["1+2=3\nA: 3"])


def test_tokenizer_round_trips_printable_text_and_marks_unknowns():
    tok = CharTokenizer()
    text = "Q: 472+389\n2+9=11 ~!@#"
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("é")) == "\ufffd"
    assert tok.decode(tok.encode("ab") + [tok.eos_id] + tok.encode("cd")) == "ab"
