"""The gateway's Prometheus metrics: traffic per model, measured where it arrives.

Labels are `model_namespace` and `model_name`, not `namespace`: scraping
configurations commonly attach the scraped pod's own `namespace`, which is the
gateway's, not the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MODEL = ("model_namespace", "model_name")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class GatewayMetrics:
    """One registry per gateway (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._models: dict[tuple[str, str], ModelSeries] = {}
        r = self.registry
        self.requests = Counter(
            "tierwise_gateway_requests", "Requests answered, by model and HTTP status.",
            [*MODEL, "route", "code"], registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "tierwise_gateway_in_flight", "Requests admitted and not yet answered.", MODEL,
            registry=r,
        )  # fmt: skip
        self.held = Gauge(
            "tierwise_gateway_held", "Requests waiting for a ready replica.", MODEL, registry=r
        )
        self.queue_seconds = Histogram(
            "tierwise_gateway_queue_seconds",
            "Time from arrival until a replica accepted the request.",
            MODEL, buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "tierwise_gateway_request_duration_seconds",
            "Time from arrival until the answer ended (streams: the last event).",
            MODEL, buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "tierwise_gateway_errors", "Requests the gateway failed, by reason.",
            [*MODEL, "reason"], registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "tierwise_gateway_retries",
            "Attempts sent to another replica because one never reached its engine.",
            [*MODEL, "reason"], registry=r,
        )  # fmt: skip
        self.ready_endpoints = Gauge(
            "tierwise_gateway_ready_endpoints", "Ready replicas the gateway routes to.", MODEL,
            registry=r,
        )  # fmt: skip
        self.demand_signals = Counter(
            "tierwise_gateway_demand_signals",
            "Times the gateway told the operator a model at zero replicas has demand.",
            MODEL, registry=r,
        )  # fmt: skip

    def model(self, namespace: str, name: str) -> ModelSeries:
        """The series of one model, looked up once (labels() costs a lock and a dict)."""
        key = (namespace, name)
        series = self._models.get(key)
        if series is None:
            series = self._models[key] = ModelSeries(
                in_flight=self.in_flight.labels(*key),
                held=self.held.labels(*key),
                queue_seconds=self.queue_seconds.labels(*key),
                duration=self.duration.labels(*key),
            )
        return series


@dataclass(frozen=True)
class ModelSeries:
    in_flight: Any
    held: Any
    queue_seconds: Any
    duration: Any
