"""The embedded default backend: a small Llama-architecture transformers model over characters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from harness.models import policy_gradient, training
from harness.models.base import Completion, PolicySettings, Rollout, TrainStats
from harness.models.tiny import sampler
from harness.models.tiny import training as tiny_training
from harness.models.tiny.config import TinyConfig
from harness.models.tiny.tokenizer import CharTokenizer

__all__ = ["TinyConfig", "TinyModel"]  # TinyConfig lives in tiny.config (torch-free); importers here keep working


class TinyModel:
    """A `LlamaForCausalLM` with a character tokenizer, implementing `harness.models.base.ModelBackend`."""

    def __init__(self, model: LlamaForCausalLM, tokenizer: CharTokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def initialise(cls, config: TinyConfig, seed: int) -> TinyModel:
        tokenizer = CharTokenizer()
        torch.manual_seed(seed % 2**63)
        return cls(LlamaForCausalLM(config.llama_config(tokenizer.vocab_size)), tokenizer)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def sample(self, prompts: list[str], k: int, temperature: float, max_new_tokens: int, seed: int,
               batch_size: int | None = None, progress: Callable[[int], None] | None = None,
               use_cache: bool = True) -> list[list[Completion]]:
        """`use_cache=False` recomputes every step from the whole sequence (what a test compares against)."""
        return sampler.sample(self.model, self.tokenizer, prompts, k, temperature, max_new_tokens, seed,
                              batch_size=batch_size or 512, use_cache=use_cache, progress=progress)

    def score(self, prompts: list[str], completions: list[str], add_eos: bool | list[bool] = True
              ) -> list[tuple[float, int]]:
        return tiny_training.score(self.model, self.tokenizer, prompts, completions, add_eos)

    def finetune(self, pairs: list[tuple[str, str]], *, lr: float, epochs: float, batch_size: int, seed: int,
                 steps: int | None = None, on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        return training.finetune(self.model, tiny_training.encoder(self.tokenizer), pairs, lr=lr, epochs=epochs,
                                 batch_size=batch_size, seed=seed, steps=steps, on_step=on_step)

    def policy_update(self, rollouts: list[Rollout], settings: PolicySettings, *, lr: float, epochs: float,
                      batch_size: int, seed: int, steps: int | None = None, reference: TinyModel | None = None,
                      on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        return policy_gradient.policy_update(
            self.model, tiny_training.encoder(self.tokenizer), rollouts, settings, lr=lr, epochs=epochs,
            batch_size=batch_size, seed=seed, steps=steps, reference=reference.model if reference else None,
            banned=self.tokenizer.never_generated, on_step=on_step)

    def self_certainty(self, prompts: list[str], completions: list[str]) -> list[float]:
        return policy_gradient.self_certainty(self.model, tiny_training.encoder(self.tokenizer), prompts, completions,
                                              batch_size=256, banned=self.tokenizer.never_generated)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save(directory)

    @classmethod
    def load(cls, directory: Path) -> TinyModel:
        model = LlamaForCausalLM.from_pretrained(Path(directory), dtype=torch.float32)
        return cls(model, CharTokenizer.load(directory))
