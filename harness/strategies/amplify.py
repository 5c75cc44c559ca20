"""Amplify: what the model (plus scaffolding) produces for each pool question.

`sample` is the backend's own k-sample chain of thought. `decompose` is IDA-style amplification: the
domain splits a question into sub-questions the model answers one at a time in the context of the trace
so far, and composes the answer; the composed trace is what gets distilled.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.domains.base import Decomposes, Question
from harness.models.base import Completion
from harness.registry import register
from harness.seeding import derive_seed

Amplifier = Callable[..., list[list[Completion]]]


def register_amplifier(name: str, *, requires: tuple[type, ...] = (),
                       description: str = "") -> Callable[[Amplifier], Amplifier]:
    """Register an amplifier: `(model, domain, questions, k, temperature, seed, *, max_new_tokens, batch_size,
    progress) -> k Completions per question`. `batch_size` is None for the backend's default; `progress(n)`
    is called as completions are done. `requires`: the domain capabilities it needs, checked when a suite is
    validated."""
    return register("amplifier", name, requires=requires, description=description)


@register_amplifier("sample", description="k samples of the model's own chain of thought per question")
def sample(model, domain, questions: list[Question], k: int, temperature: float, seed: int, *,
           max_new_tokens: int, batch_size: int | None = None,
           progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
    batch = {"batch_size": batch_size} if batch_size else {}
    return model.sample([q.prompt for q in questions], k=k, temperature=temperature, max_new_tokens=max_new_tokens,
                        seed=seed, progress=progress, **batch)


@register_amplifier("decompose", requires=(Decomposes,),
                    description="IDA: the model answers the domain's sub-questions, the harness composes the trace")
def decompose(model, domain, questions: list[Question], k: int, temperature: float, seed: int, *,
              max_new_tokens: int = 0, batch_size: int | None = None,
              progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
    """k composed traces per question, all advanced one sub-question at a time in batches. A trace's
    log-prob and token count are the sums over its sub-answers as generated (`domain.sub_answer_tokens()`
    each); `finished` is False when a sub-answer was unreadable and the trace stopped without an answer."""
    batch_size = batch_size or 512
    sub_tokens = domain.sub_answer_tokens()
    traces = [domain.decompose(q) for q in questions for _ in range(k)]
    logprob = [0.0] * len(traces)
    tokens = [0] * len(traces)
    step = 0
    while live := [i for i, t in enumerate(traces) if t.next_prompt() is not None]:
        outs = model.sample([traces[i].next_prompt() for i in live], k=1, temperature=temperature,
                            max_new_tokens=sub_tokens, seed=derive_seed(seed, "sub-question", step),
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
