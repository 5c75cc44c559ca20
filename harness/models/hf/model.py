"""The `hf` backend: a pretrained transformers causal LM behind `harness.models.base.ModelBackend`.

Prompts are raw text, or one user turn of the tokenizer's chat template (`HFConfig.chat_template`). A
completion is the generated text up to eos (or up to a stop string). Log-probs are at temperature 1, with the
same never-generated special tokens masked out in sampling and scoring, so a sample's `sum_logprob` equals
`score()` of its text whenever the tokenizer re-encodes that text to the tokens that were sampled. A trained
model nearly always samples that canonical encoding (SmolLM2: 6 of 6 samples at T=1 matched exactly); a
random model over a BPE vocabulary often does not (15 of 16 differed), hence the character-level tokenizer
of the contract tests. With stop strings, a stopped completion counts the tokens through the stop string
and ends without eos, so `score(text, add_eos=True)` differs from its `sum_logprob` by design.

Checkpoints: a full fine-tune saves a complete transformers directory; LoRA saves only the adapter and names
the base model's directory in `loopprobe.json`, so a round's checkpoint is small and reloads bit-identically
(the base must stay where it was). `HFModel.load` reads either, or any plain transformers directory.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
)

from harness.artifacts import RunError
from harness.models import policy_gradient, training
from harness.models.base import Completion, PolicySettings, Rollout, TrainStats
from harness.models.hf.config import HFConfig
from harness.seeding import derive_seed

META = "loopprobe.json"  # what kind of checkpoint a directory holds, and the config that made it


def check_model_dir(path: Path) -> Path:
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise RunError(f"hf backend: {path}: no config.json; point model.path at a transformers directory "
                       "or run `loopprobe models import-gguf`")
    return path


def _device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def _load_pretrained(path: Path, config: HFConfig, tokenizer_path: Path | None = None):
    path = check_model_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, config.dtype), local_files_only=True)
    except (OSError, ValueError) as e:
        raise RunError(f"hf backend: {path}: cannot load ({str(e).splitlines()[0]})") from None
    # transformers' typed wrapper of nn.Module.to declares no device argument; torch's accepts one
    return model.to(_device(config.device)), tokenizer  # type: ignore[arg-type]


class _LogProbRecorder(LogitsProcessor):
    """Last in generate's processor list: masks never-generated tokens, keeps the temperature-1 log-softmax,
    and reads back the log-prob of the token chosen from it at the next step (input_ids then holds it).
    Sampling temperature is applied here, after recording, so generate itself samples at temperature 1."""

    def __init__(self, banned: list[int], temperature: float):
        self.banned, self.temperature = banned, temperature
        self.prev: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.prev is not None:
            self.steps.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        scores = scores.float()
        if self.banned:
            scores[:, self.banned] = -torch.inf
        self.prev = torch.log_softmax(scores, dim=-1)
        return scores / self.temperature if self.temperature > 0 else scores

    def logprobs(self, last_tokens: torch.Tensor) -> torch.Tensor:
        """[N, T] log-prob of every generated token (the last one's read from the final distribution)."""
        assert self.prev is not None
        return torch.stack([*self.steps, self.prev.gather(1, last_tokens[:, None]).squeeze(1)], dim=1)


class HFModel:
    """A pretrained `AutoModelForCausalLM` (optionally with LoRA adapters) implementing ModelBackend."""

    def __init__(self, model, tokenizer, config: HFConfig, base_path: Path):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.base_path = Path(base_path).resolve()
        self.device = next(model.parameters()).device
        self.use_chat = bool(tokenizer.chat_template) if config.chat_template is None else config.chat_template
        if self.use_chat and not tokenizer.chat_template:
            raise RunError(f"hf backend: {self.base_path}: chat_template = true but the tokenizer has no chat template")
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        gen_eos = [gen_eos] if isinstance(gen_eos, int) else list(gen_eos or [])
        self.eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else (gen_eos or [None])[0]
        if self.eos_id is None:
            raise RunError(f"hf backend: {self.base_path}: the tokenizer has no eos token; set one in its config")
        self.eos_ids = sorted({self.eos_id, *gen_eos})
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        vocab = model.get_input_embeddings().weight.shape[0]
        # Specials other than eos (and padding rows past the tokenizer) never appear in a completion's text,
        # so they are never sampled: otherwise re-scoring the decoded text would not see them.
        self.never_generated = sorted((set(tokenizer.all_special_ids) - set(self.eos_ids))
                                      | set(range(len(tokenizer), vocab)))
        # Our sampling settings only: a checkpoint's own defaults (top_k, top_p, ...) must not leak in.
        model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=self.eos_ids,
                                                   pad_token_id=self.pad_id)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_config(cls, config: HFConfig, seed: int = 0, cache_dir: Path | None = None) -> HFModel:
        """The base model of a run: `config.path` (or the imported `config.gguf_package`), LoRA-wrapped if set."""
        if config.path is not None:
            path = Path(config.path).expanduser().resolve()
        else:
            from harness.models.hf.gguf import import_packaged_gguf

            path = import_packaged_gguf(config.gguf_package, cache_dir)  # type: ignore[arg-type]
        model, tokenizer = _load_pretrained(path, config)
        if config.lora is not None:
            from peft import LoraConfig as PeftLoraConfig
            from peft import get_peft_model

            torch.manual_seed(seed % 2**63)  # the adapters' random init
            lora = config.lora
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                         target_modules=lora.target_modules, task_type="CAUSAL_LM"))
        return cls(model, tokenizer, config, base_path=path)

    @classmethod
    def load(cls, directory: Path) -> HFModel:
        """A checkpoint written by `save`, or any transformers directory (default HFConfig)."""
        directory = Path(directory).expanduser().resolve()
        meta_path = directory / META
        if not meta_path.exists():
            return cls.from_config(HFConfig(path=str(directory)))
        meta = json.loads(meta_path.read_text())
        config = HFConfig.model_validate(meta["config"])
        if meta["kind"] == "lora":
            from peft import PeftModel

            base = Path(meta["base_path"])
            if not (base / "config.json").is_file():
                raise RunError(f"hf backend: {directory}: LoRA checkpoint whose base model {base} is gone; "
                               "restore it there (or re-import it with `loopprobe models import-gguf`)")
            model, tokenizer = _load_pretrained(base, config, tokenizer_path=directory)
            model = PeftModel.from_pretrained(model, directory, is_trainable=True)
            return cls(model, tokenizer, config, base_path=base)
        config = config.model_copy(update={"path": str(directory), "gguf_package": None})
        model, tokenizer = _load_pretrained(directory, config)
        return cls(model, tokenizer, config, base_path=directory)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)  # a PeftModel writes its adapter only
        self.tokenizer.save_pretrained(directory)
        kind = "lora" if self.config.lora is not None else "full"
        meta = {"format": 1, "kind": kind, "config": self.config.model_dump(mode="json"),
                "base_path": str(self.base_path) if kind == "lora" else None}
        (directory / META).write_text(json.dumps(meta, indent=2))

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def n_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    # ---------------------------------------------------------------- encoding

    def encode_prompt(self, prompt: str) -> list[int]:
        if self.use_chat:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
            return self.tokenizer.encode(text, add_special_tokens=False)
        return self.tokenizer.encode(prompt, add_special_tokens=True)

    def encode_completion(self, text: str, add_eos: bool) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False) + ([self.eos_id] if add_eos else [])

    def count_tokens(self, prompt: str) -> int:
        return len(self.encode_prompt(prompt))

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _pairs(self, prompts: list[str], completions: list[str], add_eos: list[bool]) -> training.Batch:
        """Right-padded prompt + completion rows with an attention mask, on the model's device, labels on the
        completion (and eos): the `Encode` of harness.models.training."""
        rows = []
        for p, c, e in zip(prompts, completions, add_eos):
            head, tail = self.encode_prompt(p), self.encode_completion(c, e)
            if len(head) + len(tail) > self.config.max_length:
                raise RunError(f"hf backend: a prompt + completion of {len(head) + len(tail)} tokens exceeds "
                               f"model.max_length = {self.config.max_length}; raise it")
            rows.append((head, tail))
        return training.completion_batch(rows, self.pad_id, mask=True, device=self.device)

    # ---------------------------------------------------------------- the protocol

    @torch.inference_mode()
    def sample(self, prompts: list[str], k: int, temperature: float, max_new_tokens: int, seed: int,
               batch_size: int | None = None, progress: Callable[[int], None] | None = None
               ) -> list[list[Completion]]:
        """k completions per prompt, in prompt order; temperature 0 decodes greedily (once, copied k times)."""
        if k < 1 or max_new_tokens < 1:
            raise ValueError("k and max_new_tokens must be >= 1")
        if temperature < 0:
            raise ValueError("temperature must be >= 0")
        self.model.eval()
        encoded = [self.encode_prompt(p) for p in prompts]
        n_gen = 1 if temperature == 0 else k
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths: less padding
        per_batch = max(1, (batch_size or self.config.sample_batch_size) // n_gen)
        results: list[list[Completion]] = [[] for _ in prompts]
        for b, start in enumerate(range(0, len(order), per_batch)):
            idx = order[start:start + per_batch]
            outs = self._generate([encoded[i] for i in idx], n_gen, temperature, max_new_tokens,
                                  derive_seed(seed, "hf-sample", b))
            for j, i in enumerate(idx):
                row = outs[j * n_gen:(j + 1) * n_gen]
                results[i] = row * k if n_gen == 1 else row
            if progress is not None:
                progress(len(idx) * k)
        return results

    def _generate(self, batch: list[list[int]], n: int, temperature: float, max_new_tokens: int,
                  seed: int) -> list[Completion]:
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, e in enumerate(batch):  # left padding: every row's last prompt token is at the same column
            ids[r, width - len(e):], mask[r, width - len(e):] = torch.tensor(e), 1
        recorder = _LogProbRecorder(self.never_generated, temperature)
        # Explicit neutral values: generate fills unset ones from global defaults (top_k=50).
        sampling = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "typical_p": 1.0} if temperature > 0 else {}
        cfg = GenerationConfig(do_sample=temperature > 0, **sampling, repetition_penalty=1.0,
                               num_return_sequences=n, max_new_tokens=max_new_tokens,
                               eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
                               stop_strings=list(self.config.stop) or None)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # seeded without disturbing the caller's RNG
            torch.manual_seed(seed % 2**63)
            seqs = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                       generation_config=cfg, logits_processor=LogitsProcessorList([recorder]),
                                       tokenizer=self.tokenizer if self.config.stop else None)
        new = seqs[:, width:].cpu()
        logp = recorder.logprobs(seqs[:, -1]).double().cpu()
        return [self._completion(new[r].tolist(), logp[r]) for r in range(new.shape[0])]

    def _completion(self, tokens: list[int], logp: torch.Tensor) -> Completion:
        eos = set(self.eos_ids)
        end = next((i for i, t in enumerate(tokens) if t in eos), None)
        n_tok, finished = (end + 1, True) if end is not None else (len(tokens), False)
        body = tokens[:end] if end is not None else tokens
        text = self._decode(body)
        if self.config.stop:  # cut before the first stop string; count the tokens through it
            hits = [(text.find(s), s) for s in self.config.stop if s in text]
            if hits:
                pos, stop = min(hits)
                n_tok = next(m for m in range(1, len(body) + 1) if len(self._decode(body[:m])) >= pos + len(stop))
                text, finished = text[:pos], True
        return Completion(text=text, sum_logprob=float(logp[:n_tok].sum()), n_tokens=n_tok, finished=finished)

    def score(self, prompts: list[str], completions: list[str], add_eos: bool | list[bool] = True
              ) -> list[tuple[float, int]]:
        return training.score(self.model, self._pairs, prompts, completions, add_eos,
                              batch_size=self.config.score_batch_size, banned=self.never_generated)

    def policy_update(self, rollouts: list[Rollout], settings: PolicySettings, *, lr: float, epochs: float,
                      batch_size: int, seed: int, steps: int | None = None, reference: HFModel | None = None,
                      on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        """The training core's GRPO update (harness.models.policy_gradient, TRL's loss term for term) on the
        trainable parameters, in micro-batches of `train_micro_batch_size`. Not TRL's GRPOTrainer, whatever
        `trainer` says: it samples its own rollouts, and the loop's are sampled and recorded before the update."""
        return policy_gradient.policy_update(
            self.model, self._pairs, rollouts, settings, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
            steps=steps, reference=reference.model if reference else None, banned=self.never_generated,
            micro_batch_size=self.config.train_micro_batch_size, on_step=on_step)

    def self_certainty(self, prompts: list[str], completions: list[str]) -> list[float]:
        return policy_gradient.self_certainty(self.model, self._pairs, prompts, completions,
                                              batch_size=self.config.score_batch_size, banned=self.never_generated)

    def finetune(self, pairs: list[tuple[str, str]], *, lr: float, epochs: float, batch_size: int, seed: int,
                 steps: int | None = None, on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        """harness.models.training's AdamW loop (as the tiny backend's) on the trainable parameters (all, or
        the LoRA adapters), in micro-batches of `train_micro_batch_size` rows; or, with `trainer = "trl"`,
        TRL's SFTTrainer set up to match it (harness.models.hf.trl_trainer)."""
        if self.config.trainer == "trl":
            from harness.models.hf.trl_trainer import finetune_with_trl

            return finetune_with_trl(self.model, self.tokenizer, self._pairs, pairs, lr=lr, epochs=epochs,
                                     batch_size=batch_size, seed=seed, steps=steps, on_step=on_step,
                                     micro_batch_size=self.config.train_micro_batch_size)
        return training.finetune(self.model, self._pairs, pairs, lr=lr, epochs=epochs, batch_size=batch_size,
                                 seed=seed, steps=steps, on_step=on_step,
                                 micro_batch_size=self.config.train_micro_batch_size)
