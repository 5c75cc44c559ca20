"""The probes' fast paths (probes._resample, the vectorised table build) give the very floats of the plain
ones: every resample, CI and table is compared bit for bit with the plain computation. No timing here:
benchmarks/bench_probes.py measures speed."""

from __future__ import annotations

import numpy as np
import pytest

import probes.library.confident_wrong  # noqa: F401  (registers ece, brier, auroc, selection_amplification)
from probes import _resample, stats

N = 3000  # above _resample.MIN_ITEMS: the fast paths run


def plain(monkeypatch) -> None:
    monkeypatch.setattr(_resample, "MIN_ITEMS", 10**9)


def same(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and a.tobytes() == b.tobytes()  # bits: -0.0 differs from 0.0, NaN equals NaN


def estimate_bits(e: stats.Estimate) -> bytes:
    return np.array([e.value, e.ci_low, e.ci_high]).tobytes()


rng = np.random.default_rng(5)
VECTORS = {
    "flags": (rng.random(N) < 0.3).astype(float),
    "eighths": rng.integers(0, 9, N) / 8,
    "signed differences": rng.integers(-1, 2, N).astype(float),
    "lengths": rng.integers(10, 90, N) / 8,
    "sixths (not dyadic)": rng.integers(0, 7, N) / 6,
    "entropies": rng.random(N) * np.log(8),
    "zeros": np.zeros(N),
    "negative zeros": -np.zeros(N) * (rng.random(N) < 0.5),
    "with nan": np.where(rng.random(N) < 0.01, np.nan, rng.random(N)),
    "huge": rng.integers(0, 2, N) * (2.0**45 + 1),
}


def test_exactly_summable_says_when_any_order_gives_one_sum():
    assert _resample.exactly_summable(VECTORS["eighths"], N)
    assert _resample.exactly_summable(VECTORS["signed differences"], N)
    assert not _resample.exactly_summable(VECTORS["sixths (not dyadic)"], N)
    assert not _resample.exactly_summable(VECTORS["negative zeros"], N)
    assert not _resample.exactly_summable(VECTORS["with nan"], N)
    assert not _resample.exactly_summable(VECTORS["huge"], N)  # N * (2**45 + 1) leaves 53 bits
    assert _resample.exactly_summable(np.array([2.0**-60, 1.0]), 4) is False  # 2**60 scale: too wide
    assert _resample.exactly_summable(np.array([0.5, 0.25, 3.0]), 4)


@pytest.mark.parametrize("name", VECTORS)
def test_resampled_means_are_the_plain_gather_bit_for_bit(name):
    v = VECTORS[name]
    idx = stats.resample_indices(N, seed=3)
    assert same(_resample.means(v, idx, (N, stats.N_BOOT, 3)), v[idx].mean(axis=1))


@pytest.mark.parametrize("name", VECTORS)
def test_mean_cis_and_paired_differences_are_unchanged(name, monkeypatch):
    v, other = VECTORS[name], VECTORS["eighths"]
    fast = [stats.mean_ci(v, seed=1), stats.paired_difference(other, v, seed=2)]
    plain(monkeypatch)
    slow = [stats.mean_ci(v, seed=1), stats.paired_difference(other, v, seed=2)]
    assert [estimate_bits(e) for e in fast] == [estimate_bits(e) for e in slow]


def _calibration_columns(k: int) -> np.ndarray:
    share = rng.integers(1, k + 1, N) / k
    right = (rng.random(N) < share).astype(float)
    level = np.unique(share, return_inverse=True)[1].reshape(-1).astype(float)
    return np.stack([share, right, level], axis=1)


@pytest.mark.parametrize("k", [8, 6])  # shares of 6 votes are not dyadic: the plain stack, same floats
def test_sum_form_statistics_are_unchanged(k, monkeypatch):
    cols, later = _calibration_columns(k), _calibration_columns(k)
    later[:, 2] = np.minimum(later[:, 2], 3)  # another number of levels in the other half
    counts = np.stack([rng.integers(0, 9, N), rng.integers(0, 5, N), np.full(N, 8), rng.integers(0, 9, N)],
                      axis=1).astype(float)
    names = ("ece", "brier", "auroc")

    def run() -> list[bytes]:
        out = [estimate_bits(e) for e in stats.bootstrap_many(cols, {n: n for n in names}, seed=4).values()]
        out += [estimate_bits(e) for e in stats.bootstrap_many(
            np.concatenate([cols, later], axis=1), {n: f"difference:{n}" for n in names}, seed=4).values()]
        out += [estimate_bits(stats.bootstrap(counts, s, seed=6)) for s in
                ("ratio_of_sums", "selection_amplification", "difference:ratio_of_sums", "skill_score")]
        return out

    fast = run()
    plain(monkeypatch)
    assert fast == run()


def _tables_equal(a, b) -> bool:
    arrays = ("answers", "parsed", "correct", "logprob", "n_tokens", "finished", "truth")
    return (a.question_ids == b.question_ids and a.completions == b.completions
            and all(getattr(a, f).dtype == getattr(b, f).dtype and same(getattr(a, f), getattr(b, f)) for f in arrays))


def test_tables_and_rows_read_as_row_by_row(tmp_path):
    from harness.artifacts import DamagedFile, read_json_rows
    from probes._view import _json_rows, _table, _table_by_rows
    from probes.testing import crank_rounds, write_synthetic_run

    run = write_synthetic_run(tmp_path / "run", crank_rounds(2), n_pool=40, n_test=10, n_ood=5)
    path = run / "round-001" / "samples.jsonl"
    rows = _json_rows(path)
    assert rows == read_json_rows(path)
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    for case in (rows, shuffled, shuffled + shuffled[:3]):  # the last: rows recorded twice (the later wins)
        qids = sorted({r["question_id"] for r in case})
        k = max(r["sample_index"] for r in case) + 1
        assert _tables_equal(_table(case), _table_by_rows(case, qids, {q: i for i, q in enumerate(qids)}, k))
    lines = path.read_text().splitlines(keepends=True)
    for damage in ('{"a": [1\n', "[1, 2]\n", "\n", '{"x": 1}, {"y": 2}\n'):
        bad = tmp_path / "bad.jsonl"
        bad.write_text("".join(lines[:3] + [damage] + lines[3:]))
        with pytest.raises(DamagedFile, match=r"bad.jsonl:4: "):
            _json_rows(bad)
