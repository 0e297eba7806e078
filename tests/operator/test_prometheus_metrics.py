"""Live memory and traffic are read from a real Prometheus with the default PromQL templates."""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml

from tierwise_operator.cli import main
from tierwise_operator.local.prometheus_server import PrometheusServer, ScrapeTarget, free_port
from tierwise_operator.metrics.prometheus import PrometheusSource
from tierwise_operator.settings import PromQL

from ..conftest import SAMPLES
from .metrics_endpoint import MetricsEndpoint

NOW = datetime(2026, 11, 26, tzinfo=UTC)
MODEL = ("support", "ticket-embedder")
BUCKET = "tierwise_runtime_request_duration_seconds_bucket"


def exposition(requests_total: int) -> str:
    # 10% of requests above 50 ms, all below 100 ms: p99 lies between them.
    slow = requests_total // 10
    return f"""\
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{{gpu="0",Hostname="gpu-node-1"}} 70000
DCGM_FI_DEV_FB_FREE{{gpu="1",Hostname="gpu-node-1"}} 2000
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{gpu="0",Hostname="gpu-node-1"}} 11920
DCGM_FI_DEV_FB_USED{{gpu="1",Hostname="gpu-node-1"}} 79920
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes{{node="cpu-node-1"}} 60000000000
# TYPE tierwise_runtime_requests_total counter
tierwise_runtime_requests_total{{route="/v1/embeddings",status="200"}} {requests_total}
# TYPE tierwise_runtime_request_duration_seconds histogram
{BUCKET}{{route="/v1/embeddings",le="0.05"}} {requests_total - slow}
{BUCKET}{{route="/v1/embeddings",le="0.1"}} {requests_total}
{BUCKET}{{route="/v1/embeddings",le="+Inf"}} {requests_total}
tierwise_runtime_request_duration_seconds_count{{route="/v1/embeddings"}} {requests_total}
tierwise_runtime_request_duration_seconds_sum{{route="/v1/embeddings"}} {requests_total * 0.03}
"""


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[MetricsEndpoint, PrometheusServer]]:
    with MetricsEndpoint() as endpoint:
        endpoint.text = exposition(0)
        target = ScrapeTarget(
            endpoint.address, {"namespace": MODEL[0], "tierwise_dev_model": MODEL[1]}
        )
        with PrometheusServer([target], scrape_interval="1s") as prom:
            prom.wait_for_targets()
            # A steady 40 requests/s for as long as the tests run.
            stop = threading.Event()
            start = time.monotonic()

            def serve_traffic() -> None:
                while not stop.wait(0.1):
                    endpoint.text = exposition(int((time.monotonic() - start) * 40))

            thread = threading.Thread(target=serve_traffic, daemon=True)
            thread.start()
            yield endpoint, prom
            stop.set()
            thread.join()


def wait_for(source: PrometheusSource, predicate: object, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        obs = source.collect([MODEL], NOW)
        if callable(predicate) and predicate(obs):
            return obs
        if time.monotonic() > deadline:
            return obs
        time.sleep(0.5)


@pytest.mark.slow
def test_memory_per_node_and_gpu_comes_from_dcgm_and_node_exporter(live) -> None:  # type: ignore[no-untyped-def]
    _, prom = live
    source = PrometheusSource(prom.url, PromQL())
    obs = wait_for(source, lambda o: o.available and "gpu-node-1" in o.nodes)
    assert obs.available, obs.message
    gpu = obs.nodes["gpu-node-1"]
    assert gpu.gpu_free_bytes == (70000 * 2**20, 2000 * 2**20)
    assert gpu.gpu_total_bytes == (81920 * 2**20, 81920 * 2**20)
    assert obs.nodes["cpu-node-1"].host_available_bytes == 60_000_000_000
    assert obs.reason == "PrometheusReachable"


@pytest.mark.slow
def test_model_traffic_comes_from_the_runtime_metrics(live) -> None:  # type: ignore[no-untyped-def]
    _, prom = live
    source = PrometheusSource(prom.url, PromQL(), window="10s")
    obs = wait_for(
        source, lambda o: MODEL in o.traffic and o.traffic[MODEL].requests_per_second > 20
    )
    traffic = obs.traffic[MODEL]
    assert 20 < traffic.requests_per_second < 60
    assert traffic.latency_p99_seconds is not None
    assert 0.05 < traffic.latency_p99_seconds <= 0.1
    assert ("other", "model") not in source.collect([("other", "model")], NOW).traffic


def test_unreachable_prometheus_is_reported_not_raised() -> None:
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}", PromQL(), timeout=1)
    obs = source.collect([MODEL], NOW)
    assert not obs.available
    assert obs.reason == "PrometheusUnreachable"
    assert "127.0.0.1" in obs.message


