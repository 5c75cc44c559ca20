"""Teacher-forced training and scoring over (prompt, completion) pairs, loss on the completion only.

Sequences are right-padded: in a causal model, pads after the end cannot change the positions before them,
so no attention mask is needed, and pad positions carry the ignore label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from harness.models.base import TrainStats
from harness.models.tiny.tokenizer import CharTokenizer

IGNORE = -100


def encode_pairs(tokenizer: CharTokenizer, prompts: list[str], completions: list[str],
                 add_eos: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """input ids [N, L] and labels [N, L]: bos + prompt + completion (+ eos), labels on the completion."""
    seqs, labels = [], []
    for p, c, e in zip(prompts, completions, add_eos):
        head = [tokenizer.bos_id, *tokenizer.encode(p)]
        tail = tokenizer.encode(c) + ([tokenizer.eos_id] if e else [])
        seqs.append(head + tail)
        labels.append([IGNORE] * len(head) + tail)
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tokenizer.pad_id, dtype=torch.long)
    lab = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for r, (s, l) in enumerate(zip(seqs, labels)):
        ids[r, : len(s)] = torch.tensor(s)
        lab[r, : len(l)] = torch.tensor(l)
    return ids, lab


def token_logprobs(model, ids: torch.Tensor, labels: torch.Tensor, banned: tuple[int, ...] = ()) -> torch.Tensor:
    """Log-prob of each labelled next token, 0 where unlabelled: [N, L-1]. `banned` ids are masked out of
    the distribution, as the sampler masks them, so scores and sampled log-probs agree."""
    logits = model(input_ids=ids).logits[:, :-1].float()
    logits[..., list(banned)] = -torch.inf
    target = labels[:, 1:]
    logp = torch.log_softmax(logits, dim=-1).gather(2, target.clamp(min=0)[..., None]).squeeze(2)
    return torch.where(target != IGNORE, logp, 0.0)


@torch.inference_mode()
def score(model, tokenizer: CharTokenizer, prompts: list[str], completions: list[str],
          add_eos: bool | list[bool] = True, batch_size: int = 256) -> list[tuple[float, int]]:
    eos = [add_eos] * len(prompts) if isinstance(add_eos, bool) else list(add_eos)
    if not (len(prompts) == len(completions) == len(eos)):
        raise ValueError("prompts, completions and add_eos must have the same length")
    model.eval()
    out: list[tuple[float, int]] = []
    for s in range(0, len(prompts), batch_size):
        ids, lab = encode_pairs(tokenizer, prompts[s:s + batch_size], completions[s:s + batch_size],
                                eos[s:s + batch_size])
        lp = token_logprobs(model, ids, lab, tokenizer.never_generated).double()
        counts = (lab[:, 1:] != IGNORE).sum(1)
        out += [(float(v), int(n)) for v, n in zip(lp.sum(1), counts)]
    return out


@dataclass(frozen=True)
class Schedule:
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


def train(model, tokenizer: CharTokenizer, pairs: list[tuple[str, str]], schedule: Schedule, batch_size: int,
          seed: int, weight_decay: float = 0.01, on_step: Callable[[int, float], bool] | None = None
          ) -> TrainStats:
    """AdamW for `schedule.steps` steps over seeded shuffles of `pairs`.

    `on_step(step, loss)` runs after each step; returning True stops training early.
    """
    if not pairs:
        return TrainStats(steps=0, tokens=0, mean_loss=float("nan"), final_loss=float("nan"), seconds=0.0)
    torch.manual_seed(seed % 2**63)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=schedule(0), betas=(0.9, 0.95), weight_decay=weight_decay)
    model.train()
    t0, tokens, losses, order = time.perf_counter(), 0, [], np.array([], dtype=np.int64)
    for step in range(schedule.steps):
        if len(order) == 0:  # a new epoch; its last batch may be short, so each epoch sees each pair once
            order = rng.permutation(len(pairs))
        batch, order = order[:batch_size], order[batch_size:]
        ids, lab = encode_pairs(tokenizer, [pairs[i][0] for i in batch], [pairs[i][1] for i in batch],
                                [True] * len(batch))
        for group in opt.param_groups:
            group["lr"] = schedule(step)
        loss = model(input_ids=ids, labels=lab).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int((lab != IGNORE).sum())
        losses.append(float(loss.detach()))
        if on_step is not None and on_step(step, losses[-1]):
            break
    model.eval()
    return TrainStats(steps=len(losses), tokens=tokens, mean_loss=float(np.mean(losses)),
                      final_loss=float(np.mean(losses[-10:])), seconds=time.perf_counter() - t0)


def epoch_steps(n_pairs: int, epochs: float, batch_size: int) -> int:
    return max(1, math.ceil(n_pairs * epochs / batch_size)) if n_pairs else 0
