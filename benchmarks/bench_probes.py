"""The probe library over a synthetic run of over a million sample rows, timed phase by phase in one process
(issue 15: the whole library over 1M rows in at most 10 s, writing the run excluded).

    python benchmarks/bench_probes.py [--n-pool 25000] [--k 8] [--rounds 5] [--dir DIR] [--profile FILE]

Defaults: 25,000 pool questions x 8 samples x 5 rounds = 1,000,000 pool rows, plus (2,000 test + 1,000 ood)
x (1 greedy + 4 sampled) x 5 = 75,000 eval rows. The run (crank_rounds: every probe has something to
measure) is written once under the temp dir and reused while complete. Phases, all in this process:

- verify: sha256 of every file against round.json, as every real read does (the process-wide hash cache
  is cleared first, so a reused run is hashed again);
- open: RunView construction past the hashes (manifest, round records);
- parse: every table the library reads (pool and eval samples, reference NLLs, selections), JSON to arrays;
- probes: `run_probes` (every probe, fingerprints, the false-alarm correction), per probe from its ProbeInfo;
- write: probes.json and its per-item sidecar, as `loopprobe probes` writes them (into the benchmark's run).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from harness import integrity
from harness.artifacts import RunStore
from probes import RunView, run_probes, write_results
from probes.testing import crank_rounds, write_synthetic_run


def _run_dir(args: argparse.Namespace) -> Path:
    sizes = (args.n_pool, args.k, args.rounds, args.n_test, args.n_ood, args.eval_k, args.n_ref)
    if args.dir:
        return Path(args.dir)
    tag = hashlib.sha256(repr(sizes).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / "loopprobe-bench-probes" / f"run-{tag}"


def _written(path: Path, rounds: int) -> bool:
    try:
        return RunStore(path).complete_rounds() == list(range(rounds))
    except Exception:  # noqa: BLE001  (anything unreadable is rewritten)
        return False


def _parse_all(view: RunView) -> None:
    for r in view.rounds:
        view.samples(r)
        for split in ("test", "ood"):
            for decoding in ("greedy", "sample"):
                view.samples(r, split, decoding)
        view.reference_nll(r)
        view.selected(r)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-pool", type=int, default=25_000)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n-test", type=int, default=2_000)
    ap.add_argument("--n-ood", type=int, default=1_000)
    ap.add_argument("--eval-k", type=int, default=4)
    ap.add_argument("--n-ref", type=int, default=100)
    ap.add_argument("--dir", help="the run directory to write or reuse (default: under the temp dir)")
    ap.add_argument("--profile", help="write a cProfile of verify..write to this file")
    args = ap.parse_args()

    path = _run_dir(args)
    pool_rows = args.n_pool * args.k * args.rounds
    eval_rows = (args.n_test + args.n_ood) * (1 + args.eval_k) * args.rounds
    if _written(path, args.rounds):
        print(f"run: {path} (reused)")
    else:
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        write_synthetic_run(path, crank_rounds(args.rounds), n_pool=args.n_pool, k=args.k, n_test=args.n_test,
                            n_ood=args.n_ood, eval_k=args.eval_k, n_ref=args.n_ref)
        print(f"run: {path} (written in {time.perf_counter() - t0:.1f} s, not counted below)")
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"rows: {pool_rows:,} pool + {eval_rows:,} eval = {pool_rows + eval_rows:,} sample rows "
          f"({args.n_pool:,} questions x {args.k} x {args.rounds} rounds; {size / 1e6:.0f} MB on disk)")

    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    phases: dict[str, float] = {}
    integrity._hashed.clear()  # a real read hashes every file: so does this one, reused run or not
    t0 = time.perf_counter()
    RunStore(path).verify_all()
    phases["verify (sha256 of every file)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    view = RunView(path)  # its own verify_all hits the hashes just made
    phases["open (RunView, past the hashes)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _parse_all(view)
    phases["parse (rows -> tables)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = run_probes(view)
    phases["probes (run_probes, with correction)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_results(path, results)
    phases["write (probes.json + sidecar)"] = time.perf_counter() - t0
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)

    print(f"\n{'probe':<34} {'seconds':>8}")
    for info in sorted(results.probes, key=lambda p: -p.seconds):
        print(f"  {info.id:<32} {info.seconds:>8.2f}")
    measured = sum(p.seconds for p in results.probes)
    print(f"  {'(fingerprints, correction)':<32} {phases['probes (run_probes, with correction)'] - measured:>8.2f}")
    print(f"\n{'phase':<38} {'seconds':>8}")
    for name, s in phases.items():
        print(f"  {name:<36} {s:>8.2f}")
    total = sum(phases.values())
    print(f"  {'total':<36} {total:>8.2f}   ({(pool_rows + eval_rows) / total:,.0f} sample rows/s; "
          f"{results.correction.describe()}, {len(results.measurements)} measurements)")
    print(f"target: the library over {pool_rows + eval_rows:,} rows in <= 10 s: "
          f"{'met' if total <= 10 else 'not met'} ({total:.1f} s, hash verification included)")


if __name__ == "__main__":
    main()