@pytest.mark.slow
def test_prometheus_without_memory_series_is_unavailable(live) -> None:  # type: ignore[no-untyped-def]
    _, prom = live
    empty = PromQL(
        gpu_free="absent_metric_a", gpu_used="absent_metric_b", host_available="absent_c"
    )
    obs = PrometheusSource(prom.url, empty).collect([MODEL], NOW)
    assert not obs.available
    assert obs.reason == "NoMemoryMetrics"


@pytest.mark.slow
def test_tierwise_plan_reads_live_traffic_from_prometheus(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, prom = live
    doc = yaml.safe_load((SAMPLES / "ticket-embedder.yaml").read_text())
    doc["metadata"]["namespace"] = MODEL[0]
    doc["spec"]["traffic"] = {"targetRPS": 1, "headroom": "0%"}
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump(doc))
    argv = ["plan", "-f", str(models), "--tiers", str(SAMPLES / "tierclasses.yaml"),
            "--prometheus", prom.url, "--window", "10s", "-o", "json"]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    (plan,) = json.loads(out.getvalue())["plans"]
    planned = re.search(r"for ([\d.]+) req/s", plan["reason"])
    assert planned is not None
    assert 20 < float(planned[1]) < 60  # the ~40 req/s the runtime's counter shows, not 1


def gateway_exposition(requests_total: int) -> str:
    labels = f'model_namespace="{MODEL[0]}",model_name="{MODEL[1]}",route="/v1/embeddings"'
    return (
        "# TYPE tierwise_gateway_requests_total counter\n"
        f'tierwise_gateway_requests_total{{{labels},code="200"}} {requests_total}\n'
        f'tierwise_gateway_requests_total{{{labels},code="503"}} {requests_total // 4}\n'
    )


@pytest.mark.slow
def test_traffic_counted_at_the_gateway_is_preferred_to_the_runtimes() -> None:
    """The gateway sees every request, those a model at zero replicas could not count."""
    with MetricsEndpoint() as runtime, MetricsEndpoint() as gateway:
        runtime.text, gateway.text = exposition(0), gateway_exposition(0)
        target = ScrapeTarget(
            runtime.address, {"namespace": MODEL[0], "tierwise_dev_model": MODEL[1]}
        )
        with PrometheusServer(
            [target, ScrapeTarget(gateway.address)], scrape_interval="1s"
        ) as prom:
            prom.wait_for_targets()
            stop = threading.Event()
            start = time.monotonic()

            def serve_traffic() -> None:
                while not stop.wait(0.1):
                    elapsed = time.monotonic() - start
                    runtime.text = exposition(int(elapsed * 40))
                    gateway.text = gateway_exposition(int(elapsed * 80))  # + 20/s refused

            thread = threading.Thread(target=serve_traffic, daemon=True)
            thread.start()
            try:
                source = PrometheusSource(prom.url, PromQL(), window="10s")
                obs = wait_for(
                    source,
                    lambda o: MODEL in o.traffic and o.traffic[MODEL].requests_per_second > 70,
                )
            finally:
                stop.set()
                thread.join()
    assert MODEL in obs.traffic  # type: ignore[attr-defined]
    assert 70 < obs.traffic[MODEL].requests_per_second < 130  # type: ignore[attr-defined]
