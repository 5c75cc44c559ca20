"""Self-rewarding selection: the model itself scores each candidate with a scoring prompt.

The score is the mean log-probability per token the model gives `judge_target` after `judge_prompt`, both
templates over the question's {prompt} and the candidate's {completion}. The defaults score the candidate
under its own question: the model's self-certainty. For an instruction-tuned model a verdict prompt fits,
e.g. judge_prompt = "{prompt}{completion}\nIs this correct? Answer:" and judge_target = " Yes".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.artifacts import SelectedRow
from harness.strategies.select import SelectionContext, UnlabeledSample, register_selector, top_scored


@register_selector("judge", uses_labels=False,
                   description="self-rewarding: the top judge_keep share of candidates by the model's own score")
def select_judge(samples: Sequence[UnlabeledSample], ctx: SelectionContext) -> list[SelectedRow]:
    with ctx.reporter.task(f"round {ctx.round}: judge", 1) as advance:
        scores = judge_scores(ctx.model, samples, ctx.loop.judge_prompt, ctx.loop.judge_target)
        advance(1)
    return top_scored(samples, scores, ctx.loop.judge_keep, ctx.round)


def judge_scores(model, samples: Sequence[UnlabeledSample], judge_prompt: str, judge_target: str) -> np.ndarray:
    prompts = [judge_prompt.format(prompt=s.prompt, completion=s.completion) for s in samples]
    targets = [judge_target.format(prompt=s.prompt, completion=s.completion) for s in samples]
    scored = model.score(prompts, targets, add_eos=False)
    return np.array([lp / n if n else -np.inf for lp, n in scored])
