"""Policy-gradient distillation (`[loop] distill = "policy_gradient"`): the loss and its gradients against TRL's
GRPOTrainer on one batch, advantages against TRL's formula, self-certainty against scipy, the update's
direction, the rewards, what the config refuses, and a run that records rewards and advantages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import rel_entr

from harness.artifacts import RunError
from harness.config import LoopConfig
from harness.loop import run_loop
from harness.models import policy_gradient, training
from harness.models.base import PolicySettings, Rollout
from harness.models.tiny.model import TinyConfig, TinyModel
from harness.strategies.rewards import group_advantages, majority_reward, noisy_verifier_reward, reward_selection
from harness.strategies.select import strip_labels
from probes import RunView, get_probe
from tests.conftest import tiny_run_config
from tests.test_select import rows

# ---------------------------------------------------------------- the loss is TRL's


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    from harness.models.hf.config import HFConfig
    from harness.models.hf.model import HFModel
    from harness.models.hf.testing import make_tiny_model_dir

    return HFModel.from_config(HFConfig(path=str(make_tiny_model_dir(tmp_path_factory.mktemp("pg") / "m"))), seed=1)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_loss_and_gradients_equal_trl_grpo_trainers(hf_model, tmp_path, loss_type, beta):
    trl = pytest.importorskip("trl")
    from datasets import Dataset

    model, tok, temperature = hf_model.model, hf_model.tokenizer, 0.8
    prompts = ["12+34=", "56+78=", "90+12=", "33+44="]  # one length: TRL left-pads prompts, which moves positions
    completions = ["46", "134 ok", "102", "7"]
    advantages = torch.tensor([1.0, -0.5, 0.25, -0.75])
    # ours: right-padded prompt + completion + eos rows, old and reference log-probs off the current ones
    batch = hf_model._pairs(prompts, completions, [True] * 4)
    mask = batch.labels[:, 1:] != training.IGNORE
    n_tok = int(mask.sum())
    g = torch.Generator().manual_seed(0)
    old_shift, ref_shift = torch.randn(n_tok, generator=g) * 0.3, torch.randn(n_tok, generator=g) * 0.3
    model.eval()
    model.zero_grad()
    logps = training.token_logprobs(model, batch, (), temperature=temperature)
    current = logps[mask].detach()
    old, ref = torch.zeros_like(logps), torch.zeros_like(logps)
    old[mask], ref[mask] = current + old_shift, current + ref_shift
    settings = PolicySettings(beta=beta, loss_type=loss_type, temperature=temperature)
    ours = policy_gradient.surrogate_loss(logps, old, ref, mask, advantages, settings, 4, n_tok)
    ours.backward()
    ours_grads = [p.grad.clone() for p in model.parameters()]

    args = trl.GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, beta=beta,
                          loss_type=loss_type, temperature=temperature, epsilon=0.2, report_to="none", use_cpu=True,
                          bf16=False, max_completion_length=8)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                              args=args, train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tok)
    trainer.current_gradient_accumulation_steps = 1
    prompt_ids = torch.tensor([tok(p)["input_ids"] for p in prompts])
    completion = [tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for c in completions]
    width = max(map(len, completion))
    completion_ids = torch.tensor([c + [tok.pad_token_id] * (width - len(c)) for c in completion])
    completion_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in completion])

    def layout(shift: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(completion_ids.shape)
        out[completion_mask.bool()] = current + shift
        return out

    model.zero_grad()
    theirs = trainer._compute_loss(model, {
        "prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
        "completion_mask": completion_mask, "advantages": advantages, "old_per_token_logps": layout(old_shift),
        "ref_per_token_logps": layout(ref_shift), "num_items_in_batch": torch.tensor(float(n_tok))})
    theirs.backward()
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-5, abs=1e-7)
    for ours_grad, p in zip(ours_grads, model.parameters()):
        torch.testing.assert_close(ours_grad, p.grad, rtol=1e-4, atol=1e-6)
    assert max(float(gr.abs().max()) for gr in ours_grads) > 1e-2  # a real gradient, not two zeros


def test_advantages_are_trls_group_normalisation():
    rng = np.random.default_rng(0)
    rewards = rng.random(24)
    groups = [f"q{i // 6}" for i in range(24)]
    r = torch.tensor(rewards).view(4, 6)
    expected = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).flatten().numpy()  # unbiased std
    np.testing.assert_allclose(group_advantages(rewards, groups), expected, rtol=1e-12)
    # a unanimous group carries no signal, nor does a group of one
    assert list(group_advantages([1, 1, 1, 0, 1, 7], ["a", "a", "a", "b", "b", "c"])[:3]) == [0, 0, 0]
    assert group_advantages([1, 1, 1, 0, 1, 7], ["a", "a", "a", "b", "b", "c"])[5] == 0


def test_self_certainty_is_the_mean_kl_from_uniform(random_model):
    prompts, completions = ["Q: 1+2\n", "Q: 33+4\n"], ["1+2=3\nA: 3", "A: 37"]
    got = random_model.self_certainty(prompts, completions)
    tok = random_model.tokenizer
    allowed = [i for i in range(tok.vocab_size) if i not in set(tok.never_generated)]
    batch = training.completion_batch([([tok.bos_id, *tok.encode(p)], tok.encode(c) + [tok.eos_id])
                                       for p, c in zip(prompts, completions)], tok.pad_id)
    with torch.no_grad():
        logits = random_model.model(input_ids=batch.ids).logits[:, :-1, allowed].double()
    probs = torch.softmax(logits, -1).numpy()
    mask = (batch.labels[:, 1:] != training.IGNORE).numpy()
    uniform = np.full(len(allowed), 1 / len(allowed))
    expected = [np.mean([rel_entr(uniform, probs[i, t]).sum() for t in np.flatnonzero(mask[i])]) for i in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-4)  # ours in float32, as the model runs
    assert all(v > 0 for v in got)


def test_an_update_raises_what_has_positive_advantage_and_lowers_the_rest():
    model = TinyModel.initialise(TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64), 0)
    prompts, good, bad = ["Q: 1+2\n"] * 2, "A: 3", "A: 4"
    before = [lp for lp, _ in model.score(prompts, [good, bad])]
    rollouts = [Rollout(prompts[0], good, 1.0), Rollout(prompts[0], bad, -1.0)]
    stats = model.policy_update(rollouts, PolicySettings(temperature=0.8), lr=3e-3, epochs=10, batch_size=2, seed=0)
    after = [lp for lp, _ in model.score(prompts, [good, bad])]
    assert stats.steps == 10 and stats.tokens == 10 * 10  # 5 tokens each (eos included), 2 rows, 10 steps
    assert after[0] > before[0] + 0.1 and after[1] < before[1] - 0.1
    assert model.policy_update([], PolicySettings(), lr=1e-3, epochs=1, batch_size=2, seed=0).steps == 0
    with pytest.raises(ValueError, match="reference"):
        model.policy_update(rollouts, PolicySettings(beta=0.1), lr=1e-3, epochs=1, batch_size=2, seed=0)
    stopped = model.policy_update(rollouts, PolicySettings(), lr=1e-3, epochs=10, batch_size=2, seed=0,
                                  on_step=lambda step, loss: step == 2)
    assert stopped.steps == 3


def update_moves_the_rollouts(model, reference=None) -> tuple[float, float]:
    """A few GRPO steps on two rollouts of one prompt, +1 and -1: the (gain, loss) of their log-probs."""
    prompt, good, bad = "Q: 1+2\n", "A: 3", "A: 4"
    before = [lp for lp, _ in model.score([prompt] * 2, [good, bad])]
    model.policy_update([Rollout(prompt, good, 1.0), Rollout(prompt, bad, -1.0)],
                        PolicySettings(temperature=0.8, beta=0.04 if reference else 0.0), lr=3e-3, epochs=10,
                        batch_size=2, seed=0, reference=reference)
    after = [lp for lp, _ in model.score([prompt] * 2, [good, bad])]
    assert after[0] > before[0] + 0.05 and after[1] < before[1] - 0.05, (before, after)
    certainty = model.self_certainty([prompt], [good])
    assert len(certainty) == 1 and certainty[0] > 0
    return after[0] - before[0], before[1] - after[1]


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_the_hf_backend_takes_the_same_update(tmp_path, lora):
    from harness.models.hf.config import HFConfig, LoraConfig
    from harness.models.hf.model import HFModel
    from harness.models.hf.testing import make_tiny_model_dir

    path = str(make_tiny_model_dir(tmp_path / "m"))
    adapters = LoraConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]) if lora else None
    model = HFModel.from_config(HFConfig(path=path, lora=adapters), seed=1)
    gain, loss = update_moves_the_rollouts(model, reference=HFModel.from_config(HFConfig(path=path), seed=1))
    assert gain > 0.05 and loss > 0.05  # the +1 rollout rose and the -1 rollout fell, in log-prob


def test_a_kl_penalty_holds_the_update_near_the_reference():
    config = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    reference = TinyModel.initialise(config, 0)
    rollouts = [Rollout("Q: 1+2\n", "A: 3", 1.0), Rollout("Q: 1+2\n", "A: 4", -1.0)]
    moved = []
    for beta in (0.0, 5.0):
        model = TinyModel.initialise(config, 0)
        model.policy_update(rollouts, PolicySettings(beta=beta), lr=3e-3, epochs=20, batch_size=2, seed=0,
                            reference=reference)
        moved.append(abs(model.score(["Q: 1+2\n"], ["A: 3"])[0][0] - reference.score(["Q: 1+2\n"], ["A: 3"])[0][0]))
    assert moved[1] < moved[0]


# ---------------------------------------------------------------- rewards


def test_rewards_and_their_recorded_rows():
    samples = rows({"a": [1, 1, 2, None], "b": [3, 3, 3, 3]}, truth={"a": 2, "b": 3})
    majority = majority_reward(strip_labels(samples), None)
    assert majority == [1, 1, 0, 0, 1, 1, 1, 1]
    recorded = reward_selection(samples, majority, round=2)
    assert [r.reward for r in recorded] == majority and all(r.round == 2 for r in recorded)
    assert [r.advantage for r in recorded][4:] == [0, 0, 0, 0]  # unanimous: no signal
    assert recorded[0].advantage == pytest.approx(0.5 / (math.sqrt(1 / 3) + 1e-4))  # (1 - 0.5) / (unbiased std + 1e-4)
    with pytest.raises(ValueError, match="one finite float per sample"):
        reward_selection(samples, majority[:-1], round=2)

    class Ctx:
        seed, args = 0, LoopConfig(distill="policy_gradient", reward="noisy_verifier",
                                   reward_args={"flip": 1.0}).reward_settings()

    assert noisy_verifier_reward(samples, Ctx) == [float(not s.correct) for s in samples]


@pytest.mark.parametrize("loop, fragment", [
    ({"distill": "policy_gradient", "select": "verifier"}, "select: distill"),
    ({"distill": "policy_gradient", "data_policy": "accumulate"}, "data_policy"),
    ({"distill": "policy_gradient", "formats": ["cot", "direct"]}, "formats"),
    ({"distill": "policy_gradient", "amplify": "decompose"}, "amplify"),
    ({"distill": "policy_gradient", "temperature": 0}, "temperature"),
    ({"distill": "policy_gradient", "reward": "verifer"}, "verifier"),
    ({"distill": "policy_gradient", "reward": "majority", "reward_args": {"flip": 0.1}}, "takes no settings"),
    ({"distill": "policy_gradient", "reward": "noisy_verifier", "reward_args": {"flip": 2}}, "reward_args: flip"),
    ({"reward": "verifier"}, "reward: used only by distill"),
    ({"kl_beta": 0.1}, "kl_beta: used only by distill"),
])
def test_the_config_refuses_what_policy_gradient_cannot_combine_with(loop, fragment):
    with pytest.raises(ValueError, match=fragment):
        LoopConfig(**loop)


# ---------------------------------------------------------------- in the loop


def test_a_run_records_rewards_and_advantages_and_trains_on_the_informative_samples(tmp_path):
    cfg = tiny_run_config(rounds=1, distill="policy_gradient", reward="majority", lr=3e-4)
    cfg = cfg.model_copy(update={"base": cfg.base.model_copy(update={"steps": 150})})  # answers that parse
    store = run_loop(cfg, tmp_path / "run", None)
    recorded = [json.loads(line) for line in (store.round_dir(0) / "selected.jsonl").read_text().splitlines()]
    samples = (store.round_dir(0) / "samples.jsonl").read_text().splitlines()
    assert len(recorded) == len(samples) == 24 * 4
    assert {r["reward"] for r in recorded} == {0.0, 1.0}
    informative = sum(r["advantage"] != 0 for r in recorded)
    training_record = store.read_round(1).training
    assert informative > 0 and training_record["examples"] == informative
    assert training_record["examples_zero_advantage"] == len(recorded) - informative
    view = RunView(store.root)
    assert len(view.selected(0)) == sum(r["advantage"] > 0 for r in recorded)  # probes read the pushed-up rows
    rewards = view.rewards(0)
    assert len(rewards) == 24 and rewards["add:" + recorded[0]["question_id"][4:]] >= 0
    collapse = get_probe("attractor.collapse_step")().measure(view)[0]
    assert collapse.details["proxy"] == "reward"  # the recorded reward, not the vote share


def test_a_backend_without_the_update_is_refused_before_work(tmp_path, monkeypatch):
    monkeypatch.delattr(TinyModel, "policy_update")
    cfg = tiny_run_config(rounds=1, distill="policy_gradient")
    with pytest.raises(RunError, match="needs a model with policy_update"):
        run_loop(cfg, tmp_path / "run", None)
