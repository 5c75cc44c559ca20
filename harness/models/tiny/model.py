"""The embedded default backend: a small Llama-architecture transformers model over characters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from transformers import LlamaConfig, LlamaForCausalLM

from harness.bounds import Int
from harness.models.base import Completion, TrainStats
from harness.models.tiny import sampler, training
from harness.models.tiny.tokenizer import CharTokenizer


class TinyConfig(BaseModel):
    """Architecture of the embedded model (about 1M parameters by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["tiny"] = "tiny"
    hidden_size: Int = Field(128, ge=8, le=4096, description="at most 4096; a multiple of num_heads whose "
                                                             "head size (hidden_size / num_heads) is even")
    num_layers: Int = Field(4, ge=1, le=64, description="at most 64")
    num_heads: Int = Field(4, ge=1, le=64, description="at most 64")
    intermediate_size: Int = Field(512, ge=8, le=16384, description="MLP width (at most 16384)")
    max_positions: Int = Field(128, ge=16, le=4096, description="context in tokens (characters), at most 4096: "
                                                               "bos + prompt + max_new_tokens + eos must fit")

    @model_validator(mode="after")
    def _heads(self) -> TinyConfig:
        head, rest = divmod(self.hidden_size, self.num_heads)
        if rest or head % 2:
            raise ValueError(f"hidden_size: {self.hidden_size} must be num_heads ({self.num_heads}) times an even "
                             f"head size (rotary embeddings rotate pairs of dimensions)")
        return self

    def llama_config(self, vocab_size: int) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers, num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads, max_position_embeddings=self.max_positions,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
            attn_implementation="sdpa",
        )


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
               batch_size: int = 512, progress: Callable[[int], None] | None = None,
               use_cache: bool = True) -> list[list[Completion]]:
        return sampler.sample(self.model, self.tokenizer, prompts, k, temperature, max_new_tokens, seed,
                              batch_size=batch_size, use_cache=use_cache, progress=progress)

    def score(self, prompts: list[str], completions: list[str], add_eos: bool | list[bool] = True
              ) -> list[tuple[float, int]]:
        return training.score(self.model, self.tokenizer, prompts, completions, add_eos)

    def finetune(self, pairs: list[tuple[str, str]], *, lr: float, epochs: float, batch_size: int, seed: int,
                 steps: int | None = None, on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        if steps is None or not pairs:
            steps = training.epoch_steps(len(pairs), epochs, batch_size)
        return training.train(self.model, self.tokenizer, pairs, training.Schedule(lr=lr, steps=steps),
                              batch_size, seed, on_step=on_step)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save(directory)

    @classmethod
    def load(cls, directory: Path) -> TinyModel:
        model = LlamaForCausalLM.from_pretrained(Path(directory), dtype=torch.float32)
        return cls(model, CharTokenizer.load(directory))
