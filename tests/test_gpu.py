"""The `hf` backend on a CUDA GPU (marked `gpu`, skipped without one): sampling, scoring and fine-tuning with
loopprobe's training core and with TRL's SFTTrainer (full and LoRA), and a policy-gradient update, meet the CPU contract, checkpoints round-trip,
and the GPU's scores agree with the CPU's on the same weights.

    pytest -m gpu tests/test_gpu.py
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from harness.models.factory import backend_plugin
from harness.models.hf.config import HFConfig, LoraConfig
from harness.models.hf.model import HFModel
from harness.models.hf.testing import make_tiny_model_dir
from tests import backend_contract as contract

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRAINERS = ["loopprobe"] + (["trl"] if importlib.util.find_spec("trl") else [])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("gpu") / "plain", seed=0)


def on_gpu(model_dir, trainer: str = "loopprobe", lora: bool = False) -> HFModel:
    model = HFModel.from_config(HFConfig(path=str(model_dir), device="cuda", trainer=trainer,
                                         lora=LoraConfig(r=8, alpha=16, target_modules=ALL_PROJECTIONS) if lora
                                         else None), seed=1)
    assert model.device.type == "cuda"
    return model


@pytest.mark.parametrize("check", [contract.k_samples_per_prompt_in_prompt_order,
                                   contract.sampling_is_deterministic_by_seed_and_varies_with_it,
                                   contract.sampled_logprobs_match_score], ids=lambda f: f.__name__)
def test_sampling_on_the_gpu_meets_the_contract(model_dir, check):
    check(on_gpu(model_dir))


def test_gpu_scores_agree_with_the_cpu_on_the_same_weights(model_dir):
    gpu, cpu = on_gpu(model_dir), HFModel.from_config(HFConfig(path=str(model_dir), device="cpu"), seed=1)
    prompts, completions = [p for p, _ in contract.PAIRS], [c for _, c in contract.PAIRS]
    for (a, n), (b, m) in zip(gpu.score(prompts, completions), cpu.score(prompts, completions)):
        assert n == m and a == pytest.approx(b, rel=1e-4, abs=1e-3)


def test_a_policy_gradient_update_on_the_gpu_moves_its_rollouts(model_dir):
    from tests.test_policy_gradient import update_moves_the_rollouts

    gain, loss = update_moves_the_rollouts(on_gpu(model_dir), reference=on_gpu(model_dir))
    assert gain > 0.05 and loss > 0.05  # the +1 rollout rose and the -1 rollout fell, in log-prob


@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_fine_tuning_on_the_gpu_meets_the_contract_and_round_trips(model_dir, tmp_path, trainer, lora):
    model = on_gpu(model_dir, trainer, lora)
    gain = contract.finetuning_fits_the_examples(model, exact=not lora)
    assert all(p.device.type == "cuda" for p in model.model.parameters())
    loaded = contract.save_load_round_trips(model, backend_plugin("hf").load, tmp_path / "ckpt")
    assert gain > 10 and loaded.n_parameters == model.n_parameters  # (the contract asserts the rest)
