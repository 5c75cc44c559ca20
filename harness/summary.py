"""Per-round summary numbers for round.json and the CLI table (descriptive only: verdicts are for probes)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.artifacts import (
    ReferenceRow,
    RoundRecord,
    RunStore,
    SampleRow,
    SelectedRow,
    write_jsonl,
)
from harness.strategies.select import majority_vote

# A pool question is "confident" when its majority answer has at least this share of the k votes. One
# definition for the round table, the confident-wrong probes (their `tau` parameter's default), reports and
# compare; never the loop's selection `tau`, which is a treatment that conditions vary.
CONFIDENT_SHARE = 0.6


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def summarise_round(samples: Sequence[SampleRow], evals: Sequence[SampleRow], selected: Sequence[SelectedRow],
                    reference: Sequence[ReferenceRow]) -> tuple[dict[str, float | None], dict[str, int]]:
    # policy gradient records every sample; its selection is what the update pushes up (advantage > 0)
    selected = [row for row in selected if row.advantage is None or row.advantage > 0]
    by_q: dict[str, list[SampleRow]] = {}
    for s in samples:
        by_q.setdefault(s.question_id, []).append(s)
    votes = {q: majority_vote([s.parsed_answer for s in rows]) for q, rows in by_q.items()}
    truth = {q: rows[0].truth for q, rows in by_q.items()}
    majority_right = {q: v.answer == truth[q] for q, v in votes.items()}
    kept_q = {row.question_id for row in selected}
    confident = [q for q, v in votes.items() if v.answer is not None and v.share >= CONFIDENT_SHARE]

    def acc(split: str, decoding: str) -> float:
        return _mean(r.correct for r in evals if r.split == split and r.decoding == decoding)

    metrics = {
        "test_accuracy": acc("test", "greedy"),
        "test_pass1": acc("test", "sample"),
        "ood_accuracy": acc("ood", "greedy"),
        "ood_pass1": acc("ood", "sample"),
        "pool_pass1": _mean(s.correct for s in samples),
        "pool_majority_accuracy": _mean(majority_right.values()),
        "pool_kept_share": len(kept_q) / max(1, len(by_q)),
        "kept_wrong_share": _mean(not majority_right[q] for q in kept_q),
        "confident_wrong_share": _mean(q in confident and not majority_right[q] for q in by_q),
        "mean_vote_share": _mean(v.share for v in votes.values()),
        "mean_answer_entropy": _mean(v.entropy for v in votes.values()),
        "pool_unparsed_share": _mean(s.parsed_answer is None for s in samples),
        "mean_completion_tokens": _mean(s.n_tokens for s in samples),
        "reference_nll_per_token": sum(r.nll for r in reference) / max(1, sum(r.n_tokens for r in reference)),
    }
    metrics["selected_wrong_share"] = _mean(row.answer != truth[row.question_id] for row in selected)
    recorded: dict[str, float | None] = {k: (None if np.isnan(v) else v) for k, v in metrics.items()}  # JSON has no NaN
    counts = {"pool_questions": len(by_q), "pool_samples": len(samples), "kept_questions": len(kept_q),
              "kept_samples": len(selected),
              "kept_rationalizations": sum(row.source == "rationalization" for row in selected), "eval_rows": len(evals), "reference_texts": len(reference)}
    return recorded, counts


def record_round(store: RunStore, r: int, *, evals: Sequence[SampleRow], reference: Sequence[ReferenceRow],
                 samples: Sequence[SampleRow], selected: Sequence[SelectedRow],
                 training: dict | None = None, seconds: dict[str, float] | None = None,
                 status: str = "complete", reason: str | None = None) -> RoundRecord:
    """Write a round's files atomically, then its round.json (summary, the sha256 of every file of the round,
    checkpoint included) last, marking it recorded."""
    files = {"eval.jsonl": evals, "reference.jsonl": reference, "samples.jsonl": samples,
             "selected.jsonl": selected}
    for name, rows in files.items():
        write_jsonl(store.round_dir(r) / name, rows)
    metrics, counts = summarise_round(samples, evals, selected, reference)
    record = RoundRecord(round=r, status=status, reason=reason, metrics=metrics, counts=counts,  # type: ignore[arg-type]
                         training=training, seconds=seconds or {}, files=store.round_files(r))
    store.finish_round(record)
    return record
