"""Sampler throughput, measured side by side in one process: our KV-cache sampler vs no cache vs
transformers' `generate`, and 1 vs 2 torch threads.

    python benchmarks/bench_sampler.py [--prompts 256] [--k 8] [--new-tokens 32]

Every variant decodes the same prompts for exactly --new-tokens tokens (eos is never produced: the untrained
default-size model has its eos logit masked), so tokens/s compare like for like.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import GenerationConfig

from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain
from harness.models.tiny.model import TinyConfig, TinyModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()

    model = TinyModel.initialise(TinyConfig(), seed=0)
    tok = model.tokenizer
    tok.never_generated = (*tok.never_generated, tok.eos_id)  # fixed-length decoding for a fair comparison
    pool = ArithmeticDomain(ArithmeticConfig(pool_size=args.prompts), seed=0).splits().pool
    prompts = [q.prompt for q in pool]
    n_tokens = len(prompts) * args.k * args.new_tokens

    def ours(use_cache: bool) -> None:
        model.sample(prompts, k=args.k, temperature=1.0, max_new_tokens=args.new_tokens, seed=0,
                     use_cache=use_cache)

    def generate() -> None:
        # transformers' own loop, batched with left padding and an attention mask.
        enc = [[tok.bos_id, *tok.encode(p)] for p in prompts for _ in range(args.k)]
        width = max(map(len, enc))
        for s in range(0, len(enc), 512):
            chunk = enc[s:s + 512]
            ids = torch.tensor([[tok.pad_id] * (width - len(e)) + e for e in chunk])
            mask = (torch.arange(width)[None] >= torch.tensor([width - len(e) for e in chunk])[:, None]).long()
            model.model.generate(ids, attention_mask=mask, generation_config=GenerationConfig(
                do_sample=True, temperature=1.0, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                pad_token_id=tok.pad_id, eos_token_id=tok.eos_id, suppress_tokens=list(tok.never_generated)))

    variants = [("ours, KV cache, 1 thread", 1, lambda: ours(True)),
                ("ours, KV cache, 2 threads", 2, lambda: ours(True)),
                ("transformers generate, 1 thread", 1, generate),
                ("ours, no cache, 1 thread", 1, lambda: ours(False))]
    results = {}
    for name, threads, fn in variants:
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        with torch.inference_mode():
            fn()
        results[name] = n_tokens / (time.perf_counter() - t0)
    base = results[variants[0][0]]
    print(f"{len(prompts)} prompts x {args.k} samples x {args.new_tokens} tokens, model "
          f"{model.n_parameters / 1e6:.2f}M params")
    for name, tps in results.items():
        print(f"  {name:<34} {tps:>9.0f} tok/s   ratio to ours/1 thread: {tps / base:5.2f}")


if __name__ == "__main__":
    main()
