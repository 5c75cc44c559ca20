"""The `hf` backend: any local transformers causal-LM directory (full fine-tune or LoRA), and GGUF import."""

from harness.models.hf.config import HFConfig, LoraConfig

__all__ = ["HFConfig", "LoraConfig"]
