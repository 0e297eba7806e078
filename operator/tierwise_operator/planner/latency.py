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
from typing import NamedTuple

from ..api import LatencyPoint

#: Interpolated batches between two measured ones (the optimum may lie between them).
_STEPS = 4


class OperatingPoint(NamedTuple):
    """A batch size with its batch p99 (seconds) and replica throughput (requests/s)."""

    batch: float
    p99_s: float
    throughput: float


@dataclass(frozen=True)
class LatencyCurve:
    """Measured (or estimated) points and the interpolated grid the planner searches, kept as
    parallel tuples (batch, batch p99 in seconds, requests/s) because it is searched often."""

    batches: tuple[float, ...]
    p99s: tuple[float, ...]
    rates: tuple[float, ...]

    @classmethod
    def from_points(cls, points: Iterable[LatencyPoint]) -> LatencyCurve | None:
        """The curve, or None when no point has a positive throughput."""
        measured: list[_Point] = sorted(
            (float(p.batch), p.p99_ms / 1000.0, p.throughput) for p in points if p.throughput > 0
        )
        if not measured:
            return None
        grid = [measured[0]]
        for lo, hi in itertools.pairwise(measured):
            grid += [_between(lo, hi, i / _STEPS) for i in range(1, _STEPS + 1)]
        batches, p99s, rates = zip(*grid, strict=True)
        return cls(batches, p99s, rates)

    @property
    def grid(self) -> list[OperatingPoint]:
        return [OperatingPoint(*p) for p in zip(self.batches, self.p99s, self.rates, strict=True)]

    @property
    def fastest_p99_s(self) -> float:
        """p99 of the smallest batch on an idle replica: no load can do better."""
        return self.p99s[0]

    @property
    def max_throughput(self) -> float:
        return max(self.rates)

    def capacity(self, slo_s: float | None, max_batch: float = math.inf) -> tuple[float, float]:
        """(requests/s one replica serves within the SLO, the batch it runs at), batches
        limited to `max_batch` (what the memory left for the KV cache allows)."""
        steps = self.frontier(slo_s, max_batch)
        return steps[-1] if steps else (0.0, self.batches[0])

    def frontier(self, slo_s: float | None, max_batch: float) -> list[tuple[float, float]]:
        """`capacity(slo_s, cap)` for every integer batch cap up to `max_batch`, in one pass:
        (requests/s, batch) for each cap where the answer can change."""
        out: list[tuple[float, float]] = []
        best = (0.0, self.batches[0])
        batches, count = self.batches, len(self.batches)
        for i in range(count):
            batch = batches[i]
            if batch > max_batch:
                break
            rate, p99 = self.rates[i], self.p99s[i]
            if slo_s is not None and p99:
                rate *= min(1.0, max(0.0, slo_s / p99 - 1.0))
            if rate > best[0]:
                best = (rate, batch)
            last = i + 1 == count or batches[i + 1] > max_batch
            if last or math.ceil(batches[i + 1]) != math.ceil(batch):
                out.append(best)
        return out

    def predicted_p99(self, rate: float, max_batch: float = math.inf) -> float | None:
        """Modelled p99 (seconds) of one replica serving `rate` requests/s; None if it can't."""
        options = [
            p99 * (1.0 + rate / t)
            for b, p99, t in zip(self.batches, self.p99s, self.rates, strict=True)
            if t >= rate and b <= max_batch
        ]
        return min(options) if options else None

    def scaled(self, speed: float) -> LatencyCurve:
        """The curve of a replica `speed` times as fast (throughput up, latency down)."""
        return LatencyCurve(
            self.batches,
            tuple(p / speed for p in self.p99s),
            tuple(t * speed for t in self.rates),
        )


_Point = tuple[float, float, float]


def _between(lo: _Point, hi: _Point, t: float) -> _Point:
    return (
        lo[0] + t * (hi[0] - lo[0]),
        lo[1] + t * (hi[1] - lo[1]),
        lo[2] + t * (hi[2] - lo[2]),
    )
