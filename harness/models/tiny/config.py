"""Configuration of the embedded `tiny` backend (imports no torch: the backend registers without it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.bounds import Int

if TYPE_CHECKING:
    from transformers import LlamaConfig


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
        from transformers import LlamaConfig

        # attn_implementation is a PretrainedConfig keyword that LlamaConfig's typed signature omits
        return LlamaConfig(  # type: ignore[call-arg]
            vocab_size=vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers, num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads, max_position_embeddings=self.max_positions,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
            attn_implementation="sdpa",
        )
