"""Small hand-built and synthetic runs shared by the probe tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.artifacts import Manifest, ReferenceRow, RunStore, SampleRow
from harness.strategies.select import self_consistency, strip_labels
from harness.summary import record_round
from probes import RunView, get_probe
from probes.testing import RoundSpec, write_synthetic_run

SMALL = {"n_pool": 160, "n_test": 100, "n_ood": 10, "n_ref": 5}
CW_PROBES = ("cw.rate", "cw.transitions", "cw.calibration", "cw.label_noise", "cw.agreement_vs_accuracy")


def hand_run(path: Path, rounds: list[list[list[int | None]]], truth: int = 10, tau: float = 0.75,
             test_right: list[list[bool]] | None = None) -> Path:
    """A run whose round r gives question q the answers rounds[r][q] (all questions have `truth`);
    selection, summary and files are the loop's own. test_right[r]: greedy correctness of test items."""
    store = RunStore(path)
    store.open(Manifest(config={"loop": {"tau": tau}}, config_hash="hand", seed=0, base_model={}, versions={},
                        git_revision=None, created="test"))
    for r, per_q in enumerate(rounds):
        def row(qid, split, j, answer, decoding="sample", r=r):
            return SampleRow(question_id=qid, split=split, round=r, sample_index=j, decoding=decoding, prompt="p",
                             completion=f"A: {answer}", parsed_answer=None if answer is None else str(answer),
                             sum_logprob=-1.0, n_tokens=3, finished=True, truth=str(truth), correct=answer == truth)

        samples = [row(f"q{i}", "pool", j, a) for i, answers in enumerate(per_q) for j, a in enumerate(answers)]
        evals = [row(f"t{i}", "test", 0, truth if ok else truth + 1, "greedy")
                 for i, ok in enumerate((test_right or [[]] * len(rounds))[r])]
        selected = self_consistency(strip_labels(samples), tau, r)
        reference = [ReferenceRow(text_id="ref:0", round=r, nll=1.0, n_tokens=2)]
        record_round(store, r, evals=evals, reference=reference, samples=samples, selected=selected)
    return path


# states at tau 0.75 with k = 4 and truth 10
RC, RU, WU, WC = [10, 10, 10, 11], [10, 10, 11, 12], [11, 11, 10, 12], [11, 11, 11, 10]
TIE, NONE = [11, 10, 11, 10], [None] * 4  # a tie goes to the first-seen answer (11: wrong); no parse: wrong
ROUND0 = [WC, WC, WC, RC, RU, NONE, RC, WU, RU]
ROUND1 = [WC, WC, RC, WC, TIE, RU, RC, WC, RU]


def measure(run: RunView, pid: str, **params) -> dict:
    return {m.name: m for m in get_probe(pid)(**params).measure(run)}


@contextmanager
def synthetic(rounds: list[RoundSpec], seed: int = 0) -> Iterator[RunView]:
    """A small synthetic run in a temporary directory (hypothesis examples cannot use tmp_path)."""
    with tempfile.TemporaryDirectory(prefix="loopprobe-") as d:
        yield RunView(write_synthetic_run(Path(d) / "run", rounds, seed=seed, **SMALL))


