"""Read GPU/host memory and model traffic from Prometheus with the configured PromQL templates."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException

from ..settings import PromQL
from .observation import ModelKey, ModelTraffic, NodeMemory, Observation
from .prometheus_auth import CredentialsError, PrometheusAuth, redact, redact_url, url_secrets

Sample = dict[str, Any]


def node_of(labels: dict[str, str]) -> str | None:
    """The node a series describes, from the labels exporters commonly carry."""
    for key in ("node", "kubernetes_node", "Hostname"):
        if labels.get(key):
            return labels[key]
    instance = labels.get("instance")
    return instance.rsplit(":", 1)[0] if instance else None


def _value(sample: Sample) -> float | None:
    value = float(sample["value"][1])
    return value if math.isfinite(value) else None


class PrometheusSource:
    """One Prometheus server; every call is blocking (run it in a thread from async code)."""

    def __init__(
        self,
        url: str,
        promql: PromQL,
        window: str = "5m",
        timeout: float = 5.0,
        auth: PrometheusAuth | None = None,
    ) -> None:
        self._url = url
        self.url = redact_url(url)
        """The URL as messages show it: without credentials."""
        self.promql = promql
        self.window = window
        self.auth = auth or PrometheusAuth()
        session = requests.Session()
        session.verify = self.auth.verify  # TLS is verified: a CA bundle, else the system's
        self._client = PrometheusConnect(url=url, session=session, timeout=int(max(timeout, 1)))

    def collect(self, models: Iterable[ModelKey], now: datetime) -> Observation:
        secrets = url_secrets(self._url)
        try:
            credentials = self.auth.credentials()
            secrets += credentials.secrets
            self._client.headers, self._client.auth = credentials.headers, credentials.basic
            nodes = self._nodes()
            traffic = {key: t for key in models if (t := self._traffic(key)) is not None}
        except (
            requests.RequestException,
            PrometheusApiClientException,
            ValueError,
            CredentialsError,
        ) as exc:
            detail = redact(f"{type(exc).__name__}: {exc}", secrets)[:200]
            return Observation(
                at=now, source="prometheus", available=False, reason="PrometheusUnreachable",
                message=f"{self.url}: {detail}",
            )  # fmt: skip
        if not nodes:
            return Observation(
                at=now, source="prometheus", available=False, reason="NoMemoryMetrics",
                message=f"{self.url} returned no GPU or host memory series "
                "(are DCGM exporter and node_exporter scraped?)", traffic=traffic,
            )  # fmt: skip
        return Observation(
            at=now, source="prometheus", available=True, reason="PrometheusReachable",
            message=f"{len(nodes)} nodes, traffic for {len(traffic)} models from {self.url}",
            nodes=nodes, traffic=traffic,
        )  # fmt: skip

    def _query(self, query: str) -> list[Sample]:
        result: list[Sample] = self._client.custom_query(query=query)
        return result

    def _nodes(self) -> dict[str, NodeMemory]:
        host: dict[str, int] = {}
        for sample in self._query(self.promql.host_available):
            node, value = node_of(sample["metric"]), _value(sample)
            if node and value is not None:
                host[node] = int(value)
        gpu_free = self._per_gpu(self.promql.gpu_free)
        gpu_used = self._per_gpu(self.promql.gpu_used)
        nodes: dict[str, NodeMemory] = {}
        for node in sorted(set(host) | set(gpu_free)):
            free = gpu_free.get(node, {})
            devices = sorted(free)
            total = tuple(free[d] + gpu_used.get(node, {}).get(d, 0) for d in devices)
            nodes[node] = NodeMemory(
                host_available_bytes=host.get(node),
                gpu_free_bytes=tuple(free[d] for d in devices),
                gpu_total_bytes=total if gpu_used.get(node) else (),
            )
        return nodes

    def _per_gpu(self, query: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for sample in self._query(query):
            labels = sample["metric"]
            node, value = node_of(labels), _value(sample)
            if node and value is not None:
                device = labels.get("gpu") or labels.get("UUID") or str(len(out[node]))
                out[node][device] = int(value)
        return dict(out)

    def _traffic(self, key: ModelKey) -> ModelTraffic | None:
        namespace, name = key
        fill = {"namespace": namespace, "name": name, "window": self.window}
        rate = self._query(self.promql.request_rate.format(**fill))
        if not rate or (rps := _value(rate[0])) is None:
            return None
        p99 = self._query(self.promql.latency_p99.format(**fill))
        return ModelTraffic(
            requests_per_second=rps, latency_p99_seconds=_value(p99[0]) if p99 else None
        )
