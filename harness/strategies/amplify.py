"""Amplify: what the model (plus scaffolding) produces for each pool question.

`sample` is the backend's own k-sample chain of thought. `decompose` is IDA-style amplification: the
domain splits a question into sub-questions the model answers one at a time in the context of the trace
so far, and composes the answer; the composed trace is what gets distilled.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.domains.base import Question
from harness.models.base import Completion
from harness.seeding import derive_seed

SUB_ANSWER_TOKENS = 3  # a column sum is at most two digits, then a newline


def decompose(model, domain, questions: list[Question], k: int, temperature: float, seed: int,
              batch_size: int = 512, progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
    """k composed traces per question, all advanced one sub-question at a time in batches. A trace's
    log-prob and token count are the sums over its sub-answers as generated (SUB_ANSWER_TOKENS each);
    `finished` is False when a sub-answer was unreadable and the trace stopped without an answer."""
    traces = [domain.decompose(q) for q in questions for _ in range(k)]
    logprob = [0.0] * len(traces)
    tokens = [0] * len(traces)
    step = 0
    while live := [i for i, t in enumerate(traces) if t.next_prompt() is not None]:
        outs = model.sample([traces[i].next_prompt() for i in live], k=1, temperature=temperature,
                            max_new_tokens=SUB_ANSWER_TOKENS, seed=derive_seed(seed, "sub-question", step),
                            batch_size=batch_size)
        for i, (out,) in zip(live, outs):
            traces[i].answer(out.text)
            logprob[i] += out.sum_logprob
            tokens[i] += out.n_tokens
        step += 1
    if progress is not None:
        progress(len(traces))
    done = [Completion(text=t.composed(), sum_logprob=lp, n_tokens=n, finished=not t.failed)
            for t, lp, n in zip(traces, logprob, tokens)]
    return [done[i * k:(i + 1) * k] for i in range(len(questions))]
