"""The training core every torch backend shares: step counts, the learning-rate schedule, completion-only
labels, batches and micro-batches of (prompt, completion) pairs, teacher-forced log-probs, and the AdamW loop.

A backend supplies only its torch module and an `Encode`: how its tokenizer turns prompts and completions
into a `Batch` (via `completion_batch`). Everything numeric is here, so `tiny` and `hf` train and score the
same way given the same tokens, and a third backend gets both by writing an encoder.

Rows are right-padded: in a causal model, pads after a row's end cannot change the positions before it, so no
attention mask is needed (`Batch.mask` None, as the tiny backend encodes); the hf backend passes one anyway,
since a model loaded from any directory may expect it. Prompt and pad positions carry the IGNORE label.

The tiny backend's numbers (the shipped suites' gates) were measured with this code's operations in this order:
one seeded shuffle per epoch, the loss as transformers computes a causal LM's own loss (see `completion_loss`),
AdamW betas 0.9/0.95 and weight decay 0.01, gradients clipped to norm 1. Changing any of it changes them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from harness.models.base import TrainStats

IGNORE = -100  # the label of a position that is not trained on (torch's cross_entropy ignore_index default)


def epoch_steps(n_pairs: float, epochs: float, batch_size: int) -> int:
    """Optimizer steps for `epochs` passes over `n_pairs` pairs in batches of `batch_size`: at least 1 when
    there are pairs, 0 when there are none. `n_pairs` may be an expected count (harness.app.cost estimates)."""
    return max(1, math.ceil(n_pairs * epochs / batch_size)) if n_pairs else 0


@dataclass(frozen=True)
class Schedule:
    """The learning rate at each step: linear warmup over `warmup` steps, then constant or cosine decay to
    `min_ratio` x lr at `steps`."""

    lr: float
    steps: int
    warmup: int = 0
    kind: str = "constant"  # "constant" or "cosine"
    min_ratio: float = 0.1

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.kind == "constant":
            return self.lr
        t = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


class Batch(NamedTuple):
    """Right-padded rows of prompt + completion tokens."""

    ids: torch.Tensor  # [N, L] input ids, pad after each row's end
    labels: torch.Tensor  # [N, L] the completion's tokens where they stand, IGNORE on the prompt and padding
    mask: torch.Tensor | None  # [N, L] attention mask (1 on tokens), or None: the model is given none


# (prompts, completions, add_eos per row) -> Batch: a backend's tokenization, the only part the core lacks
Encode = Callable[[list[str], list[str], list[bool]], Batch]
OnStep = Callable[[int, float], bool]  # (step, loss) after each step -> True to stop training there


def completion_batch(rows: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, *, mask: bool = False,
                     device: torch.device | None = None) -> Batch:
    """A Batch of (head, tail) token rows: head is the context (bos, prompt, chat template), tail what is
    trained on or scored (the completion, and eos when it is part of it). Labels cover the tail only."""
    width = max(len(head) + len(tail) for head, tail in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long) if mask else None
    for r, (head, tail) in enumerate(rows):
        n = len(head) + len(tail)
        ids[r, :n] = torch.tensor([*head, *tail])
        labels[r, :n] = torch.tensor([IGNORE] * len(head) + list(tail))
        if attention is not None:
            attention[r, :n] = 1
    if device is not None:
        ids, labels = ids.to(device), labels.to(device)
        attention = attention.to(device) if attention is not None else None
    return Batch(ids, labels, attention)


def n_labelled(batch: Batch) -> int:
    """Positions a loss or a score covers: labelled tokens after the first (nothing predicts position 0)."""
    return int((batch.labels[:, 1:] != IGNORE).sum())


def _logits(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return model(input_ids=batch.ids, attention_mask=batch.mask).logits


def token_logprobs(model: torch.nn.Module, batch: Batch, banned: Sequence[int] = (), *,
                   temperature: float = 1.0) -> torch.Tensor:
    """Log-prob of each labelled next token, 0 where unlabelled: [N, L-1]. `banned` ids are masked out of the
    distribution, as the backends' samplers mask them, so scores and sampled log-probs agree. A temperature
    other than 1 scores the distribution sampled at it (logits / temperature; policy-gradient updates)."""
    logits = _logits(model, batch)[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    if banned:
        logits[..., list(banned)] = -torch.inf
    target = batch.labels[:, 1:]
    logp = torch.log_softmax(logits, dim=-1).gather(2, target.clamp(min=0)[..., None]).squeeze(2)
    return torch.where(target != IGNORE, logp, 0.0)


@torch.inference_mode()
def score(model: torch.nn.Module, encode: Encode, prompts: list[str], completions: list[str],
          add_eos: bool | list[bool] = True, *, batch_size: int, banned: Sequence[int] = ()
          ) -> list[tuple[float, int]]:
    """ModelBackend.score: (sum log-prob, token count) of each completion given its prompt."""
    eos = [add_eos] * len(prompts) if isinstance(add_eos, bool) else list(add_eos)
    if not (len(prompts) == len(completions) == len(eos)):
        raise ValueError("prompts, completions and add_eos must have the same length")
    model.eval()
    out: list[tuple[float, int]] = []
    for s in range(0, len(prompts), batch_size):
        batch = encode(prompts[s:s + batch_size], completions[s:s + batch_size], eos[s:s + batch_size])
        lp = token_logprobs(model, batch, banned).double()
        counts = (batch.labels[:, 1:] != IGNORE).sum(1)
        out += [(float(v), int(n)) for v, n in zip(lp.sum(1).cpu(), counts.cpu())]
    return out


def completion_loss(model: torch.nn.Module, batch: Batch, n_tokens: int) -> torch.Tensor:
    """Summed next-token cross-entropy over the batch's labelled positions, divided by `n_tokens` (the whole
    step's count, so micro-batches add up to the step's mean). The layout is transformers' own causal-LM
    loss (labels shifted left against unshifted logits, the last position ignored): with one micro-batch it
    equals `model(input_ids, labels=...).loss` bit for bit, loss and gradients, which the tiny backend's
    recorded numbers were computed with (a slice of the logits instead rounds the loss differently)."""
    logits = _logits(model, batch).float()
    target = torch.nn.functional.pad(batch.labels, (0, 1), value=IGNORE)[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    return loss / max(1, n_tokens)


# (row indices, their micro-batch, the step's row count, the step's labelled-token count) -> the micro-batch's
# share of the step's loss: what an update minimises, the one thing `steps` does not fix
MicroLoss = Callable[[np.ndarray, Batch, int, int], torch.Tensor]


def steps(model: torch.nn.Module, n_rows: int, encode_rows: Callable[[np.ndarray], Batch], loss: MicroLoss,
          schedule: Schedule, batch_size: int, seed: int, *, micro_batch_size: int | None = None,
          weight_decay: float = 0.01, on_step: OnStep | None = None) -> TrainStats:
    """AdamW on the trainable parameters for `schedule.steps` steps over seeded shuffles of `n_rows` rows
    (encoded by `encode_rows(indices)`), minimising `loss`: the step loop of supervised and policy-gradient
    updates alike.

    Each epoch is one permutation, its last batch possibly short, so an epoch sees each row once. A batch
    splits into micro-batches of `micro_batch_size` rows (None: one), whose losses are normalised by the
    batch's row or token count, so accumulation changes no gradient. Gradients are clipped to norm 1.
    `on_step(step, loss)` runs after each step; True stops training there. The model is left in eval mode,
    also when a step raises.
    """
    if not n_rows:
        return TrainStats(steps=0, tokens=0, mean_loss=float("nan"), final_loss=float("nan"), seconds=0.0)
    torch.manual_seed(seed % 2**63)
    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]  # all, or a LoRA model's adapters
    opt = torch.optim.AdamW(params, lr=schedule(0), betas=(0.9, 0.95), weight_decay=weight_decay)
    micro = micro_batch_size or batch_size
    model.train()
    t0, tokens, losses, order = time.perf_counter(), 0, [], np.array([], dtype=np.int64)
    try:
        for step in range(schedule.steps):
            if len(order) == 0:  # a new epoch
                order = rng.permutation(n_rows)
            rows, order = order[:batch_size], order[batch_size:]
            for group in opt.param_groups:
                group["lr"] = schedule(step)
            parts = [rows[m:m + micro] for m in range(0, len(rows), micro)]
            batches = [encode_rows(part) for part in parts]
            n_tok = sum(n_labelled(b) for b in batches)
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for part, b in zip(parts, batches):
                part_loss = loss(part, b, len(rows), n_tok)
                part_loss.backward()
                total += float(part_loss.detach())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            tokens += n_tok
            losses.append(total)
            if on_step is not None and on_step(step, total):
                break
    finally:
        model.eval()
    return TrainStats(steps=len(losses), tokens=tokens, mean_loss=float(np.mean(losses)),
                      final_loss=float(np.mean(losses[-10:])), seconds=time.perf_counter() - t0)


def train(model: torch.nn.Module, encode: Encode, pairs: list[tuple[str, str]], schedule: Schedule,
          batch_size: int, seed: int, *, micro_batch_size: int | None = None, weight_decay: float = 0.01,
          on_step: OnStep | None = None) -> TrainStats:
    """`steps` on (prompt, completion) pairs, the loss on each completion and its eos only."""
    def encode_rows(rows: np.ndarray) -> Batch:
        return encode([pairs[i][0] for i in rows], [pairs[i][1] for i in rows], [True] * len(rows))

    return steps(model, len(pairs), encode_rows, lambda rows, b, n_rows, n_tok: completion_loss(model, b, n_tok),
                 schedule, batch_size, seed, micro_batch_size=micro_batch_size, weight_decay=weight_decay,
                 on_step=on_step)


def finetune(model: torch.nn.Module, encode: Encode, pairs: list[tuple[str, str]], *, lr: float, epochs: float,
             batch_size: int, seed: int, steps: int | None = None, on_step: OnStep | None = None,
             micro_batch_size: int | None = None) -> TrainStats:
    """ModelBackend.finetune for a torch causal LM: `train` at a constant `lr` for `steps` steps, or, when
    `steps` is None, the count `epochs` implies (`epoch_steps`); no pairs, no steps."""
    n = steps if steps is not None and pairs else epoch_steps(len(pairs), epochs, batch_size)
    return train(model, encode, pairs, Schedule(lr=lr, steps=n), batch_size, seed,
                 micro_batch_size=micro_batch_size, on_step=on_step)
