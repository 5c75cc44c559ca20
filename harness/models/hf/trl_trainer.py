"""Fine-tuning through TRL's `SFTTrainer`, the `hf` backend's `trainer = "trl"` (pip install 'loopprobe[trl]').

The rows are the ones loopprobe's own core trains on (`HFModel._pairs`: prompt or chat turn, completion and
eos), handed to TRL as token ids with a `completion_mask`, so the loss covers the completion only, as it does
in the core. The optimisation matches the core's: AdamW with betas 0.9/0.95 and weight decay 0.01, a constant
learning rate, gradients clipped at norm 1, `batch_size` rows a step in micro-batches of
`train_micro_batch_size` (gradient accumulation), for the same number of steps. Activation checkpointing is
off, as in the core (TRL's default turns it on). A LoRA model trains only its adapters, as peft wrapped it.
What differs is TRL's own: its data order and its per-token loss normalisation across micro-batches. The
same (pairs, seed) therefore give other weights than the core gives, and a suite compares them as two
conditions, never as one.

`on_step(step, loss)` is called after every optimizer step, as the core calls it; returning True stops the
training there (the loop's failure checks use it).
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Callable
from typing import Any, cast

import torch

from harness.artifacts import RunError
from harness.models import training
from harness.models.base import TrainStats

EXTRA = "pip install 'loopprobe[trl]'"


def finetune_with_trl(model: torch.nn.Module, tokenizer, encode: training.Encode, pairs: list[tuple[str, str]], *,
                      lr: float, epochs: float, batch_size: int, seed: int, steps: int | None,
                      on_step: Callable[[int, float], bool] | None, micro_batch_size: int) -> TrainStats:
    try:
        from datasets import Dataset
        from transformers import TrainerCallback
        from trl import SFTConfig, SFTTrainer
    except ImportError:
        raise RunError(f'model.trainer = "trl" needs TRL: {EXTRA}') from None
    n_steps = steps if steps is not None and pairs else training.epoch_steps(len(pairs), epochs, batch_size)
    if n_steps == 0:
        return TrainStats(steps=0, tokens=0, mean_loss=float("nan"), final_loss=float("nan"), seconds=0.0)
    batch = encode([p for p, _ in pairs], [c for _, c in pairs], [True] * len(pairs))
    rows = []
    mask = batch.mask if batch.mask is not None else torch.ones_like(batch.ids)
    for ids, labels, on in zip(batch.ids.tolist(), batch.labels.tolist(), mask.tolist()):
        n = sum(on)
        rows.append({"input_ids": ids[:n], "completion_mask": [int(y != training.IGNORE) for y in labels[:n]]})
    micro = min(micro_batch_size, batch_size)
    losses: list[float] = []

    class Steps(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))
                if on_step is not None and on_step(state.global_step - 1, losses[-1]):
                    control.should_training_stop = True

    device = next(model.parameters()).device
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loopprobe-trl-") as out:
        config = SFTConfig(
            output_dir=out, per_device_train_batch_size=micro, gradient_accumulation_steps=math.ceil(batch_size / micro),
            max_steps=n_steps, learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, adam_beta1=0.9,
            adam_beta2=0.95, weight_decay=0.01, max_grad_norm=1.0, optim="adamw_torch", completion_only_loss=True,
            max_length=None, seed=seed, data_seed=seed, logging_steps=1, save_strategy="no", report_to=[],
            use_cpu=device.type == "cpu", bf16=False, fp16=False, activation_checkpointing=False,
            dataloader_num_workers=0, disable_tqdm=True, include_num_input_tokens_seen="non_padding")
        trainer = SFTTrainer(model=cast(Any, model), args=config, train_dataset=Dataset.from_list(rows),
                             processing_class=copy.deepcopy(tokenizer),  # TRL may set its pad token: not ours
                             callbacks=[Steps()])
        trainer.train()
    model.eval()
    return TrainStats(steps=len(losses), tokens=int(trainer.state.num_input_tokens_seen), mean_loss=float(sum(losses) / max(len(losses), 1)),
                      final_loss=float(sum(losses[-10:]) / max(len(losses[-10:]), 1)),
                      seconds=time.perf_counter() - t0)
