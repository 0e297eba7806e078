"""Live metrics without Prometheus: scrape the runtimes' and the node exporter's /metrics directly.

Local mode uses this when Prometheus is not installed. Request rates and p99
come from the difference between two scrapes of the runtime's counters and
latency histogram, as Prometheus' rate() and histogram_quantile() would
compute them over the interval between collections.
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from .observation import ModelKey, ModelTraffic, NodeMemory, Observation
from .prometheus import node_of

Targets = Callable[[], list[tuple[ModelKey, str]]]
"""(model, base URL) of every ready runtime replica."""
Series = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Series:
    with urllib.request.urlopen(f"{url}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _sum(series: Series, name: str) -> float:
    return sum(v for _, v in series.get(name, []))


def _buckets(series: Series, name: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for labels, value in series.get(name, []):
        bound = float(labels["le"])
        out[bound] = out.get(bound, 0.0) + value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts (linear inside the bucket)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return None


class DirectSource:
    """Collects like PrometheusSource, from the targets themselves."""

    def __init__(self, targets: Targets, node_exporter: str) -> None:
        self.targets = targets
        self.node_exporter = node_exporter
        self._last: dict[str, tuple[datetime, Series]] = {}

    def collect(self, models: Iterable[ModelKey], now: datetime) -> Observation:
        try:
            nodes = self._nodes()
        except OSError as exc:
            return Observation(
                now, "runtime", False, "NodeExporterUnreachable", f"{self.node_exporter}: {exc}"
            )
        traffic = self._traffic(set(models), now)
        return Observation(
            at=now,
            source="runtime",
            available=True,
            reason="RuntimeMetricsScraped",
            message="Prometheus is not installed: read the runtimes' /metrics and the node "
            f"exporter directly ({len(traffic)} models with traffic)",
            nodes=nodes,
            traffic=traffic,
        )

    def _nodes(self) -> dict[str, NodeMemory]:
        out = {}
        for labels, value in scrape(f"http://{self.node_exporter}").get(
            "node_memory_MemAvailable_bytes", []
        ):
            node = node_of(labels)
            if node:
                out[node] = NodeMemory(host_available_bytes=int(value))
        return out

    def _traffic(self, models: set[ModelKey], now: datetime) -> dict[ModelKey, ModelTraffic]:
        rates: dict[ModelKey, float] = {}
        buckets: dict[ModelKey, dict[float, float]] = {}
        for key, url in self.targets():
            if key not in models:
                continue
            try:
                series = scrape(url)
            except OSError:
                continue  # a replica going away; the next round sees the rest
            previous = self._last.get(url)
            self._last[url] = (now, series)
            if previous is None:
                continue
            seconds = max((now - previous[0]).total_seconds(), 1e-3)
            done = _sum(series, "tierwise_runtime_requests_total")
            before = _sum(previous[1], "tierwise_runtime_requests_total")
            rates[key] = rates.get(key, 0.0) + max(0.0, done - before) / seconds
            new = _buckets(series, "tierwise_runtime_request_duration_seconds_bucket")
            old = _buckets(previous[1], "tierwise_runtime_request_duration_seconds_bucket")
            merged = buckets.setdefault(key, {})
            for bound, count in new.items():
                merged[bound] = merged.get(bound, 0.0) + max(0.0, count - old.get(bound, 0.0))
        return {
            key: ModelTraffic(
                requests_per_second=rate, latency_p99_seconds=quantile(0.99, buckets.get(key, {}))
            )
            for key, rate in rates.items()
        }
