"""Parallel suite runs: a two-arm suite (the shipped smoke suite's settings, tau 0.5 vs 0.9) run sequentially
and with `workers=2`, side by side in one process, from a warm base-model cache (the base is trained or
loaded first, untimed). Prints both wall times, the speed-up, and whether the artifacts are the same (timings aside).

    python benchmarks/bench_workers.py [--rounds N]

Run it on an otherwise idle machine: the parallel run needs both cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import gemm_rate  # benchmarks/_machine.py

from harness.app.shipped import shipped_suites
from harness.app.suite import parse_suite
from harness.app.suite_runner import run_suite
from harness.models.tiny.pretrain import default_cache_dir
from tests.test_reliability import snapshot


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="base-model cache (default: "
                        "loopprobe's, so a cached smoke base is reused)")
    args = parser.parse_args()
    smoke = shipped_suites()["smoke"].read_text().split("[[gates]]")[0]  # its settings, not its gates
    text = smoke.replace("rounds = 2", f"rounds = {args.rounds}") + (
        '\n[[conditions]]\nname = "tau05"\nloop = {tau = 0.5}\n\n[[conditions]]\nname = "tau09"\nloop = {tau = 0.9}\n')
    suite = parse_suite(text, "two_arms")
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp), args.cache_dir
        t0 = time.perf_counter()
        warm = parse_suite(smoke.replace("rounds = 2", "rounds = 0"), "base")  # round 0 only
        run_suite(warm, root / "warm", cache)
        print(f"base model ready in the cache: {time.perf_counter() - t0:.0f} s (not timed below)")
        timings, timelines = {}, {}
        for name, workers in (("sequential", 1), ("workers=2", 2)):
            t0 = time.perf_counter()
            timelines[name] = Timeline(t0)
            run_suite(suite, root / name, cache, timelines[name], workers=workers)
            timings[name] = time.perf_counter() - t0
            timelines[name].log("verdict")
        one, _ = snapshot(root / "sequential")
        two, _ = snapshot(root / "workers=2")
        differ = sorted(set(one) ^ set(two)) + [rel for rel in one if rel in two and one[rel] != two[rel]]
    print(f"two arms x {args.rounds} rounds: sequential {timings['sequential']:.1f} s, workers=2 "
          f"{timings['workers=2']:.1f} s: {timings['sequential'] / timings['workers=2']:.2f}x")
    print("artifacts: the same (timings aside)" if not differ else f"artifacts DIFFER: {differ[:5]}")
    for name, line in timelines.items():
        print(f"{name}: " + "; ".join(f"{message} {at:.1f} s" for at, message in line.events))
    alone = [b - a for (a, _), (b, _) in zip([(0.0, "")] + timelines["sequential"].events[:-2],
                                              timelines["sequential"].events[:-1])]
    print(f"bounds: the longest run alone took {max(alone):.1f} s, so no split of runs over 2 processes beats "
          f"{timings['sequential'] / max(alone):.2f}x; this machine's two cores together do {gemm_pair():.2f}x "
          "one core's fp32 GEMM (512x128 by 128x512, 1 thread each, measured now)")


def gemm_pair() -> float:
    """Throughput of two single-thread GEMM processes at once over one alone: the machine's parallel limit."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        pool.submit(gemm_rate, 0.5).result()  # both processes started and torch imported
        pool.submit(gemm_rate, 0.5).result()
        one = pool.submit(gemm_rate).result()
        together = sum(f.result() for f in [pool.submit(gemm_rate), pool.submit(gemm_rate)])
    return together / one


class Timeline:
    """A Reporter that keeps when each run last reported (its last round's last task), each condition's
    probes came back from a worker, and the verdict came."""

    def __init__(self, t0: float):
        self.t0, self.last, self.current = t0, {}, "run"

    @contextmanager
    def task(self, description, total):  # the sequential path reports tasks directly, one run at a time
        yield lambda n: None
        self.last[self.current] = time.perf_counter() - self.t0

    def log(self, message: str) -> None:
        if "condition" in message and "seed" in message:  # sequential: "NAME: condition C, seed S"
            self.current = message.split("condition ")[1].replace(", seed ", "/seed-")
        elif message.startswith("\\["):  # a worker's line: "[label] what"
            label = message[2:].split("]")[0]
            self.last[label + (" probes" if "probes:" in message else "")] = time.perf_counter() - self.t0
        elif message == "verdict":
            self.last[message] = time.perf_counter() - self.t0

    @property
    def events(self):
        return sorted((at, name) for name, at in self.last.items())


if __name__ == "__main__":
    main()
