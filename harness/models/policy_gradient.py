"""Policy-gradient distillation, the training core's second update: GRPO's clipped surrogate over recorded
rollouts (each a sampled completion with its group-normalised advantage), and Intuitor's self-certainty.

The loss is TRL's `GRPOTrainer._compute_loss` (trl 1.16), term for term, so a test can compare the two on one
batch (tests/test_policy_gradient.py):

    ratio_t   = exp(logp_t - old_t)                        (old: the policy that sampled, before any step)
    surrogate = -min(ratio_t * A, clamp(ratio_t, 1 - eps, 1 + eps) * A)
    kl_t      = (exp(ref_t - logp_t) - (ref_t - logp_t) - 1) * ratio_t  (k3, times the ratio: TRL's default
                use_bias_correction_kl, the unbiased reverse-KL gradient; ref: the base model; when beta > 0)
    loss      = grpo: mean over rows of the row's token mean of (surrogate + beta * kl)
                dapo: sum over the step's tokens / the step's token count

Log-probs are taken at the sampling temperature (logits / T), as TRL takes them, with the tokens a backend
never samples masked out. Old and reference log-probs are computed once, before the first step, from the
model as it was given (the round that sampled the rollouts) and from the reference. Steps, batches, the
schedule and AdamW are the supervised core's (`harness.models.training`), so only the loss differs. A
rollout's tokens are its completion and eos, as a supervised row's (for the rare sample cut at
max_new_tokens, that eos was not sampled).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from harness.models import training
from harness.models.base import PolicySettings, Rollout, TrainStats
from harness.models.training import IGNORE, Batch, Encode, OnStep, Schedule, epoch_steps, token_logprobs


def surrogate_loss(logps: torch.Tensor, old: torch.Tensor, ref: torch.Tensor | None, mask: torch.Tensor,
                   advantages: torch.Tensor, settings: PolicySettings, n_rows: int, n_tokens: int) -> torch.Tensor:
    """The loss of one (micro-)batch, [N, T] per-token tensors and [N] advantages; `n_rows` and `n_tokens`
    are the whole step's, so micro-batches add up to the step's loss."""
    a = advantages[:, None]
    coef_1 = torch.exp(logps - old)
    coef_2 = torch.clamp(coef_1, 1 - settings.epsilon, 1 + settings.epsilon)
    per_token = -torch.min(coef_1 * a, coef_2 * a)
    if settings.beta != 0.0:
        assert ref is not None
        kl = (torch.exp(ref - logps) - (ref - logps) - 1) * coef_1  # TRL's default use_bias_correction_kl
        per_token = per_token + settings.beta * kl
    mask = mask.to(per_token.dtype)
    if settings.loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).sum() / max(1, n_rows)
    return (per_token * mask).sum() / max(1, n_tokens)


def _labelled(batch: Batch) -> torch.Tensor:
    return batch.labels[:, 1:] != IGNORE


@torch.inference_mode()
def _rollout_logps(model: torch.nn.Module, encode: Encode, rollouts: Sequence[Rollout], temperature: float,
                   banned: Sequence[int], batch_size: int) -> list[torch.Tensor]:
    """Each rollout's per-token log-probs over its completion (and eos), in order."""
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    for s in range(0, len(rollouts), batch_size):
        chunk = rollouts[s:s + batch_size]
        batch = encode([r.prompt for r in chunk], [r.completion for r in chunk], [True] * len(chunk))
        lp, mask = token_logprobs(model, batch, banned, temperature=temperature), _labelled(batch)
        out += [lp[i][mask[i]].detach().cpu() for i in range(len(chunk))]
    model.train(was_training)
    return out


