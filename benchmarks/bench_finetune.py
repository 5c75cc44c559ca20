"""Fine-tuning throughput, side by side in one process: the loop's own training core
(`harness.models.training.train`, what every round's distillation runs) against TRL's `SFTTrainer` with a
completion-only loss, on the same data, from the same weights (the shipped default base), 1 torch thread.

    pip install 'loopprobe[trl]'   # trl, with datasets
    python benchmarks/bench_finetune.py [--pairs 2048] [--batch-size 32] [--epochs 1]

The data: (prompt, chain-of-thought completion) pairs of the arithmetic domain's base-train split, encoded
once by the tiny backend (bos + prompt + completion + eos; loss on the completion and eos) and handed to both
trainers as token ids, so both see the same rows. Both use AdamW (betas 0.9/0.95, weight decay 0.01), a constant
learning rate, gradient clipping at 1, no warmup and no activation checkpointing (TRL's default is on). Tokens/s counts every non-pad position a step
processes, which is the same count for both. TRL's time is its `train()` call; building the trainer and
its dataset is reported apart. It also prints each trainer's fp32 FLOP rate (6 x params x tokens) as a share of
one core's GEMM rate, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from _machine import gemm_rate  # benchmarks/_machine.py (the script's folder is on sys.path)

from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain
from harness.models import training
from harness.models.tiny import training as tiny_training
from harness.models.tiny.model import TinyModel
from harness.models.tiny.pretrain import SHIPPED_DIR


def trl_tokenizer(model: TinyModel):
    """A transformers tokenizer over the character vocabulary: TRL asks one for its pad token."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = model.tokenizer
    vocab = {"<pad>": tok.pad_id, "<bos>": tok.bos_id, "<eos>": tok.eos_id, "<unk>": tok.unk_id,
             **{c: tok.encode(c)[0] for c in tok.chars}}
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
                                   pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")
    assert fast.pad_token_id == tok.pad_id
    return fast


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    try:
        import datasets
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer
    except ImportError:
        raise SystemExit("this benchmark needs TRL: pip install 'loopprobe[trl]'") from None

    datasets.disable_progress_bars()
    entry = next(p for p in SHIPPED_DIR.iterdir() if not p.name.startswith("."))
    splits = ArithmeticDomain(ArithmeticConfig(), seed=0).splits()
    pairs = [(e.question.prompt, e.completion) for e in splits.base_train[:args.pairs]]
    ours_model = TinyModel.load(entry)
    batch = tiny_training.encode_pairs(ours_model.tokenizer, [p for p, _ in pairs], [c for _, c in pairs],
                                       [True] * len(pairs))
    rows = []
    for ids, labels in zip(batch.ids.tolist(), batch.labels.tolist()):
        n = sum(1 for t in ids if t != ours_model.tokenizer.pad_id)
        rows.append({"input_ids": ids[:n], "completion_mask": [int(x != training.IGNORE) for x in labels[:n]]})
    positions = sum(len(r["input_ids"]) for r in rows) * args.epochs
    n_params = ours_model.n_parameters

    t0 = time.perf_counter()
    stats = training.train(ours_model.model, tiny_training.encoder(ours_model.tokenizer), pairs,
                           training.Schedule(lr=args.lr, steps=training.epoch_steps(len(pairs), args.epochs,
                                                                                   args.batch_size)),
                           args.batch_size, seed=0)
    ours = time.perf_counter() - t0

    trl_model = TinyModel.load(entry)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        config = SFTConfig(output_dir=out, per_device_train_batch_size=args.batch_size,
                           num_train_epochs=args.epochs, learning_rate=args.lr, lr_scheduler_type="constant",
                           warmup_steps=0, adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.01, max_grad_norm=1.0,
                           optim="adamw_torch", completion_only_loss=True, max_length=None, seed=0,
                           logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=True,
                           dataloader_num_workers=0, disable_tqdm=True, bf16=False, fp16=False,
                           activation_checkpointing=False)  # TRL's default recomputes activations: ours keeps them
        trainer = SFTTrainer(model=trl_model.model, args=config, train_dataset=Dataset.from_list(rows),
                             processing_class=trl_tokenizer(trl_model))
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = trainer.train()
        theirs = time.perf_counter() - t0
    peak = gemm_rate()
    print(f"{len(pairs)} pairs x {args.epochs:g} epoch(s), batch {args.batch_size}: {positions:.0f} positions, "
          f"model {n_params / 1e6:.2f}M params, 1 thread; one core's GEMM: {peak / 1e9:.0f} GFLOP/s")
    for name, seconds, steps in (("ours (harness.models.training)", ours, stats.steps),
                                 ("TRL SFTTrainer", theirs, result.global_step)):
        rate = positions / seconds
        print(f"  {name:<32} {rate:>8.0f} tok/s  {steps} steps  {seconds:6.1f} s  "
              f"{6 * n_params * rate / peak:5.1%} of GEMM")
    print(f"  ours / TRL: {theirs / ours:.2f}x   (TRL's trainer and dataset set-up: {setup:.1f} s, not counted)")
    print(f"  mean training loss: ours {stats.mean_loss:.3f}, TRL {result.training_loss:.3f} (same data, other "
          "batch orders)")


if __name__ == "__main__":
    main()
