"""The model protocol every backend implements: sample, score, fine-tune, save, load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Completion:
    text: str
    sum_logprob: float  # log-probability under the model (temperature 1) of the generated tokens
    n_tokens: int  # generated tokens, the final eos included when it was produced
    finished: bool  # True when the model produced eos within the token budget


@dataclass(frozen=True)
class TrainStats:
    steps: int
    tokens: int
    mean_loss: float
    final_loss: float
    seconds: float


class ModelBackend(Protocol):
    def sample(self, prompts: list[str], k: int, temperature: float, max_new_tokens: int,
               seed: int) -> list[list[Completion]]:
        """k completions per prompt. temperature 0 decodes greedily."""

    def score(self, prompts: list[str], completions: list[str], add_eos: bool | list[bool] = True
              ) -> list[tuple[float, int]]:
        """(sum log-prob, token count) of each completion given its prompt."""

    def finetune(self, pairs: list[tuple[str, str]], *, lr: float, epochs: float, batch_size: int,
                 seed: int, steps: int | None = None) -> TrainStats:
        """AdamW on (prompt, completion) pairs, loss on the completion only; `steps`, when given, replaces
        the step count that `epochs` implies."""

    def save(self, directory: Path) -> None: ...
