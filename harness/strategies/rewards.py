"""Rewards for policy-gradient distillation (`[loop] distill = "policy_gradient"`): a reward scores every
sample of a round, GRPO turns the scores into advantages within each question's group of k, and the round's
`selected.jsonl` records every sample with its reward and advantage (what the next round's update weighs).

A reward is a function `(samples, context) -> rewards` (one float per sample, in order) registered with
`@register_reward`, which records whether it reads labels, exactly as selectors do: a label-free reward gets
`UnlabeledSample`s and a `SelectionContext`, a labeled one `SampleRow`s and a `LabeledContext`.

Built-ins, after the papers that train with them:
- `majority` (TTRL, SRT): 1 when the sample's answer is its question's majority vote, else 0;
- `verifier` (RLVR): 1 when the domain's checker accepts the answer, else 0;
- `noisy_verifier`: the verifier with each verdict flipped with probability `flip` (an imperfect reward model);
- `self_certainty` (Intuitor): the model's mean KL(uniform || next-token distribution) over the completion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.artifacts import SampleRow, SelectedRow
from harness.registry import register
from harness.strategies.select import UnlabeledSample, group_by_question, majority_vote, strip_labels, vote_shares

ADVANTAGE_EPS = 1e-4  # TRL's GRPO: advantages = (r - mean) / (std + 1e-4)

Reward = Callable[[Sequence[Any], Any], Sequence[float]]


def register_reward(name: str, *, uses_labels: bool, args: type | None = None, needs: tuple[str, ...] = (),
                    description: str = "") -> Callable[[Reward], Reward]:
    """Register a reward. `uses_labels`: it gets `SampleRow`s and a `LabeledContext`, otherwise
    `UnlabeledSample`s and a `SelectionContext`. `args`: a pydantic model for `[loop] reward_args`. `needs`:
    methods the model must have (`self_certainty`), checked before a run starts."""
    return register("reward", name, uses_labels=uses_labels, args=args, needs=needs, seed_label=f"reward-{name}",
                    description=description)


def group_advantages(rewards: Sequence[float] | np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """GRPO's advantages: each reward minus its group's mean, over the group's sample standard deviation
    (Bessel-corrected, as TRL's `nanstd`) plus 1e-4. A group whose rewards are all equal gets 0 (it carries no
    signal), as does a group of one sample."""
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.zeros_like(rewards)
    index: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        index.setdefault(g, []).append(i)
    for members in index.values():
        r = rewards[members]
        if len(r) > 1:
            out[members] = (r - r.mean()) / (r.std(ddof=1) + ADVANTAGE_EPS)
    return out


def reward_selection(samples: Sequence[SampleRow], rewards: Sequence[float], round: int) -> list[SelectedRow]:
    """Every sample as a `selected.jsonl` row with its reward and advantage, in sample order."""
    values = np.asarray(rewards, dtype=np.float64)
    if values.shape != (len(samples),) or not np.isfinite(values).all():
        raise ValueError(f"a reward must give one finite float per sample ({len(samples)}), got shape "
                         f"{values.shape}{'' if np.isfinite(values).all() else ', some not finite'}")
    advantages = group_advantages(values, [s.question_id for s in samples])
    shares = vote_shares(strip_labels(samples))
    return [SelectedRow(question_id=s.question_id, round=round, sample_index=s.sample_index, prompt=s.prompt,
                        completion=s.completion, answer=s.parsed_answer,
                        vote_share=shares[s.question_id, s.parsed_answer], reward=float(r), advantage=float(a))
            for s, r, a in zip(samples, values, advantages)]


@register_reward("majority", uses_labels=False,
                 description="TTRL, SRT: 1 when the sample's answer is its question's majority vote, else 0")
def majority_reward(samples: Sequence[UnlabeledSample], ctx: Any) -> list[float]:
    winner = {qid: majority_vote([s.parsed_answer for s in group]).answer
              for qid, group in group_by_question(samples).items()}
    return [float(s.parsed_answer is not None and s.parsed_answer == winner[s.question_id]) for s in samples]


@register_reward("verifier", uses_labels=True, description="RLVR: 1 when the domain's checker accepts the answer")
def verifier_reward(samples: Sequence[SampleRow], ctx: Any) -> list[float]:
    return [float(s.correct) for s in samples]


class NoisyVerifierArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    flip: float = Field(0.2, ge=0, le=1, description="probability each verdict is flipped")


@register_reward("noisy_verifier", uses_labels=True, args=NoisyVerifierArgs,
                 description="the verifier with each verdict flipped with probability flip (one seeded draw each)")
def noisy_verifier_reward(samples: Sequence[SampleRow], ctx: Any) -> list[float]:
    flips = np.random.default_rng(ctx.seed).random(len(samples)) < ctx.args.flip
    return [float(s.correct != bool(f)) for s, f in zip(samples, flips)]


@register_reward("self_certainty", uses_labels=False, needs=("self_certainty",),
                 description="Intuitor: the model's mean KL(uniform || next-token distribution) over the completion")
def self_certainty_reward(samples: Sequence[UnlabeledSample], ctx: Any) -> list[float]:
    return list(ctx.model.self_certainty([s.prompt for s in samples], [s.completion for s in samples]))
