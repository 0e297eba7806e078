"""Latency percentiles and throughput at a batch size, measured after warm-up."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from tierwise_operator.api import LatencyPoint


@dataclass(frozen=True)
class TimingPolicy:
    """How hard to measure: p99 needs samples, the time budget keeps a profile finite.

    With the defaults a point takes 100 timed runs after 3 warm-ups unless that
    would exceed 8 seconds; it never takes fewer than `min_repeats`.
    """

    warmup: int = 3
    repeats: int = 100
    min_repeats: int = 20
    budget_seconds: float = 8.0


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile: the value at or below which `q` of the samples lie."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def measure(
    run: Callable[[], object], batch: int, policy: TimingPolicy, sync: Callable[[], None]
) -> LatencyPoint:
    """Time `run` (one batch of `batch` requests); `sync` waits for the device to finish."""
    for _ in range(policy.warmup):
        run()
        sync()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < policy.repeats:
        t0 = time.perf_counter()
        run()
        sync()
        samples.append(time.perf_counter() - t0)
        spent = time.perf_counter() - started
        if len(samples) >= policy.min_repeats and spent > policy.budget_seconds:
            break
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    mean = sum(samples) / len(samples)
    return LatencyPoint(
        batch=batch,
        p50_ms=p50 * 1000,
        p99_ms=p99 * 1000,
        throughput=batch / mean,
        samples=len(samples),
    )
