"""Batched sampling with a KV cache for any transformers causal LM over unpadded, equal-length prompts.

Prompts are grouped by token length so no batch needs padding or an attention mask: every row advances in
lockstep and a finished row only emits pad, which is cheap and keeps greedy decoding exactly equal to a
full forward pass (a test checks it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from harness import faults
from harness.models.base import Completion
from harness.models.tiny.tokenizer import CharTokenizer


@torch.inference_mode()
def _generate(model, ids: torch.Tensor, max_new_tokens: int, temperature: float, eos: int, pad: int,
              banned: tuple[int, ...], generator: torch.Generator | None, use_cache: bool) -> tuple[torch.Tensor, torch.Tensor,
                                                                         torch.Tensor, torch.Tensor]:
    """Decode a [B, P] batch. Returns tokens [B, T], sum log-prob [B], token count [B], finished [B]."""
    batch = ids.shape[0]
    out = model(input_ids=ids, use_cache=use_cache, logits_to_keep=1)
    cache = out.cache if use_cache else None
    logits = out.logits[:, -1].float()
    logits[:, list(banned)] = -torch.inf
    finished = torch.zeros(batch, dtype=torch.bool)
    sum_lp = torch.zeros(batch, dtype=torch.float64)
    n_tok = torch.zeros(batch, dtype=torch.long)
    tokens = []
    seq = ids
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(logits, dim=-1)
        if temperature == 0:
            tok = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        live = ~finished
        tok = torch.where(live, tok, torch.full_like(tok, pad))
        sum_lp += torch.where(live, logp.gather(1, tok[:, None]).squeeze(1), 0.0).double()
        n_tok += live.long()
        finished |= tok == eos
        tokens.append(tok)
        if bool(finished.all()):
            break
        if use_cache:
            out = model(input_ids=tok[:, None], cache=cache, use_cache=True)
            cache = out.cache
        else:
            seq = torch.cat([seq, tok[:, None]], dim=1)
            out = model(input_ids=seq, use_cache=False, logits_to_keep=1)
        logits = out.logits[:, -1].float()
        logits[:, list(banned)] = -torch.inf
    return torch.stack(tokens, dim=1), sum_lp, n_tok, finished


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
