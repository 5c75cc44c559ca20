"""Distill's input: the training set round r+1 is fine-tuned on, built from the recorded selections.

data policy: `replace` (the newest selection), `accumulate` (every selection so far), `mix_real` (the newest
selection plus labeled base-train examples, `real_fraction` of the whole). formats: each kept sample as its
rationale (`cot`) and/or its answer line only (`direct`), as LMSI trains several formats per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from harness.artifacts import RunError, RunStore, SelectedRow, read_jsonl
from harness.domains.base import Splits
from harness.models.base import Rollout
from harness.registry import lookup, register

if TYPE_CHECKING:
    from harness.config import LoopConfig

DataPolicy = Callable[..., tuple[list[tuple[str, str]], dict[str, int]]]


def register_data_policy(name: str, description: str = "") -> Callable[[DataPolicy], DataPolicy]:
    """Register a data policy: `(store, upto, loop, domain, splits, seed) -> (pairs, counts)`, the
    (prompt, completion) pairs round `upto + 1` trains on and how many of each kind ("selected",
    "self_generated", "real")."""
    return register("data_policy", name, description=description)


def training_set(store: RunStore, upto: int, loop: LoopConfig, domain, splits: Splits,
                 seed: int) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(prompt, completion) pairs for round `upto + 1`, and how many of each kind: the run's data policy."""
    return lookup("data_policy", loop.data_policy).obj(store, upto, loop, domain, splits, seed)


def rollouts(store: RunStore, upto: int, loop: LoopConfig) -> tuple[list[Rollout], dict[str, int]]:
    """Policy gradient: round `upto`'s samples as recorded with their advantages, the rollouts round
    `upto + 1`'s update weighs, and how many were kept and dropped. Without a KL penalty a sample whose
    advantage is 0 (its question's rewards were all equal) adds nothing to the gradient; it is dropped, as
    DAPO's dynamic sampling drops such groups, so every step's batch carries signal."""
    rows = read_jsonl(store.verified(upto, "selected.jsonl"), SelectedRow)
    if any(row.advantage is None for row in rows):
        raise RunError(f"{store.round_dir(upto) / 'selected.jsonl'}: rows without an advantage; this run's round "
                       f"{upto} was not recorded for distill = \"policy_gradient\" (start a new --out)")
    kept = [Rollout(row.prompt, row.completion, float(row.advantage or 0.0)) for row in rows
            if loop.kl_beta > 0 or row.advantage != 0]
    return kept, {"rollouts": len(kept), "zero_advantage": len(rows) - len(kept)}


def selected_pairs(store: RunStore, rounds: list[int], loop: LoopConfig,
                   domain) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The recorded selections of `rounds`, each kept sample in every one of the run's formats."""
    rows = [row for r in rounds for row in read_jsonl(store.verified(r, "selected.jsonl"), SelectedRow)]
    pairs: list[tuple[str, str]] = []
    for row in rows:
        for fmt in loop.formats:
            if fmt == "cot":
                pairs.append((row.prompt, row.completion))
            elif row.answer is not None:  # an unparsed sample (select = "none") has no answer-only form
                pairs.append((row.prompt, domain.direct_completion(row.answer)))
    return pairs, {"selected": len(rows), "self_generated": len(pairs), "real": 0}


@register_data_policy("replace", "the newest selection")
def replace(store, upto, loop, domain, splits, seed):
    return selected_pairs(store, [upto], loop, domain)


@register_data_policy("accumulate", "every selection so far")
def accumulate(store, upto, loop, domain, splits, seed):
    return selected_pairs(store, list(range(upto + 1)), loop, domain)


@register_data_policy("mix_real", "the newest selection plus labeled base-train data, real_fraction of the whole")
def mix_real(store, upto, loop, domain, splits, seed):
    pairs, counts = selected_pairs(store, [upto], loop, domain)
    if loop.real_fraction > 0 and pairs:
        real = [e for e in splits.base_train if e.kind != "hinted"]  # base-train as the base learnt it
        n_real = min(len(real), int(np.floor(loop.real_fraction / (1 - loop.real_fraction) * len(pairs) + 0.5)))
        chosen = np.sort(np.random.default_rng(seed).choice(len(real), size=n_real, replace=False))
        pairs += [(real[i].question.prompt, real[i].completion) for i in chosen]
        counts["real"] = n_real
    return pairs, counts
