"""A model backend driven by plain functions, for tests: as httpx ships `MockTransport`, loopprobe ships
`FunctionBackend`, so a test states exactly what the model says without training one.

    from harness.models.testing import FunctionBackend

    model = FunctionBackend(lambda prompt, rng: "2+2=4\\nA: 4" if "2+2" in prompt else "A: 0")
    outs = my_amplifier(model, domain, questions, k=4, temperature=0.8, seed=0, max_new_tokens=40)
    assert model.calls == [[q.prompt for q in questions]]

It implements the whole `harness.models.base.ModelBackend` protocol, so it also stands in for a model in
the loop: a plugin author's test can register a backend whose `base_model` returns one (registration is
global, so use a test-only name, e.g. `@register("backend", "fake-for-my-test")`, and never register it from
package code):

    fake = FunctionBackend(lambda prompt, rng: "A: 4")

    @register("backend", "fake-for-my-test")
    class FakeBackend:
        config_class = FakeConfig  # a pydantic model with `backend: Literal["fake-for-my-test"]`
        base_model = staticmethod(lambda cfg, domain, splits, key, cache_dir, reporter: (fake, {}))
        load = staticmethod(fake.load)

Fine-tuning changes nothing the functions say; it records the pairs (`trained`), so a test can assert what
a selector or data policy handed to training. `save` writes that record; `load` restores it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path

from harness.models.base import Completion, TrainStats
from harness.models.training import epoch_steps

SAVED = "function_backend.json"


class FunctionBackend:
    """`complete(prompt, rng) -> text` answers every sample (cut to `max_new_tokens` characters; each
    Completion has sum_logprob -1.0, n_tokens 1, finished True); `rng` is a `random.Random` seeded by the
    call's seed and shared by its prompts in order, so the same seed gives the same completions.
    `score(prompt, completion) -> log-prob per character` decides `score()`: the pair's sum is that times
    the completion's length (at least 1), over that many tokens; by default -len(completion) per character,
    so longer completions are less likely.

    Recorded for assertions: `calls`, the prompts of each `sample` call; `trained`, the pairs of each
    `finetune` call. `finetune` takes the steps a real backend would (`steps`, or what `epochs` implies),
    each reporting `loss` (default 1.0) to `on_step`, and trains no tokens.
    """

    def __init__(self, complete: Callable[[str, random.Random], str],
                 score: Callable[[str, str], float] | None = None, *, loss: float = 1.0):
        self.complete = complete
        self.score_fn = score or (lambda prompt, completion: -float(len(completion)))
        self.loss = loss
        self.calls: list[list[str]] = []
        self.trained: list[list[tuple[str, str]]] = []

    def sample(self, prompts: list[str], k: int, temperature: float, max_new_tokens: int, seed: int, *,
               batch_size: int | None = None, progress: Callable[[int], None] | None = None
               ) -> list[list[Completion]]:
        self.calls.append(list(prompts))
        rng = random.Random(seed)
        out = [[Completion(self.complete(p, rng)[:max_new_tokens], -1.0, 1, True) for _ in range(k)]
               for p in prompts]
        if progress:
            progress(len(prompts) * k)
        return out

    def score(self, prompts: list[str], completions: list[str], add_eos: bool | list[bool] = True
              ) -> list[tuple[float, int]]:
        return [(self.score_fn(p, c) * max(1, len(c)), max(1, len(c))) for p, c in zip(prompts, completions)]

    def finetune(self, pairs: list[tuple[str, str]], *, lr: float, epochs: float, batch_size: int, seed: int,
                 steps: int | None = None, on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        """Records `pairs` and counts the steps a real backend would take (calling `on_step` each time)."""
        self.trained.append(list(pairs))
        n = steps if steps is not None and pairs else epoch_steps(len(pairs), epochs, batch_size)
        done = 0
        for step in range(n):
            done += 1
            if on_step is not None and on_step(step, self.loss):
                break
        loss = self.loss if done else math.nan
        return TrainStats(steps=done, tokens=0, mean_loss=loss, final_loss=loss, seconds=0.0)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / SAVED).write_text(json.dumps({"trained": self.trained}))

    def load(self, directory: Path) -> FunctionBackend:
        """A backend with this one's functions and the training record saved in `directory`."""
        saved = json.loads((Path(directory) / SAVED).read_text())
        loaded = FunctionBackend(self.complete, self.score_fn, loss=self.loss)
        loaded.trained = [[(p, c) for p, c in pairs] for pairs in saved["trained"]]
        return loaded
