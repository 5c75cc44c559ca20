"""A tiny randomly initialised Llama with a character-level tokenizer, saved as a transformers directory:
what the `hf` backend's tests (and anyone without a pretrained model at hand) load. Nothing is downloaded."""

from __future__ import annotations

import string
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

# A ChatML-style template (SmolLM2 uses the same markers), for the chat-template path.
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def char_tokenizer(chat: bool = False) -> PreTrainedTokenizerFast:
    """One token per printable ASCII character (BPE without merges, so every text has one encoding), bos
    prepended to plain prompts as Llama tokenizers do; with `chat`, ChatML markers and template, eos <|im_end|>."""
    from tokenizers import Tokenizer, decoders, models, processors

    specials = ["<pad>", "<s>", "<unk>"] + (["<|im_start|>", "<|im_end|>"] if chat else ["</s>"])
    chars = "\n" + "".join(c for c in string.printable if c.isprintable())
    vocab = {t: i for i, t in enumerate(specials + list(chars))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<|im_end|>" if chat else "</s>",
                                   additional_special_tokens=specials[3:4] if chat else None)
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_model_dir(directory: Path, chat: bool = False, seed: int = 0, hidden_size: int = 32,
                        num_layers: int = 2) -> Path:
    """Write a random tiny LlamaForCausalLM and its tokenizer to `directory` (save_pretrained)."""
    tokenizer = char_tokenizer(chat)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=num_layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True,
                         # 5x the default scale: frozen random embeddings at 0.02 leave LoRA no room to move
                         # the (tied) output logits, unlike a pretrained model's
                         initializer_range=0.1)
    model = LlamaForCausalLM(config)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
