"""Distill's input: the training set round r+1 is fine-tuned on, built from the recorded selections.

data policy: `replace` (the newest selection), `accumulate` (every selection so far), `mix_real` (the newest
selection plus labeled base-train examples, `real_fraction` of the whole). formats: each kept sample as its
rationale (`cot`) and/or its answer line only (`direct`), as LMSI trains several formats per sample.
"""

from __future__ import annotations

import numpy as np

from harness.artifacts import RunStore, SelectedRow, read_jsonl
from harness.config import LoopConfig
from harness.domains.base import Splits


def training_set(store: RunStore, upto: int, loop: LoopConfig, domain, splits: Splits,
                 seed: int) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(prompt, completion) pairs for round `upto + 1`, and how many of each kind."""
    rounds = list(range(upto + 1)) if loop.data_policy == "accumulate" else [upto]
    rows = [row for r in rounds for row in read_jsonl(store.verified(r, "selected.jsonl"), SelectedRow)]
    pairs: list[tuple[str, str]] = []
    for row in rows:
        for fmt in loop.formats:
            if fmt == "cot":
                pairs.append((row.prompt, row.completion))
            elif row.answer is not None:  # an unparsed sample (select = "none") has no answer-only form
                pairs.append((row.prompt, domain.direct_completion(row.answer)))
    counts = {"selected": len(rows), "self_generated": len(pairs), "real": 0}
    if loop.data_policy == "mix_real" and loop.real_fraction > 0 and pairs:
        real = [e for e in splits.base_train if e.kind != "hinted"]  # base-train as the base learnt it
        n_real = min(len(real), int(np.floor(loop.real_fraction / (1 - loop.real_fraction) * len(pairs) + 0.5)))
        chosen = np.sort(np.random.default_rng(seed).choice(len(real), size=n_real, replace=False))
        pairs += [(real[i].question.prompt, real[i].completion) for i in chosen]
        counts["real"] = n_real
    return pairs, counts
