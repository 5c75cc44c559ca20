"""The tiny backend's half of training and scoring: how its character tokenizer encodes (prompt, completion)
rows. The schedule, the loss, the step loop and scoring are `harness.models.training`'s, shared with `hf`.

A row is bos + prompt + completion (+ eos), right-padded, with no attention mask (see harness.models.training).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.models import training
from harness.models.base import TrainStats
from harness.models.tiny.tokenizer import CharTokenizer
from harness.models.training import IGNORE, Batch, Encode, Schedule, epoch_steps

# IGNORE, Schedule and epoch_steps are re-exported for code that imported them from here before the shared
# core existed (benchmarks/bench_cost.py).
__all__ = ["IGNORE", "Batch", "Schedule", "encode_pairs", "encoder", "epoch_steps", "score", "train"]


def encode_pairs(tokenizer: CharTokenizer, prompts: list[str], completions: list[str],
                 add_eos: list[bool]) -> Batch:
    """bos + prompt + completion (+ eos) rows, labels on the completion (and eos)."""
    return training.completion_batch(
        [([tokenizer.bos_id, *tokenizer.encode(p)], tokenizer.encode(c) + ([tokenizer.eos_id] if e else []))
         for p, c, e in zip(prompts, completions, add_eos)], tokenizer.pad_id)


def encoder(tokenizer: CharTokenizer) -> Encode:
    return lambda prompts, completions, add_eos: encode_pairs(tokenizer, prompts, completions, add_eos)


def score(model: torch.nn.Module, tokenizer: CharTokenizer, prompts: list[str], completions: list[str],
          add_eos: bool | list[bool] = True, batch_size: int = 256) -> list[tuple[float, int]]:
    return training.score(model, encoder(tokenizer), prompts, completions, add_eos, batch_size=batch_size,
                          banned=tokenizer.never_generated)


def train(model: torch.nn.Module, tokenizer: CharTokenizer, pairs: list[tuple[str, str]], schedule: Schedule,
          batch_size: int, seed: int, weight_decay: float = 0.01,
          on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
    """`harness.models.training.train` on the tiny tokenizer's rows, each batch in one piece."""
    return training.train(model, encoder(tokenizer), pairs, schedule, batch_size, seed, weight_decay=weight_decay,
                          on_step=on_step)