def _scatter(values: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """[N, T] with each row's values at its labelled positions (right-padded rows keep them in order)."""
    out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    out[mask] = torch.cat(values).to(mask.device)
    return out


def policy_train(model: torch.nn.Module, encode: Encode, rollouts: Sequence[Rollout], settings: PolicySettings,
                 schedule: Schedule, batch_size: int, seed: int, *, reference: torch.nn.Module | None = None,
                 banned: Sequence[int] = (), micro_batch_size: int | None = None, weight_decay: float = 0.01,
                 score_batch_size: int = 256, on_step: OnStep | None = None) -> TrainStats:
    """AdamW on the clipped surrogate for `schedule.steps` steps over seeded shuffles of `rollouts` (the
    supervised core's batching: one permutation per epoch, micro-batches summing to the step's loss).
    `reference` is needed when `settings.beta` > 0. The model is left in eval mode."""
    if not rollouts:
        return TrainStats(steps=0, tokens=0, mean_loss=float("nan"), final_loss=float("nan"), seconds=0.0)
    if settings.beta != 0.0 and reference is None:
        raise ValueError("a KL penalty (beta > 0) needs a reference model")
    t0 = time.perf_counter()
    old = _rollout_logps(model, encode, rollouts, settings.temperature, banned, score_batch_size)
    ref = (_rollout_logps(reference, encode, rollouts, settings.temperature, banned, score_batch_size)
           if settings.beta != 0.0 and reference is not None else None)

    def encode_rows(rows: np.ndarray) -> Batch:
        return encode([rollouts[i].prompt for i in rows], [rollouts[i].completion for i in rows], [True] * len(rows))

    def loss(rows: np.ndarray, b: Batch, n_rows: int, n_tok: int) -> torch.Tensor:
        mask = _labelled(b)
        logps = token_logprobs(model, b, banned, temperature=settings.temperature)
        adv = torch.tensor([rollouts[i].advantage for i in rows], dtype=torch.float32, device=logps.device)
        return surrogate_loss(logps, _scatter([old[i] for i in rows], mask),
                              _scatter([ref[i] for i in rows], mask) if ref is not None else None,
                              mask, adv, settings, n_rows, n_tok)

    stats = training.steps(model, len(rollouts), encode_rows, loss, schedule, batch_size, seed,
                           micro_batch_size=micro_batch_size, weight_decay=weight_decay, on_step=on_step)
    return dataclasses.replace(stats, seconds=time.perf_counter() - t0)  # the old log-probs included


def policy_update(model: torch.nn.Module, encode: Encode, rollouts: Sequence[Rollout], settings: PolicySettings, *,
                  lr: float, epochs: float, batch_size: int, seed: int, steps: int | None = None,
                  reference: torch.nn.Module | None = None, banned: Sequence[int] = (),
                  micro_batch_size: int | None = None, on_step: OnStep | None = None) -> TrainStats:
    """`PolicyGradientBackend.policy_update` for a torch causal LM: `policy_train` at a constant `lr` for
    `steps` steps, or the count `epochs` implies over the rollouts."""
    n = steps if steps is not None and rollouts else epoch_steps(len(rollouts), epochs, batch_size)
    return policy_train(model, encode, rollouts, settings, Schedule(lr=lr, steps=n), batch_size, seed,
                        reference=reference, banned=banned, micro_batch_size=micro_batch_size, on_step=on_step)


@torch.inference_mode()
def self_certainty(model: torch.nn.Module, encode: Encode, prompts: list[str], completions: list[str], *,
                   batch_size: int, banned: Sequence[int] = ()) -> list[float]:
    """Intuitor's reward (Zhao et al. 2025): the mean over a completion's tokens (eos included) of
    KL(U || p), the divergence of the next-token distribution p from uniform over the tokens the model can
    sample (`banned` excluded): -log V - mean_j log p_j. Higher is more certain; 0 is uniform."""
    model.eval()
    out: list[float] = []
    for s in range(0, len(prompts), batch_size):
        batch = encode(prompts[s:s + batch_size], completions[s:s + batch_size], [True] * len(prompts[s:s + batch_size]))
        logits = model(input_ids=batch.ids, attention_mask=batch.mask).logits[:, :-1].float()
        allowed = torch.ones(logits.shape[-1], dtype=torch.bool, device=logits.device)
        if banned:
            allowed[list(banned)] = False
        logp = torch.log_softmax(logits.masked_fill(~allowed, -torch.inf), dim=-1)[..., allowed]
        v = int(allowed.sum())
        per_token = (-math.log(v) - logp.double().mean(-1))  # [N, L-1]
        mask = _labelled(batch)
        sums = torch.where(mask, per_token, 0.0).sum(-1)
        out += [float(t / max(1, int(n))) for t, n in zip(sums.cpu(), mask.sum(-1).cpu())]
    return out
