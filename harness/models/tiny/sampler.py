"""Batched sampling with a KV cache for any transformers causal LM over unpadded, equal-length prompts.

Prompts are grouped by token length so no batch needs padding or an attention mask: every row advances in
lockstep, which keeps greedy decoding exactly equal to a full forward pass (a test checks it). Rows that
finish leave the batch (see `_generate`), with bit-identical results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch
from transformers.cache_utils import Cache, DynamicLayer

from harness import faults
from harness.models.base import Completion
from harness.models.tiny.tokenizer import CharTokenizer

COMPACT_SHARE = 0.25  # drop finished rows once they are this share of the rows computed (a cache gather each time)
# Fewer rows than this are never computed apart: a matrix product of 1 to 3 rows takes other kernels, whose
# rows differ in the last bits from the same rows in a larger product (measured here; 16 leaves a margin).
MIN_ROWS = 16


class _PreallocatedLayer(DynamicLayer):
    """A KV-cache layer that writes each step into buffers sized for the whole decode, where transformers'
    DynamicLayer concatenates (a copy of the whole cache every step). Attention reads the same values, so the
    results are bit-identical."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        b, h, _, d = key_states.shape
        self.device = key_states.device
        self.key_buffer = torch.empty((b, h, self.capacity, d), dtype=key_states.dtype)
        self.value_buffer = torch.empty((b, h, self.capacity, d), dtype=value_states.dtype)
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        self.key_buffer[:, :, self.length:end] = key_states
        self.value_buffer[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
        self.keys, self.values = self.key_buffer[:, :, :self.length], self.value_buffer[:, :, :self.length]


@torch.inference_mode()
def _generate(model, ids: torch.Tensor, max_new_tokens: int, temperature: float, eos: int, pad: int,
              banned: tuple[int, ...], generator: torch.Generator | None, use_cache: bool
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode a [B, P] batch. Returns tokens [B, T], sum log-prob [B], token count [B], finished [B].

    Finished rows leave the batch (with their KV-cache rows) once they are `COMPACT_SHARE` of it, and the
    result is bit-identical to decoding every row to the end: every op here is row-wise, and a matrix
    product's rows do not depend on the other rows as long as enough are multiplied (1 to 3 rows take other
    kernels), so at least `MIN_ROWS` always stay. Sampling draws its noise for the whole batch every
    step, as `torch.multinomial` over all B rows would (it is argmax(p / q), q ~ Exp(1) of p's shape), and
    each row takes its own row of it: the random stream, and so every sample, is the full batch's."""
    batch = ids.shape[0]
    cache = Cache(layers=[_PreallocatedLayer(ids.shape[1] + max_new_tokens)
                          for _ in range(model.config.num_hidden_layers)]) if use_cache else None
    out = model(input_ids=ids, cache=cache, use_cache=use_cache, logits_to_keep=1)
    logits = out.logits[:, -1].float()
    logits[:, list(banned)] = -torch.inf
    rows = torch.arange(batch)  # the batch row of each row computed
    finished = torch.zeros(batch, dtype=torch.bool)
    sum_lp = torch.zeros(batch, dtype=torch.float64)
    n_tok = torch.zeros(batch, dtype=torch.long)
    tokens = torch.full((batch, max_new_tokens), pad, dtype=torch.long)
    seq, steps = ids, 0
    for step in range(max_new_tokens):
        logp = torch.log_softmax(logits, dim=-1)
        if temperature == 0:
            tok = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            noise = torch.empty((batch, probs.shape[1])).exponential_(1, generator=generator)
            tok = (probs / noise[rows]).argmax(dim=-1)
        live = ~finished[rows]
        tok = torch.where(live, tok, torch.full_like(tok, pad))
        sum_lp[rows] += torch.where(live, logp.gather(1, tok[:, None]).squeeze(1), 0.0).double()
        n_tok[rows] += live.long()
        finished[rows] |= tok == eos
        tokens[rows, step] = tok
        steps = step + 1
        if bool(finished.all()):
            break
        if cache is not None:
            done = finished[rows]
            if len(rows) > MIN_ROWS and int(done.sum()) >= COMPACT_SHARE * len(rows):
                kept = (~done).nonzero().squeeze(1)
                if len(kept) < MIN_ROWS:  # finished rows fill up to MIN_ROWS (their outputs are not used)
                    kept = torch.cat([kept, done.nonzero().squeeze(1)[:MIN_ROWS - len(kept)]]).sort().values
                rows, tok = rows[kept], tok[kept]
                cache.batch_select_indices(kept)
            out = model(input_ids=tok[:, None], cache=cache, use_cache=True)
        else:
            seq = torch.cat([seq, tok[:, None]], dim=1)
            out = model(input_ids=seq, use_cache=False, logits_to_keep=1)
        logits = out.logits[:, -1].float()
        logits[:, list(banned)] = -torch.inf
    return tokens[:, :steps], sum_lp, n_tok, finished


def sample(model, tokenizer: CharTokenizer, prompts: list[str], k: int, temperature: float,
           max_new_tokens: int, seed: int, batch_size: int = 512, use_cache: bool = True,
           progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
    """k completions for each prompt; `progress(n)` is called with the number of sequences finished."""
    if k < 1 or max_new_tokens < 1:
        raise ValueError("k and max_new_tokens must be >= 1")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    generator = torch.Generator().manual_seed(seed % 2**63)
    encoded = [[tokenizer.bos_id, *tokenizer.encode(p)] for p in prompts]
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(encoded):
        by_length[len(e)].append(i)
    # One row per (prompt, sample); rows of equal prompt length share batches.
    rows = [(i, j) for length in sorted(by_length) for i in by_length[length] for j in range(k)]
    results: list[list[Completion | None]] = [[None] * k for _ in prompts]
    start = 0
    while start < len(rows):
        faults.reached("sample")
        length = len(encoded[rows[start][0]])
        stop = start
        while stop < len(rows) and stop - start < batch_size and len(encoded[rows[stop][0]]) == length:
            stop += 1
        chunk = rows[start:stop]
        ids = torch.tensor([encoded[i] for i, _ in chunk], dtype=torch.long)
        toks, sum_lp, n_tok, fin = _generate(model, ids, max_new_tokens, temperature, tokenizer.eos_id,
                                             tokenizer.pad_id, tokenizer.never_generated, generator,
                                             use_cache)
        for r, (i, j) in enumerate(chunk):
            results[i][j] = Completion(text=tokenizer.decode(toks[r].tolist()), sum_logprob=float(sum_lp[r]),
                                       n_tokens=int(n_tok[r]), finished=bool(fin[r]))
        if progress is not None:
            progress(len(chunk))
        start = stop
    return results  # type: ignore[return-value]
