"""Throughputs of the embedded (tiny) backend at default sizes, in the units `harness.app.cost` counts:

- sampling: sequence slots per second, one slot = one row x one decoding step (eos masked, so every row
  runs the full `--new-tokens`: the upper bound the cost estimate assumes);
- training: padded positions per second (batch x width of bos + prompt + completion + eos), forward,
  backward and AdamW step; base training (batch 64 of base-train examples) and a round's fine-tune
  (batch 32);
- scoring: padded positions per second of teacher-forced scoring (reference texts, judge).

    OMP_NUM_THREADS=1 python benchmarks/bench_cost.py [--prompts 250] [--k 8] [--new-tokens 40] [--steps 30]

An untrained default-size model computes exactly as fast per position as a trained one.
"""

from __future__ import annotations

import argparse
import time

import torch

from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain
from harness.models.tiny import training
from harness.models.tiny.model import TinyConfig, TinyModel


def _positions(tok, pairs) -> int:
    return len(pairs) * max(len(tok.encode(p)) + len(tok.encode(c)) + 2 for p, c in pairs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=250)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)

    model = TinyModel.initialise(TinyConfig(), seed=0)
    tok = model.tokenizer
    domain = ArithmeticDomain(ArithmeticConfig(), seed=0)
    splits = domain.splits()
    prompts = [q.prompt for q in splits.pool[: args.prompts]]

    tok.never_generated = (*tok.never_generated, tok.eos_id)  # fixed-length decoding
    t0 = time.perf_counter()
    model.sample(prompts, k=args.k, temperature=0.8, max_new_tokens=args.new_tokens, seed=0)
    slots = len(prompts) * args.k * args.new_tokens
    sample_rate = slots / (time.perf_counter() - t0)
    tok.never_generated = tok.never_generated[:-1]

    pairs = [(e.question.prompt, e.completion) for e in splits.base_train]
    rates = {}
    for label, batch in (("base training (batch 64)", 64), ("fine-tune (batch 32)", 32)):
        positions, t0 = 0, time.perf_counter()
        for step in range(args.steps):
            chunk = pairs[step * batch:(step + 1) * batch]
            positions += _positions(tok, chunk)
        stats = training.train(model.model, tok, pairs[: args.steps * batch],
                               training.Schedule(lr=1e-4, steps=args.steps), batch, seed=0)
        rates[label] = (positions / stats.seconds, stats.tokens / stats.seconds)

    ref = pairs[:2000]
    t0 = time.perf_counter()
    training.score(model.model, tok, [p for p, _ in ref], [c for _, c in ref])
    score_rate = sum(_positions(tok, ref[s:s + 256]) for s in range(0, len(ref), 256)) / (time.perf_counter() - t0)

    print(f"model {model.n_parameters / 1e6:.2f}M params, 1 thread")
    print(f"sampling   {sample_rate:>9.0f} slots/s   ({len(prompts)} prompts x {args.k} x {args.new_tokens} tokens)")
    for label, (pos, lab) in rates.items():
        print(f"{label:<26} {pos:>9.0f} positions/s   ({lab:.0f} completion tokens/s)")
    print(f"scoring    {score_rate:>9.0f} positions/s   ({len(ref)} pairs, batch 256)")


if __name__ == "__main__":
    main()
