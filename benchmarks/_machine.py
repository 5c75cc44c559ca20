"""What this machine can do, measured in the benchmark's own run: one core's fp32 GEMM rate (1 torch thread) at
the embedded model's matmul shapes, the limit the benchmarks' shares are of."""

from __future__ import annotations

import time

import torch


def gemm_rate(seconds: float = 3.0) -> float:
    """FLOP/s of (512 x 128) @ (128 x 512) and back, the model's MLP and projection shapes, on 1 thread."""
    torch.set_num_threads(1)
    a, b, c = torch.randn(512, 128), torch.randn(128, 512), torch.randn(512, 128)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            (a @ b) @ c
        n += 50
    return 2 * 2 * 512 * 128 * 512 * n / (time.perf_counter() - t0)
