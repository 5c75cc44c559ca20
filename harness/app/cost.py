"""What a suite will cost, estimated before any work, and the check that refuses one this machine cannot run.

`estimate(suite, seeds)` adds up every condition x seed: tokens to sample, tokens to train and score, peak
memory, disk, and seconds; `check(estimate, machine_limits(suite, out), force)` raises a one-line SuiteError
when the peak memory exceeds the machine's RAM, the disk use exceeds the free space where the output goes,
or the time exceeds the suite's `[suite] max_hours` (default 24), unless forced. `loopprobe run` and
`loopprobe verify-suites` print the estimate and run the check before they train or write anything.

The counts are upper bounds, on purpose: every sampled sequence runs to `max_new_tokens` (a batch runs as
long as its longest row, and a degenerate model babbles to the limit), every pool sample is kept for
training (and rationalized, under STaR), and the base model is trained unless it ships with the package (a
cold cache; conditions that share a base train it once when the cache is on). On the default model a
trained base ends most completions early, and the sampler drops finished rows, so the seconds come out above
a real run's: suites/smoke.toml is estimated at ~300 s and measured 93 s (its header).

Units: a *sampling slot* is one row x one decoding step; a *position* is one token of a padded batch in a
forward (scoring) or forward + backward + AdamW step (training).

Throughputs of the embedded (tiny) backend, measured on this project's machine kind (2-core AMD EPYC,
1 torch thread, the other core busy with another job, as the suites' runtimes were measured), default
model (1.06M parameters), 2026-12-03, with

    OMP_NUM_THREADS=1 python benchmarks/bench_cost.py

twice: sampling 5.9k and 6.1k slots/s (250 prompts x 8 x 40 tokens, eos masked); base training (batch 64)
5.4k and 5.5k positions/s; fine-tuning (batch 32) 5.3k and 5.7k positions/s; scoring 12.4k and 13.4k
positions/s. Rates scale with the model as parameters do (compute per position is ~2N or ~6N FLOPs).

The hf backend (pretrained models) is estimated from FLOPs: 2N per sampled or scored token, 6N per trained
token (4N with LoRA: no weight gradients for the frozen base), N from the model directory's config.json
or safetensors headers (or the GGUF's tensor shapes) without loading weights. Rates quoted from measurements
on this machine kind (the project's FINDINGS): fp32 GEMM ~100 GFLOP/s on one core (prompt prefill, scoring);
SmolLM2-135M decodes 67 tok/s at batch 8 (2 x 135M x 67 = 18 GFLOP/s) and a full fine-tune step of 8 x 128
tokens took 5.7 s quiet and 41 s under load (146 and 20 GFLOP/s; 50 GFLOP/s is used). On a GPU (the hf
device resolves to cuda): from the smollm2_lmsi header, an H200 sampled 160 x 8 x 96 tokens of a
SmolLM2-shaped model in ~14 s (2.4 TFLOP/s) and trained 4 steps of 16 in ~1 s (13 TFLOP/s).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from pydantic import ValidationError

from harness.app.suite import Suite, SuiteError
from harness.bounds import MAX_SEED
from harness.config import RunConfig, config_hash
from harness.models.sizes import (
    TINY_VOCAB,
    _hf_device,
    _imported_gguf,
    hf_size,
    tiny_parameters,
)
from harness.models.tiny.base_cache import base_key, is_shipped
from harness.models.training import epoch_steps

# tiny backend, measured (see the module docstring)
TINY_PARAMETERS = 1_062_528  # the default TinyConfig
TINY_SAMPLE_SLOTS_PER_S = 6000.0
TINY_TRAIN_POSITIONS_PER_S = 5400.0
TINY_SCORE_POSITIONS_PER_S = 12000.0
# hf backend, FLOP/s (see the module docstring)
CPU_FLOPS = {"decode": 18e9, "prefill": 100e9, "train": 50e9}
GPU_FLOPS = {"decode": 2.4e12, "prefill": 20e12, "train": 13e12}
CHARS_PER_TOKEN = 3.0  # a BPE tokenizer's prompt, conservatively (English text is ~4 characters a token)
PROCESS_BYTES = 500 * 2**20  # python + torch + transformers + the harness, measured ~400 MB RSS
SECONDS_PER_ROUND = 2.0  # writing and hashing a round's files, selection
SECONDS_PER_CONDITION = 10.0  # probes over a condition's runs
ROW_BYTES = 300  # a JSONL row's fields besides its prompt and completion


@dataclass(frozen=True)
class CostEstimate:
    """The estimated cost of a suite's runs (every condition x seed). None: unknown (an hf model whose size
    cannot be read before it is loaded)."""

    runs: int
    base_trainings: int
    sample_tokens: int  # sampling slots (rows x decoding steps), incl. inspect tasks
    train_tokens: int  # positions trained (base training and every round's fine-tune)
    score_tokens: int  # positions scored (reference texts, judge)
    parameters: int | None
    peak_memory_bytes: int | None
    disk_bytes: int
    seconds: float | None
    device: str = "cpu"
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        mem = "unknown" if self.peak_memory_bytes is None else _gb(self.peak_memory_bytes)
        time = "unknown time" if self.seconds is None else f"about {_duration(self.seconds)}"
        params = "" if self.parameters is None else f" of a {_count(self.parameters)}-parameter model"
        notes = "".join(f"; {n}" for n in self.notes)
        return (f"cost estimate (upper bound): {self.runs} run{'s' * (self.runs != 1)}, {_count(self.sample_tokens)} "
                f"tokens sampled, {_count(self.train_tokens)} trained{params}, peak memory {mem}, disk "
                f"{_gb(self.disk_bytes)}, {time} on {self.device.upper()}{notes}")


@dataclass(frozen=True)
class Limits:
    """What this machine and the suite allow."""

    memory_bytes: int
    disk_free_bytes: int
    disk_path: Path
    max_seconds: float


# ---------------------------------------------------------------- estimate


def estimate(suite: Suite, seeds: list[int] | None = None, cache: bool = True,
             cache_dir: Path | None = None) -> CostEstimate:
    """The cost of running `suite` for `seeds` (default: its own); `cache`: base models are cached, so runs
    that share a base train it once."""
    seeds = suite.suite.seeds if seeds is None else seeds
    for seed in seeds:  # the seed changes the draws, not the amounts: one config per condition is enough
        if not 0 <= seed <= MAX_SEED:
            raise SuiteError(f"seed {seed}: a seed is in [0, 2**32 - 1]")
    per_seed = len(seeds)
    try:
        configs = {c: suite.run_config(c, seeds[0] if seeds else 0) for c in suite.condition_names()}
    except ValidationError as e:
        err = e.errors()[0]
        raise SuiteError(f"{'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}") from None
    model = suite.model
    notes: list[str] = []
    n_lora = 0
    n_params: int | None
    if model.backend == "tiny":
        n_params = tiny_parameters(model)
        shape = {"hidden": model.hidden_size, "layers": model.num_layers, "heads": model.num_heads,
                 "intermediate": model.intermediate_size, "vocab": TINY_VOCAB}
        device = "cpu"
    else:
        n_params, shape, n_lora = hf_size(model, cache_dir)
        device = _hf_device(model.device)
        if n_params is None:
            notes.append("the hf model's size is unknown until it is loaded (no config.json or weights found): "
                         "memory and time not checked")
    work = {c: _run_work(cfg) for c, cfg in configs.items()}
    bases = list(configs)  # conditions that train their own base; with the cache, one per distinct base
    if cache:
        bases = list({config_hash(cfg.domain, cfg.model, cfg.base): c for c, cfg in configs.items()}.values())
    # per base: the seeds whose base is trained (not the one that ships with the package)
    trained = {c: sum(not is_shipped(base_key(configs[c].domain, configs[c].model, configs[c].base, s)) for s in seeds)
               for c in bases} if model.backend == "tiny" else {}
    base_trainings = sum(trained.values())

    def total(kind: str, conditions=configs) -> float:
        return per_seed * sum(work[c][kind] for c in conditions)

    sample, prefill, train, score = total("sample"), total("prefill"), total("train"), total("score")
    base_train = sum(n * work[c]["base_train"] for c, n in trained.items())
    base_sample = sum(n * work[c]["base_sample"] for c, n in trained.items())

    seconds: float | None
    if model.backend == "tiny":
        tiny_n = cast(int, n_params)  # tiny_parameters: always known
        scale = tiny_n / TINY_PARAMETERS
        seconds = scale * ((sample + base_sample) / TINY_SAMPLE_SLOTS_PER_S + (train + base_train) /
                           TINY_TRAIN_POSITIONS_PER_S + score / TINY_SCORE_POSITIONS_PER_S)
        memory = _peak_memory(list(configs.values()), tiny_n, tiny_n, shape, 4)
    elif n_params is not None:
        rate = GPU_FLOPS if device == "gpu" else CPU_FLOPS
        per_train = 4 if model.lora is not None else 6
        seconds = (2 * n_params * sample / rate["decode"] + 2 * n_params * (prefill + score) / rate["prefill"]
                   + per_train * n_params * train / rate["train"])
        trainable = n_lora if model.lora is not None else n_params
        memory = _peak_memory(list(configs.values()), n_params, trainable, shape,
                              2 if model.dtype != "float32" else 4)
    else:
        seconds, memory = None, None
    if seconds is not None:
        seconds += SECONDS_PER_ROUND * per_seed * sum(cfg.loop.rounds + 1 for cfg in configs.values())
        seconds += SECONDS_PER_CONDITION * len(configs)
    disk = _disk(list(configs.values()), per_seed, model, n_params, n_lora, base_trainings)
    return CostEstimate(runs=len(configs) * per_seed, base_trainings=base_trainings,
                        sample_tokens=int(sample + base_sample), train_tokens=int(train + base_train),
                        score_tokens=int(score), parameters=n_params, peak_memory_bytes=memory, disk_bytes=disk,
                        seconds=seconds, device=device, notes=tuple(notes))


def _lengths(cfg: RunConfig) -> dict[str, int]:
    """Token lengths of prompts and gold completions (tiny: one token per character)."""
    text = cfg.domain.text_lengths()
    if cfg.model.backend == "tiny":
        return text
    return {k: math.ceil(v / CHARS_PER_TOKEN) for k, v in text.items()}


_SIZES = ("test_size", "ood_size", "pool_size", "reference_size", "base_val_size")


def _sizes(domain) -> Any:
    """A domain config's split sizes under the common field names; a domain that names a split otherwise
    (or has none) counts 0 items there, so its estimate is a lower bound."""
    return SimpleNamespace(**{name: int(getattr(domain, name, 0) or 0) for name in _SIZES})


def _run_work(cfg: RunConfig) -> dict[str, float]:
    """Tokens of one run: sampling slots (`sample`), prompt tokens prefilled for them (`prefill`, hf), trained
    and scored positions, and the base training (tiny) with its base-val checks."""
    d, loop = _sizes(cfg.domain), cfg.loop
    lengths = _lengths(cfg)
    prompt, gold, new = lengths["prompt"], lengths["completion"], loop.max_new_tokens
    hint = lengths.get("hint_prompt", prompt)
    rounds = loop.rounds + 1
    eval_rows = (d.test_size + d.ood_size) * (1 + loop.eval_k)
    pool_rows = d.pool_size * loop.k
    sample = prefill = 0.0
    if loop.amplify == "decompose":
        columns = lengths.get("sub_questions", 1)
        sample += rounds * pool_rows * columns * lengths.get("sub_answer", 3)
        prefill += rounds * pool_rows * columns * lengths.get("decompose_prompt", prompt)
    else:
        sample += rounds * pool_rows * new
        prefill += rounds * pool_rows * prompt
    sample += rounds * eval_rows * new
    prefill += rounds * eval_rows * prompt
    if loop.select == "gold_rationalization":  # hinted resamples of every failed question (upper bound: all)
        sample += rounds * pool_rows * new
        prefill += rounds * pool_rows * hint
    for spec in cfg.inspect:  # a task's items (deference asks each twice) x its max_tokens, every round
        items = int(spec.args.get("n", d.test_size)) if str(spec.args.get("n", "")).isdigit() else d.test_size
        max_tokens = spec.args.get("max_tokens", 128)
        max_tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 128
        sample += rounds * 2 * items * max_tokens
        prefill += rounds * 2 * items * prompt
    seq = 2 + prompt + gold  # bos + prompt + gold completion + eos
    score = rounds * d.reference_size * seq
    if loop.select == "judge":
        score += rounds * pool_rows * (2 + prompt + new + len(loop.judge_prompt) + len(loop.judge_target))
    if loop.distill == "policy_gradient":  # every sample's old log-probs, the reference's, self-certainty
        passes = 1 + (loop.kl_beta > 0) + (loop.reward == "self_certainty")
        score += rounds * pool_rows * passes * (2 + prompt + new)
    kept = pool_rows * (loop.judge_keep if loop.select == "judge" else 1.0) * len(loop.formats)
    train = 0.0
    for r in range(1, rounds):
        examples = kept * (r if loop.data_policy == "accumulate" else 1)
        if loop.data_policy == "mix_real":
            examples /= 1 - loop.real_fraction
        steps = loop.steps or epoch_steps(examples, loop.epochs, loop.batch_size)
        train += steps * min(loop.batch_size, examples) * (2 + max(prompt, hint) + new)
    base_train = base_sample = 0.0
    if cfg.model.backend == "tiny":
        b = cfg.base
        base_seq = 2 + max(prompt, lengths.get("base_train_prompt", prompt)) + gold
        base_train = b.steps * b.batch_size * base_seq
        checks = (b.steps // b.eval_every if b.target_accuracy is not None else 0) + 1
        base_sample = checks * d.base_val_size * 40  # pretrain.greedy_accuracy: 40 new tokens
    return {"sample": sample, "prefill": prefill, "train": train, "score": score, "base_train": base_train,
            "base_sample": base_sample}


def _peak_memory(configs: list[RunConfig], n_params: int, trainable: int, shape: dict, dtype_bytes: int) -> int:
    """The process, the weights, and the larger of training (gradients and AdamW's two fp32 moments of the
    trainable parameters, activations kept for the backward pass, logits) and sampling (KV cache, logits).
    Activations per token per layer: ~8 hidden + 4 intermediate values and one attention row per head."""
    layers: Any  # like the rest: present whenever h is (a shape is complete or empty)
    heads: Any
    inter: Any
    vocab: Any
    h, layers, heads, inter, vocab = (shape.get(k) for k in ("hidden", "layers", "heads", "intermediate", "vocab"))
    weights = n_params * dtype_bytes
    peak = 0
    for cfg in configs:
        lengths = _lengths(cfg)
        prompt = max(lengths["prompt"], lengths.get("hint_prompt", 0))
        seq = 2 + prompt + max(cfg.loop.max_new_tokens, lengths["completion"])
        if cfg.model.backend == "hf":
            seq = min(seq, cfg.model.max_length)
            train_batch = min(cfg.loop.batch_size, cfg.model.train_micro_batch_size)
            sample_batch = cfg.loop.sample_batch_size or cfg.model.sample_batch_size
        else:
            train_batch = max(cfg.loop.batch_size, cfg.base.batch_size)
            sample_batch = cfg.loop.sample_batch_size or 512
        optimizer = trainable * (4 + 8)  # gradients + AdamW moments, fp32
        if h is None:  # hf without a readable config.json: activations from parameters alone
            activations = train_batch * seq * n_params // 1000 * 4
            kv = sample_batch * seq * n_params // 10000 * 4
        else:
            activations = train_batch * seq * (layers * (8 * h + 4 * inter + heads * seq) + 3 * vocab) * 4
            kv = sample_batch * seq * (2 * layers * h * dtype_bytes + vocab * 4)
        peak = max(peak, optimizer + activations, kv)
    return PROCESS_BYTES + weights + peak


def _disk(configs: list[RunConfig], per_seed: int, model, n_params: int | None, n_lora: int,
          base_trainings: int) -> int:
    """Checkpoints (every round's model; a LoRA round saves its adapter) and JSONL rows, plus the cached base
    models (tiny) or the dequantised GGUF import (hf, when not imported yet)."""
    total = 0
    for cfg in configs:
        d, loop = _sizes(cfg.domain), cfg.loop
        rounds = loop.rounds + 1
        if model.backend == "tiny":
            checkpoint = tiny_parameters(model) * 4 + 20_000
        elif model.lora is not None:
            checkpoint = n_lora * 4 + 10 * 2**20  # adapter + tokenizer files
        else:
            checkpoint = (n_params or 0) * (2 if model.dtype != "float32" else 4) + 10 * 2**20
        chars = {k: v * (1 if model.backend == "tiny" else int(CHARS_PER_TOKEN)) for k, v in _lengths(cfg).items()}
        new_chars = loop.max_new_tokens * (1 if model.backend == "tiny" else 4)
        row = ROW_BYTES + chars["prompt"] + new_chars
        rows = (d.test_size + d.ood_size) * (1 + loop.eval_k) + 2 * d.pool_size * loop.k  # eval, samples, selected
        total += per_seed * rounds * (checkpoint + rows * row + d.reference_size * 100)
        total += per_seed * rounds * len(cfg.inspect) * 2 * d.test_size * (2000 + new_chars)  # inspect .eval logs
    if model.backend == "tiny":
        total += base_trainings * (tiny_parameters(model) * 4 + 20_000)
    elif model.gguf_package is not None and n_params is not None and not _imported_gguf(model):
        total += n_params * 4  # dequantised to fp32 once, into the cache
    return int(total)


# ---------------------------------------------------------------- limits and the check


def machine_limits(suite: Suite, out: Path) -> Limits:
    """RAM (MemTotal), free disk at `out`'s nearest existing parent, and the suite's max_hours."""
    path = Path(out).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return Limits(memory_bytes=total_memory(), disk_free_bytes=shutil.disk_usage(path).free, disk_path=path,
                  max_seconds=suite.suite.max_hours * 3600)


def total_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def problems(est: CostEstimate, limits: Limits) -> list[str]:
    """One line for each limit the estimate exceeds."""
    out = []
    if est.peak_memory_bytes is not None and est.peak_memory_bytes > limits.memory_bytes:
        out.append(f"estimated peak memory {_gb(est.peak_memory_bytes)} exceeds this machine's "
                   f"{_gb(limits.memory_bytes)} of RAM; shrink [model] or the batch sizes (loop.batch_size, "
                   "loop.sample_batch_size)")
    if est.disk_bytes > limits.disk_free_bytes:
        out.append(f"estimated disk use {_gb(est.disk_bytes)} exceeds the {_gb(limits.disk_free_bytes)} free at "
                   f"{limits.disk_path}; choose another --out, or fewer rounds, conditions or seeds")
    if est.seconds is not None and est.seconds > limits.max_seconds:
        out.append(f"estimated time {_duration(est.seconds)} exceeds key suite.max_hours = "
                   f"{limits.max_seconds / 3600:g}; raise suite.max_hours or shrink the suite (loop.k, "
                   "loop.rounds, domain sizes, seeds)")
    return out


def check(est: CostEstimate, limits: Limits, force: bool = False) -> None:
    """A SuiteError (one line) when the estimate exceeds a limit, unless `force`."""
    found = problems(est, limits)
    if found and not force:
        raise SuiteError(f"{found[0]}; or pass --force to run anyway" + (
            f" (and {len(found) - 1} more limit{'s' * (len(found) > 2)} exceeded)" if len(found) > 1 else ""))


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"
