"""A read-only, lazily loaded view of a run's artifacts as numpy arrays, aligned by item across rounds.

Probes never parse files: they ask the view for a round's table of samples and get arrays whose rows follow
one fixed item order (questions sorted by id, samples by index), so two rounds compare item by item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from harness.artifacts import RunError, RunStore, read_json_rows

MISSING = int(np.iinfo(np.int64).min)
_INTEGERS = 2**62  # canonical integers in [-2**62, 2**62) are their own code
_TEXTS: dict[int, str] = {}  # code -> canonical answer, for every code made in this process


def answer_code(answer: str | int | None) -> int:
    """The int64 code of a canonical answer, so probes compare answers as numpy arrays: equal codes exactly
    when the canonical strings are equal (for non-integers, up to a 2**-62 chance of a hash collision). A
    canonical integer ("861", "-3") within +-2**62 is its own code; any other string is hashed into the codes
    outside that range; None (unparsed) is MISSING. Records before schema 3 held integers: read the same."""
    if answer is None:
        return MISSING
    text = str(answer)
    try:
        value = int(text)
        if str(value) == text and -_INTEGERS <= value < _INTEGERS:
            return value
    except ValueError:
        pass
    h = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    low = h % (_INTEGERS - 1)
    code = _INTEGERS + low if h >> 63 else -_INTEGERS - 1 - low
    _TEXTS[code] = text
    return code


def answer_text(code: int) -> str | None:
    """The canonical answer of a code made by `answer_code` (None for MISSING)."""
    code = int(code)
    if code == MISSING:
        return None
    return _TEXTS.get(code, str(code))


@dataclass(frozen=True)
class SampleTable:
    """Decodings of one split in one round: `n_items` questions x `k` decodings (a dense grid).

    answers: int64 [n, k], the `answer_code` of each canonical answer, `missing` where unparsed (equal codes
    are equal answers; `answer_text` turns a code back into the answer); parsed: bool [n, k]; correct: bool
    [n, k]; logprob: float [n, k]; n_tokens: int [n, k]; truth: int64 [n] (codes); completions: n lists of k str.
    """

    question_ids: tuple[str, ...]
    answers: np.ndarray
    parsed: np.ndarray
    correct: np.ndarray
    logprob: np.ndarray
    n_tokens: np.ndarray
    finished: np.ndarray
    truth: np.ndarray
    completions: tuple[tuple[str, ...], ...]

    missing = MISSING

    @property
    def n_items(self) -> int:
        return len(self.question_ids)

    @property
    def k(self) -> int:
        return self.answers.shape[1] if self.answers.ndim == 2 else 0

    def restrict(self, question_ids) -> SampleTable:
        """The rows of the given question ids, in that order (for pairing two rounds)."""
        index = {q: i for i, q in enumerate(self.question_ids)}
        rows = np.array([index[q] for q in question_ids], dtype=np.int64)
        return SampleTable(tuple(question_ids), self.answers[rows], self.parsed[rows], self.correct[rows],
                           self.logprob[rows], self.n_tokens[rows], self.finished[rows], self.truth[rows],
                           tuple(self.completions[i] for i in rows))


def _codes(values: list) -> np.ndarray:
    """answer_code of each value, computed once per distinct value (a pool repeats few answers)."""
    memo: dict = {}
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        key = (type(v), v)  # 1 and "1" (or 1.0) are different answers
        code = memo.get(key)
        if code is None:
            code = memo[key] = answer_code(v)
        out[i] = code
    return out


def _table(rows: list[dict]) -> SampleTable:
    if not rows:
        e = np.zeros((0, 0))
        return SampleTable((), e.astype(np.int64), e.astype(bool), e.astype(bool), e, e.astype(np.int64),
                           e.astype(bool), np.zeros(0, np.int64), ())
    question = [r["question_id"] for r in rows]
    qids = sorted(set(question))
    qindex = {q: i for i, q in enumerate(qids)}
    k = max(r["sample_index"] for r in rows) + 1
    n = len(qids)
    if len(rows) != n * k:  # a row missing, or one recorded twice: the row-by-row build says which
        return _table_by_rows(rows, qids, qindex, k)
    i = np.fromiter((qindex[q] for q in question), np.int64, len(rows))
    j = np.fromiter((r["sample_index"] for r in rows), np.int64, len(rows))
    cell = i * k + j
    present = np.zeros(n * k, dtype=bool)
    present[cell] = True
    if (j < 0).any() or not present.all():
        return _table_by_rows(rows, qids, qindex, k)
    # every cell exactly once: each field is a permutation of the rows into the [n, k] grid

    def grid(values, dtype) -> np.ndarray:
        out = np.empty(n * k, dtype=dtype)
        out[cell] = values
        return out.reshape(n, k)

    answers = grid(_codes([r["parsed_answer"] for r in rows]), np.int64)
    correct = grid(np.fromiter((r["correct"] for r in rows), bool, len(rows)), bool)
    logprob = grid(np.fromiter((r["sum_logprob"] for r in rows), np.float64, len(rows)), np.float64)
    n_tokens = grid(np.fromiter((r["n_tokens"] for r in rows), np.int64, len(rows)), np.int64)
    finished = grid(np.fromiter((r["finished"] for r in rows), bool, len(rows)), bool)
    last = len(rows) - 1 - np.unique(i[::-1], return_index=True)[1]  # each question's last row gives its truth
    truth = _codes([r["truth"] for r in rows])[last]
    flat: list[str] = [""] * (n * k)
    for c, r in zip(cell.tolist(), rows):
        flat[c] = r["completion"]
    completions = tuple(tuple(flat[x * k:(x + 1) * k]) for x in range(n))
    return SampleTable(tuple(qids), answers, answers != SampleTable.missing, correct, logprob, n_tokens,
                       finished, truth, completions)


def _table_by_rows(rows: list[dict], qids: list[str], qindex: dict[str, int], k: int) -> SampleTable:
    """The table built row by row (later rows overwrite earlier ones): for grids that are not whole."""
    n = len(qids)
    answers = np.full((n, k), SampleTable.missing, dtype=np.int64)
    correct = np.zeros((n, k), dtype=bool)
    logprob = np.full((n, k), np.nan)
    n_tokens = np.zeros((n, k), dtype=np.int64)
    finished = np.zeros((n, k), dtype=bool)
    present = np.zeros((n, k), dtype=bool)
    truth = np.zeros(n, dtype=np.int64)
    completions = [[""] * k for _ in range(n)]
    for r in rows:
        i, j = qindex[r["question_id"]], r["sample_index"]
        present[i, j] = True
        answers[i, j] = answer_code(r["parsed_answer"])
        correct[i, j] = r["correct"]
        logprob[i, j] = r["sum_logprob"]
        n_tokens[i, j] = r["n_tokens"]
        finished[i, j] = r["finished"]
        truth[i] = answer_code(r["truth"])
        completions[i][j] = r["completion"]
    if not present.all():
        raise RunError("samples do not form a full question x sample grid; the run is damaged")
    return SampleTable(tuple(qids), answers, answers != SampleTable.missing, correct, logprob, n_tokens,
                       finished, truth, tuple(tuple(c) for c in completions))


def _json_rows(path: Path) -> list[dict]:
    """The rows `read_json_rows` reads, parsed as one JSON array (one parse, its object keys shared: about
    twice as fast as a parse per line). Unless that gives one JSON object per line, the file is read line by
    line, whose error names the damaged line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        rows = None
    if rows is None or len(rows) != len(lines) or not all(type(x) is dict for x in rows):
        return read_json_rows(path)
    return rows


