"""Latency and throughput of a batch function, measured the same way for every runtime.

Used by the evaluate stage, the export report and `benchmarks/inference.py`, so numbers
from each are comparable: warm-up first, `perf_counter_ns`, percentiles over many calls.
"""

import time
from collections.abc import Callable

import numpy as np

BatchFn = Callable[[np.ndarray], object]


def latency_ms(fn: BatchFn, sample: np.ndarray, runs: int, warmup: int = 20) -> dict[str, float]:
    """p50/p99/mean milliseconds of `fn` on one input (batch 1), cycling through `sample` (N, 1, 28, 28)."""
    if runs <= 0:
        raise ValueError(f"latency runs must be positive, got {runs}")
    inputs = [np.ascontiguousarray(sample[i % len(sample)][None]) for i in range(max(runs, warmup))]
    for x in inputs[:warmup]:
        fn(x)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        fn(inputs[i])
        times[i] = time.perf_counter_ns() - start
    times /= 1e6
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "mean_ms": float(times.mean()),
        "runs": runs,
    }


def throughput(
    fn: BatchFn, sample: np.ndarray, batch_size: int, runs: int, warmup: int = 3
) -> dict[str, float]:
    """Images per second of `fn` on full batches of `batch_size` drawn from `sample`."""
    if runs <= 0 or batch_size <= 0:
        raise ValueError(f"throughput needs positive runs and batch size, got {runs}, {batch_size}")
    reps = -(-batch_size // len(sample))
    batch = np.ascontiguousarray(np.concatenate([sample] * reps)[:batch_size])
    for _ in range(warmup):
        fn(batch)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        fn(batch)
        times[i] = time.perf_counter_ns() - start
    seconds = float(np.median(times)) / 1e9
    return {
        "images_per_s": batch_size / seconds,
        "batch_size": batch_size,
        "median_batch_ms": seconds * 1e3,
        "runs": runs,
    }
