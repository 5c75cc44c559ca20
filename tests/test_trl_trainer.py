"""`[model] trainer = "trl"` (hf backend): TRL's SFTTrainer, set up like loopprobe's training core, meets the same
fine-tuning contract on a tiny random Llama (full and LoRA), stops where `on_step` says, and a missing TRL
is one line naming the extra. Runs on the GPU too when there is one (tests/test_gpu.py)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from harness.app.suite import SuiteError, parse_suite
from harness.models.factory import backend_plugin
from harness.models.hf.config import HFConfig, LoraConfig
from harness.models.hf.model import HFModel
from harness.models.hf.testing import make_tiny_model_dir
from harness.models.training import epoch_steps
from tests import backend_contract as contract

pytest.importorskip("trl")

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("hf-trl") / "plain", seed=0)


def trl_model(model_dir, lora: bool = False, device: str = "cpu") -> HFModel:
    return HFModel.from_config(HFConfig(path=str(model_dir), trainer="trl", device=device,
                                        lora=LoraConfig(r=8, alpha=16, target_modules=ALL_PROJECTIONS) if lora
                                        else None), seed=1)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_trl_meets_the_fine_tuning_contract_and_round_trips(model_dir, tmp_path, lora):
    model = trl_model(model_dir, lora)
    gain = contract.finetuning_fits_the_examples(model, exact=not lora)  # 40 steps, +10 nats, greedy exact (full)
    loaded = contract.save_load_round_trips(model, backend_plugin("hf").load, tmp_path / "ckpt")
    assert gain > 10 and loaded.n_parameters == model.n_parameters  # (the contract asserts the rest)


def test_trl_with_lora_trains_only_the_adapters(model_dir):
    model = trl_model(model_dir, lora=True)
    before = {n: p.detach().clone() for n, p in model.model.named_parameters()}
    stats = model.finetune(contract.PAIRS, lr=1e-2, epochs=2, batch_size=8, seed=0)
    changed = {n for n, p in model.model.named_parameters() if not torch.equal(p, before[n])}
    assert stats.steps == epoch_steps(len(contract.PAIRS), 2, 8) and stats.tokens > 0
    assert changed and all("lora_" in n for n in changed) and any("lora_B" in n for n in changed)


def test_on_step_sees_every_step_and_stops_the_training(model_dir):
    model, seen = trl_model(model_dir), []

    def on_step(step: int, loss: float) -> bool:
        seen.append((step, loss))
        return step == 2

    stats = model.finetune(contract.PAIRS, lr=1e-3, epochs=20, batch_size=8, seed=0, on_step=on_step)
    assert [s for s, _ in seen] == [0, 1, 2] and stats.steps == 3
    assert all(loss > 0 for _, loss in seen) and not model.model.training


def test_micro_batches_accumulate_to_the_batch(model_dir):
    """4 rows a micro-batch, 8 a step: the step count is the batch's, not the micro-batch's."""
    model = HFModel.from_config(HFConfig(path=str(model_dir), trainer="trl", device="cpu", train_micro_batch_size=4))
    assert model.finetune(contract.PAIRS, lr=1e-3, epochs=2, batch_size=8, seed=0).steps == epoch_steps(
        len(contract.PAIRS), 2, 8)


def test_a_missing_trl_is_one_line_naming_the_extra(model_dir, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real(name, *a))
    text = f'[suite]\nname = "t"\n[model]\nbackend = "hf"\npath = "{model_dir}"\ntrainer = "trl"\n'
    with pytest.raises(SuiteError) as e:
        parse_suite(text, "t.toml")
    assert len(str(e.value).splitlines()) == 1 and "pip install 'loopprobe[trl]'" in str(e.value)
    assert "model" in str(e.value)
