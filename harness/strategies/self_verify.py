"""Self-verification: the learner checks each of its own candidates, and the ones it accepts are kept.

For every sample that parses, the round's model reads the domain's check prompt (`SelfChecks`: built from
the sample's prompt and completion only, never from the truth) and the selector compares the log-probability
it gives the two verdicts, `check_verdicts() = (accept, reject)`:

    score = log p(accept | check prompt) - log p(reject | check prompt)

The sample is kept when its score exceeds `margin` (`[loop] select_args = {margin = ...}`, default 0: the
model finds accept the more likely verdict). For the sorting domain the check prompt of a sample whose
completion ends in "A: a c d" under the question "S: d a c a" is "S: d a c a\\na1 c1 d1\\nOK? " (the answer
in the counting line's form), and the verdicts are "Y" and "N". Unlike `judge`, which ranks candidates by the model's confidence in them, the
check is a skill the base learned from labeled check examples, so it can disagree with the model's
confidence, and a planted misconception can be caught by it or hidden from it.

It is label-free: it gets `UnlabeledSample`s and a `LabelFreeDomain`, and never calls the hidden checker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.artifacts import SelectedRow
from harness.bounds import Float
from harness.domains.base import SelfChecks
from harness.strategies.select import SelectionContext, UnlabeledSample, register_selector, vote_shares


class SelfVerifyArgs(BaseModel):
    """`[loop] select_args` of self_verify."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin: Float = Field(0.0, ge=0.0, le=100.0, description="keep a candidate when log p(accept) - log "
                                                             "p(reject) after its check prompt exceeds this "
                                                             "(nats, 0 to 100)")


@register_selector("self_verify", uses_labels=False, requires=(SelfChecks,), args=SelfVerifyArgs,
                   description="the samples the learner's own check accepts (log p(accept) - log p(reject) > "
                               "margin after the domain's check prompt)")
def select_self_verify(samples: Sequence[UnlabeledSample], ctx: SelectionContext) -> list[SelectedRow]:
    margin = ctx.args.margin if ctx.args is not None else 0.0
    if ctx.reporter is None:
        scores = check_margins(ctx.model, ctx.domain, samples)
    else:
        with ctx.reporter.task(f"round {ctx.round}: self-check", 1) as advance:
            scores = check_margins(ctx.model, ctx.domain, samples)
            advance(1)
    return self_verified(samples, scores, margin, ctx.round)


def check_margins(model, domain, samples: Sequence[UnlabeledSample]) -> np.ndarray:
    """log p(accept) - log p(reject) after each parsed sample's check prompt; nan for unparsed samples (they
    are not scored)."""
    accept, reject = domain.check_verdicts()
    parsed = [i for i, s in enumerate(samples) if s.parsed_answer is not None]
    prompts = [domain.check_prompt(samples[i].prompt, samples[i].completion) for i in parsed]
    scored = model.score(prompts + prompts, [accept] * len(prompts) + [reject] * len(prompts), add_eos=False)
    out = np.full(len(samples), np.nan)
    for j, i in enumerate(parsed):
        out[i] = scored[j][0] - scored[len(parsed) + j][0]
    return out


def self_verified(samples: Sequence[UnlabeledSample], scores: Sequence[float] | np.ndarray, margin: float,
                  round: int) -> list[SelectedRow]:
    """Every parsed sample whose check score exceeds `margin`, in question and sample order; `score` is the
    check margin, `vote_share` the share of its question's samples giving the same answer."""
    shares = vote_shares(samples)
    kept = sorted((i for i, s in enumerate(samples) if s.parsed_answer is not None and np.isfinite(scores[i])
                   and scores[i] > margin), key=lambda i: (samples[i].question_id, samples[i].sample_index))
    return [SelectedRow(question_id=samples[i].question_id, round=round, sample_index=samples[i].sample_index,
                        prompt=samples[i].prompt, completion=samples[i].completion,
                        answer=samples[i].parsed_answer, score=float(scores[i]),
                        vote_share=shares[samples[i].question_id, samples[i].parsed_answer]) for i in kept]
