"""A backend driven by plain functions (the httpx MockTransport idea): strategy tests state exactly what
the model says without training one."""

from __future__ import annotations

import random
from collections.abc import Callable

from harness.models.base import Completion


class FunctionBackend:
    def __init__(self, complete: Callable[[str, random.Random], str],
                 score: Callable[[str, str], float] | None = None):
        self.complete = complete
        self.score_fn = score or (lambda prompt, completion: -float(len(completion)))
        self.calls: list[list[str]] = []

    def sample(self, prompts, k, temperature, max_new_tokens, seed, batch_size=512, progress=None):
        self.calls.append(list(prompts))
        rng = random.Random(seed)
        out = [[Completion(self.complete(p, rng)[:max_new_tokens], -1.0, 1, True) for _ in range(k)] for p in prompts]
        if progress:
            progress(len(prompts) * k)
        return out

    def score(self, prompts, completions, add_eos=True):
        return [(self.score_fn(p, c) * max(1, len(c)), max(1, len(c))) for p, c in zip(prompts, completions)]
