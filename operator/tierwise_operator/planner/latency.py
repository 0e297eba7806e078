"""Latency model of one replica: p99 and capacity at the batch its share of traffic needs.

A replica batches requests dynamically. From the profile's points (batch b, p99 of one
batch, throughput T(b)) we interpolate linearly in b. At a per-replica rate r served at
batch b the utilisation is u = r / T(b); a request waits for the batch in flight and then
runs in its own, so its p99 is modelled as p99(b) * (1 + u): the batch latency when idle,
twice it when saturated. The replica runs at the batch that minimises that figure, and
its capacity under an SLO is the highest r any batch can serve within it:
r <= T(b) * min(1, SLO / p99(b) - 1).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..api import LatencyPoint

#: Interpolated batches between two measured ones (the optimum may lie between them).
_STEPS = 8


@dataclass(frozen=True)
class OperatingPoint:
    """A batch size with its batch p99 (seconds) and replica throughput (requests/s)."""

    batch: float
    p99_s: float
    throughput: float


@dataclass(frozen=True)
class LatencyCurve:
    """Measured (or estimated) points and the interpolated grid the planner searches."""

    grid: tuple[OperatingPoint, ...]

    @classmethod
    def from_points(cls, points: Iterable[LatencyPoint]) -> LatencyCurve | None:
        """The curve, or None when no point has a positive throughput."""
        measured = sorted(
            (OperatingPoint(p.batch, p.p99_ms / 1000.0, p.throughput) for p in points),
            key=lambda p: p.batch,
        )
        measured = [p for p in measured if p.throughput > 0]
        if not measured:
            return None
        grid = [measured[0]]
        for lo, hi in itertools.pairwise(measured):
            grid += [_between(lo, hi, i / _STEPS) for i in range(1, _STEPS + 1)]
        return cls(tuple(grid))

    @property
    def fastest_p99_s(self) -> float:
        """p99 of the smallest batch on an idle replica: no load can do better."""
        return self.grid[0].p99_s

    @property
    def max_throughput(self) -> float:
        return max(p.throughput for p in self.grid)

    def capacity(self, slo_s: float | None, max_batch: float = math.inf) -> tuple[float, float]:
        """(requests/s one replica serves within the SLO, the batch it runs at), batches
        limited to `max_batch` (what the memory left for the KV cache allows)."""
        best = (0.0, self.grid[0].batch)
        for point in self.grid:
            if point.batch > max_batch:
                break
            rate = point.throughput
            if slo_s is not None:
                rate *= min(1.0, max(0.0, slo_s / point.p99_s - 1.0)) if point.p99_s else 1.0
            if rate > best[0]:
                best = (rate, point.batch)
        return best

    def predicted_p99(self, rate: float, max_batch: float = math.inf) -> float | None:
        """Modelled p99 (seconds) of one replica serving `rate` requests/s; None if it can't."""
        options = [
            p.p99_s * (1.0 + rate / p.throughput)
            for p in self.grid
            if p.throughput >= rate and p.batch <= max_batch
        ]
        return min(options) if options else None

    def scaled(self, speed: float) -> LatencyCurve:
        """The curve of a replica `speed` times as fast (throughput up, latency down)."""
        return LatencyCurve(
            tuple(OperatingPoint(p.batch, p.p99_s / speed, p.throughput * speed) for p in self.grid)
        )


def _between(lo: OperatingPoint, hi: OperatingPoint, t: float) -> OperatingPoint:
    return OperatingPoint(
        lo.batch + t * (hi.batch - lo.batch),
        lo.p99_s + t * (hi.p99_s - lo.p99_s),
        lo.throughput + t * (hi.throughput - lo.throughput),
    )
