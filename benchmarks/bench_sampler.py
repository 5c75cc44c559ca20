"""Sampler throughput, side by side in one process, 1 torch thread: our sampler (`harness.models.tiny.sampler`)
against transformers' `generate` on the same model and prompts, on two workloads:

- the loop's real workload: the shipped default base (trained), the default pool's prompts, k = 8, T = 0.8,
  eos on, at most 40 new tokens (the loop's defaults). Tokens are the completions' own (through eos), counted
  the same way for both;
- fixed-length decoding: the same prompts with eos masked, so every row decodes exactly --new-tokens tokens.

"ours, no compaction" is ours with every row decoded to its batch's end (the sampler before finished rows
left the batch); the benchmark asserts its samples are identical. Each line prints tokens/s, the ratio to `generate`, and the share of one core's fp32 GEMM rate (measured in this
run at the model's shapes) that the model's matmul FLOPs (2 x parameters per token, attention not counted) reach.

    python benchmarks/bench_sampler.py [--prompts 500] [--k 8] [--new-tokens 40]
"""

from __future__ import annotations

import argparse
import time

import torch
from _machine import gemm_rate  # benchmarks/_machine.py (the script's folder is on sys.path)
from transformers import GenerationConfig

from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain
from harness.models.tiny import sampler
from harness.models.tiny.model import TinyModel
from harness.models.tiny.pretrain import SHIPPED_DIR


def generate_tokens(model: TinyModel, prompts: list[str], k: int, temperature: float, new_tokens: int,
                    banned: tuple[int, ...], batch_size: int = 512) -> int:
    """transformers' own loop, batched with left padding and an attention mask; returns tokens generated
    (through eos, none after it)."""
    tok = model.tokenizer
    enc = [[tok.bos_id, *tok.encode(p)] for p in prompts for _ in range(k)]
    total = 0
    for s in range(0, len(enc), batch_size):
        chunk = enc[s:s + batch_size]
        width = max(map(len, chunk))
        ids = torch.tensor([[tok.pad_id] * (width - len(e)) + e for e in chunk])
        mask = (torch.arange(width)[None] >= torch.tensor([width - len(e) for e in chunk])[:, None]).long()
        out = model.model.generate(ids, attention_mask=mask, generation_config=GenerationConfig(
            do_sample=temperature > 0, temperature=temperature or None, max_new_tokens=new_tokens,
            pad_token_id=tok.pad_id, eos_token_id=tok.eos_id, suppress_tokens=list(banned), top_k=None, top_p=None))
        new = out[:, width:]
        ended = (new == tok.eos_id).int().cumsum(1)
        total += int(((ended == 0) | ((ended == 1) & (new == tok.eos_id))).sum())  # through the first eos
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=500)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)

    model = TinyModel.load(next(p for p in SHIPPED_DIR.iterdir() if not p.name.startswith(".")))
    tok = model.tokenizer
    pool = ArithmeticDomain(ArithmeticConfig(pool_size=args.prompts), seed=0).splits().pool
    prompts = [q.prompt for q in pool]
    peak, compact = gemm_rate(), sampler.COMPACT_SHARE
    flops_per_token = 2 * model.n_parameters
    print(f"{len(prompts)} prompts x {args.k} samples, at most {args.new_tokens} new tokens, shipped default base "
          f"({model.n_parameters / 1e6:.2f}M params), 1 thread; one core's GEMM: {peak / 1e9:.0f} GFLOP/s")

    for workload, temperature, fixed in (("loop's real workload (T = 0.8, eos on)", 0.8, False),
                                         ("fixed length (T = 1.0, eos masked)", 1.0, True)):
        saved = tok.never_generated
        if fixed:
            tok.never_generated = (*saved, tok.eos_id)
        try:
            rates = {}
            with torch.inference_mode():
                t0 = time.perf_counter()
                out = model.sample(prompts, k=args.k, temperature=temperature, max_new_tokens=args.new_tokens,
                                   seed=0)
                rates["ours"] = sum(c.n_tokens for cs in out for c in cs) / (time.perf_counter() - t0)
                sampler.COMPACT_SHARE = float("inf")  # every row decoded to the batch's end, as before
                t0 = time.perf_counter()
                same = model.sample(prompts, k=args.k, temperature=temperature, max_new_tokens=args.new_tokens,
                                    seed=0)
                rates["ours, no compaction"] = sum(c.n_tokens for cs in same for c in cs) / (time.perf_counter() - t0)
                sampler.COMPACT_SHARE = compact
                assert same == out, "compaction changed the samples"
                t0 = time.perf_counter()
                n = generate_tokens(model, prompts, args.k, temperature, args.new_tokens, tok.never_generated)
                rates["generate"] = n / (time.perf_counter() - t0)
        finally:
            tok.never_generated = saved
        mean_len = sum(c.n_tokens for cs in out for c in cs) / (len(prompts) * args.k)
        print(f"{workload}: mean completion {mean_len:.1f} tokens")
        for name, rate in rates.items():
            print(f"  {name:<20} {rate:>8.0f} tok/s   ratio to generate {rate / rates['generate']:5.2f}   "
                  f"{flops_per_token * rate / peak:5.1%} of GEMM")


if __name__ == "__main__":
    main()