class RunView:
    """What a probe may see of a run. It has no method that writes."""

    def __init__(self, root: Path | str):
        self._store = RunStore(Path(root))
        self.manifest = self._store.read_manifest()
        self._store.verify_all()  # every verdict over the run rests on intact files: checked once per process
        self.rounds: tuple[int, ...] = tuple(self._store.complete_rounds())
        if not self.rounds:
            raise RunError(f"{root}: no complete round yet; run or resume it with `loopprobe run --out {root}`")
        self._cache: dict[tuple, object] = {}
        # read once (checksums verified): the recorded hashes are what probes' input fingerprints are made of
        self._round_records = {r: self._store.read_round(r).model_dump() for r in self.rounds}
        failed = self._store.failed_round()
        # rounds whose fine-tune failed: rejected (evaluated with the previous weights) or failed (the run stopped)
        self.bad_rounds: dict[int, str] = {
            r: f"round {r} {rec['status']}: {rec['reason']}" for r, rec in self._round_records.items()
            if rec["status"] in ("failed", "rejected")}
        self.stalled_rounds = [r for r, rec in self._round_records.items() if rec["status"] == "no_update"]
        if failed is not None:
            self.bad_rounds[failed.round] = f"round {failed.round} failed: {failed.reason}"

    @property
    def name(self) -> str:
        return self._store.root.name

    @property
    def root(self) -> Path:
        """The run directory, for probes that read files of their own there (e.g. inspect logs). A pooled
        view has none: iterate `run.runs` to work for both."""
        return self._store.root

    @property
    def runs(self) -> tuple[RunView, ...]:
        """The runs behind this view: itself (a PooledRunView has one per seed)."""
        return (self,)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The item-id prefix of each of `runs`: none for a single run."""
        return ("",)

    @cached_property
    def config(self) -> dict:
        return self.manifest.config

    def _rows(self, r: int, file: str) -> list[dict]:
        key = ("rows", r, file)
        if key not in self._cache:
            if r not in self.rounds:
                raise RunError(f"{self._store.root}: round {r} is not complete (complete: {list(self.rounds)})")
            self._cache[key] = _json_rows(self._store.verified(r, file))
        return self._cache[key]  # type: ignore[return-value]

    def path(self, r: int, name: str) -> Path:
        """A file of round r (e.g. `inspect/<task>.eval`), checked against the sha256 its round.json records."""
        return self._store.verified(r, name)

    def samples(self, r: int, split: str = "pool", decoding: str = "sample") -> SampleTable:
        """Pool samples (split "pool"), or test/ood decodings ("greedy" or "sample") of round r."""
        key = ("table", r, split, decoding)
        if key not in self._cache:
            file = "samples.jsonl" if split == "pool" else "eval.jsonl"
            rows = [x for x in self._rows(r, file) if x["split"] == split and x["decoding"] == decoding]
            self._cache[key] = _table(rows)
        return self._cache[key]  # type: ignore[return-value]

    def reference_nll(self, r: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """(text ids sorted, summed NLL per text, token count per text) for round r."""
        key = ("reference", r)
        if key not in self._cache:
            rows = sorted(self._rows(r, "reference.jsonl"), key=lambda x: x["text_id"])
            self._cache[key] = (tuple(x["text_id"] for x in rows), np.array([x["nll"] for x in rows]),
                                np.array([x["n_tokens"] for x in rows]))
        return self._cache[key]  # type: ignore[return-value]

    def selected(self, r: int) -> list[dict]:
        """The training set round r built (rows of selected.jsonl), question id and sample index first. Under
        policy-gradient distillation every sample is recorded with its advantage; the rows here are those the
        update pushes up (advantage > 0), so label-noise and direction probes read it as a selection."""
        return [row for row in self._rows(r, "selected.jsonl") if row.get("advantage", 1.0) > 0]

    def rewards(self, r: int) -> dict[str, float]:
        """Under policy-gradient distillation, each pool question's mean reward over its samples in round r
        (what the update maximises: the loop's proxy); empty when the run recorded no rewards."""
        sums: dict[str, list[float]] = {}
        for row in self._rows(r, "selected.jsonl"):
            if row.get("reward") is not None:
                sums.setdefault(row["question_id"], []).append(row["reward"])
        return {q: float(np.mean(v)) for q, v in sums.items()}

    def round_record(self, r: int) -> dict:
        """round.json of round r (summary, counts, training stats, sha256 of each file)."""
        return self._round_records[r]


def _concat(tables: list[SampleTable], prefixes: list[str]) -> SampleTable:
    tables_prefixes = [(t, p) for t, p in zip(tables, prefixes) if t.n_items]
    if not tables_prefixes:
        return tables[0]
    ks = {t.k for t, _ in tables_prefixes}
    if len(ks) > 1:
        raise RunError(f"cannot pool runs with different samples per question ({sorted(ks)})")
    ts = [t for t, _ in tables_prefixes]
    answers, parsed, correct, logprob, n_tokens, finished, truth = (
        np.concatenate([getattr(t, f) for t in ts]) for f in
        ("answers", "parsed", "correct", "logprob", "n_tokens", "finished", "truth"))
    return SampleTable(
        tuple(p + q for t, p in tables_prefixes for q in t.question_ids),
        answers, parsed, correct, logprob, n_tokens, finished, truth,
        tuple(c for t in ts for c in t.completions))


class PooledRunView:
    """Several runs of one condition (different seeds) seen as one: items are the union of every run's
    items, ids prefixed with the run's name, so probes pool their statistics over seeds unchanged."""

    def __init__(self, views: list[RunView]):
        if not views:
            raise RunError("nothing to pool: no runs given")
        self.views = views
        shared = set(views[0].rounds).intersection(*(v.rounds for v in views[1:]))
        self.rounds: tuple[int, ...] = tuple(sorted(shared))
        if not self.rounds:
            raise RunError("the pooled runs share no complete round")
        self._prefixes = [f"{v.name}/" for v in views]
        self._cache: dict[tuple, object] = {}
        self.bad_rounds = {r: f"{v.name}: {why}" for v in views for r, why in v.bad_rounds.items()}

    @property
    def name(self) -> str:
        return "+".join(v.name for v in self.views)

    @property
    def runs(self) -> tuple[RunView, ...]:
        """The runs pooled, one per seed (as `RunView.runs`, so a probe that reads files of its own works on
        both: `for prefix, one in zip(run.prefixes, run.runs)`)."""
        return tuple(self.views)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The item-id prefix of each of `runs`: "<run directory name>/" (e.g. "seed-0/")."""
        return tuple(self._prefixes)

    @property
    def root(self) -> Path:
        raise AttributeError("a pooled view (several seeds) has no single root: iterate `run.runs` (each a "
                             "RunView with its own root) with `run.prefixes`")

    @property
    def config(self) -> dict:
        return self.views[0].config

    def samples(self, r: int, split: str = "pool", decoding: str = "sample") -> SampleTable:
        """Every run's table of round r (as RunView.samples), stacked: ids prefixed with the run's name."""
        key = ("table", r, split, decoding)
        if key not in self._cache:
            self._cache[key] = _concat([v.samples(r, split, decoding) for v in self.views], self._prefixes)
        return self._cache[key]  # type: ignore[return-value]

    def reference_nll(self, r: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """Every run's reference-text NLLs of round r (as RunView.reference_nll), ids prefixed."""
        parts = [v.reference_nll(r) for v in self.views]
        return (tuple(p + i for (ids, _, _), p in zip(parts, self._prefixes) for i in ids),
                np.concatenate([nll for _, nll, _ in parts]), np.concatenate([n for _, _, n in parts]))

    def rewards(self, r: int) -> dict[str, float]:
        """Every run's mean reward per pool question in round r (as RunView.rewards), question ids prefixed."""
        return {p + q: v for view, p in zip(self.views, self._prefixes) for q, v in view.rewards(r).items()}

    def selected(self, r: int) -> list[dict]:
        """Every run's training set of round r (as RunView.selected), question ids prefixed."""
        return [{**row, "question_id": p + row["question_id"]}
                for v, p in zip(self.views, self._prefixes) for row in v.selected(r)]
