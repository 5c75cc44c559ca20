"""The inspect-ai model provider `loopprobe`: one round's in-memory model as an inspect model.

    model = get_model("loopprobe/round-2", memoize=False, backend=live_model, seed=7, max_tokens=40)

Why each detail (inspect-ai 0.3.285 behaviour, measured when the bridge was written):
- `memoize=False`: get_model memoises by name and arguments, and a live torch object is recorded as None, so
  round 2 would silently get round 1's model;
- usage is always set: without it inspect counts tokens with tiktoken, which downloads an encoding;
- `num_choices` gives k choices from one call (epochs repeat the whole solver, for variance instead);
- concurrent generate calls are batched into one `backend.sample` per (k, temperature, max_tokens, seed):
  inspect's per-call path costs ~0.1 s a sample, a batch ~0.003 s.

Messages are flattened into the backend's single prompt string: a lone user message is passed as it is (so a
task built from a domain's prompts decodes exactly as the harness does); several messages are joined by blank
lines. Temperature 0 is greedy. Sampled completions are seeded, but which requests share a batch (and so the
random stream) depends on how inspect schedules samples: set `batch_size=1` for per-request determinism.
Each choice's `sum_logprob` and token count are in the output's metadata.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    StopReason,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from harness.models.base import Completion


@dataclass
class _Request:
    prompt: str
    k: int
    temperature: float
    max_tokens: int
    seed: int
    future: asyncio.Future = field(repr=False)


class _Batcher:
    """Collects concurrent requests until a short quiet spell, then decodes them in as few calls as possible."""

    def __init__(self, backend: Any, batch_size: int, window: float):
        self.backend, self.batch_size, self.window = backend, batch_size, window
        self.pending: list[_Request] = []
        self.flushing = False

    async def submit(self, prompt: str, k: int, temperature: float, max_tokens: int, seed: int) -> list[Completion]:
        future = asyncio.get_running_loop().create_future()
        self.pending.append(_Request(prompt, k, temperature, max_tokens, seed, future))
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            seen = -1
            while len(self.pending) != seen and len(self.pending) < self.batch_size:
                seen = len(self.pending)  # wait until no new request arrives during one window
                await asyncio.sleep(self.window)
            batch, self.pending = self.pending, []
        finally:
            self.flushing = False  # requests from here on start the next flush
        groups: dict[tuple, list[_Request]] = {}
        for r in batch:
            groups.setdefault((r.k, r.temperature, r.max_tokens, r.seed), []).append(r)
        for (k, temperature, max_tokens, seed), requests in groups.items():
            try:
                outs = self.backend.sample([r.prompt for r in requests], k=k, temperature=temperature,
                                           max_new_tokens=max_tokens, seed=seed)
            except Exception as e:  # noqa: BLE001 (every waiting sample sees the error)
                for r in requests:
                    if not r.future.done():
                        r.future.set_exception(e)
                continue
            for r, completions in zip(requests, outs):
                if not r.future.done():
                    r.future.set_result(completions)


def flatten(messages: list[ChatMessage]) -> str:
    texts = [m.text for m in messages]
    return texts[0] if len(texts) == 1 else "\n\n".join(texts)


@modelapi(name="loopprobe")
class LoopprobeModelAPI(ModelAPI):
    """model_args: backend (required; a ModelBackend), seed (default 0), max_tokens (default 128),
    temperature (default when the config sets none: 1.0), batch_size (default 64), batch_window (s)."""

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any):  # noqa: B008 (ModelAPI's own default)
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, api_key_vars=[], config=config)
        backend = model_args.pop("backend", None)
        if backend is None or not hasattr(backend, "sample"):
            raise ValueError("loopprobe provider: pass the round's model as get_model(..., backend=model)")
        self.backend = backend
        # (names chosen not to shadow ModelAPI methods such as max_tokens())
        self.default_seed = int(model_args.pop("seed", 0))
        self.default_max_tokens = int(model_args.pop("max_tokens", 128))
        self.default_temperature = float(model_args.pop("temperature", 1.0))
        self.batch_size = int(model_args.pop("batch_size", 64))
        self.batcher = _Batcher(backend, self.batch_size, float(model_args.pop("batch_window", 0.01)))
        if model_args:
            raise ValueError(f"loopprobe provider: unknown model_args {sorted(model_args)}")

    def max_tokens(self) -> int | None:
        return self.default_max_tokens

    def max_connections(self) -> int:
        return self.batch_size  # the samples in flight are the batch

    def connection_key(self) -> str:
        return f"{self.model_name}-{id(self.backend)}"  # each round's model its own pool

    def _count(self, prompt: str) -> int:
        if hasattr(self.backend, "count_tokens"):
            return int(self.backend.count_tokens(prompt))
        tokenizer = getattr(self.backend, "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "encode"):
            return len(tokenizer.encode(prompt))
        return max(1, len(prompt) // 4)  # no tokenizer to ask: a rough estimate, never a download

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        prompt = flatten(input)
        k = config.num_choices or 1
        temperature = self.default_temperature if config.temperature is None else float(config.temperature)
        max_tokens = config.max_tokens or self.default_max_tokens
        seed = self.default_seed if config.seed is None else int(config.seed)
        completions = await self.batcher.submit(prompt, k, temperature, max_tokens, seed)
        choices = []
        stop_reason: StopReason
        for c in completions:
            text, stop_reason = c.text, "stop" if c.finished else "max_tokens"
            for s in config.stop_seqs or []:
                if s in text:
                    text, stop_reason = text[:text.index(s)], "stop"
            choices.append(ChatCompletionChoice(message=ChatMessageAssistant(content=text, model=self.model_name,
                                                                             source="generate"),
                                                stop_reason=stop_reason))
        n_in, n_out = self._count(prompt), sum(c.n_tokens for c in completions)
        return ModelOutput(model=self.model_name, choices=choices,
                           usage=ModelUsage(input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out),
                           metadata={"sum_logprob": [c.sum_logprob for c in completions],
                                     "n_tokens": [c.n_tokens for c in completions],
                                     "finished": [c.finished for c in completions]})
