"""/metrics exposes the operator's contract: every metric, with exactly its labels."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tierwise_operator.api import TierKind
from tierwise_runtime.gpu import GpuMemory, gpu_memory
from tierwise_runtime.memory import MemoryUsage
from tierwise_runtime.metrics import RuntimeMetrics

from .conftest import Client, StartServer, sample, scrape
from .fakes import FakeEmbeddingEngine, FakeGenerationEngine

GIB = 2**30

#: name -> (type, label names) of every metric the operator's PromQL relies on.
CONTRACT = {
    "tierwise_runtime_requests": ("counter", {"route", "status"}),
    "tierwise_runtime_request_duration_seconds": ("histogram", {"route"}),
    "tierwise_runtime_batch_size": ("histogram", {"route"}),
    "tierwise_runtime_queue_depth": ("gauge", set()),
    "tierwise_runtime_running_sequences": ("gauge", set()),
    "tierwise_runtime_tokens": ("counter", {"kind"}),
    "tierwise_runtime_weight_bytes": ("gauge", set()),
    "tierwise_runtime_memory_rss_bytes": ("gauge", {"kind"}),
    "tierwise_runtime_memory_peak_rss_bytes": ("gauge", set()),
    "tierwise_runtime_info": ("gauge", {"model", "precision", "device", "tier"}),
    "tierwise_runtime_ready": ("gauge", set()),
}


async def families(client: Client) -> dict[str, tuple[str, set[str]]]:
    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    found = {}
    for family in text_string_to_metric_families(text):
        labels = {k for s in family.samples for k in s.labels if k not in {"le"}}
        found[family.name] = (family.type, labels)
    return found


async def test_every_contract_metric_is_exposed_with_its_labels(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    await client.post("/v1/embeddings", json={"model": "fake-embedder", "input": "a b"})
    found = await families(client)
    for name, expected in CONTRACT.items():
        assert found.get(name) == expected, name
    assert "tierwise_runtime_gpu_memory_bytes" not in found  # a CPU engine has no GPU


async def test_metric_values_describe_the_served_model_and_its_traffic(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    await client.post("/v1/embeddings", json={"model": "fake-embedder", "input": ["a b", "c"]})
    await client.post("/v1/embeddings", json={"model": "nope", "input": "a"})
    samples = await scrape(client)
    route = "/v1/embeddings"
    assert sample(samples, "tierwise_runtime_requests_total", route=route, status="200") == 1
    assert sample(samples, "tierwise_runtime_requests_total", route=route, status="404") == 1
    assert sample(samples, "tierwise_runtime_request_duration_seconds_count", route=route) == 2
    for le in ("0.001", "30.0", "+Inf"):
        assert (
            sample(samples, "tierwise_runtime_request_duration_seconds_bucket", route=route, le=le)
            is not None
        )
    assert sample(samples, "tierwise_runtime_tokens_total", kind="prompt") == 4 + 3
    assert sample(samples, "tierwise_runtime_weight_bytes") == embedder.info.weight_bytes
    assert sample(samples, "tierwise_runtime_queue_depth") == 0
    labels = {"model": "fake-embedder", "precision": "fp32", "device": "cpu", "tier": "cpu"}
    assert sample(samples, "tierwise_runtime_info", **labels) == 1
    anon = sample(samples, "tierwise_runtime_memory_rss_bytes", kind="anon")
    file = sample(samples, "tierwise_runtime_memory_rss_bytes", kind="file")
    peak = sample(samples, "tierwise_runtime_memory_peak_rss_bytes")
    assert anon is not None and file is not None and peak is not None
    assert anon > 100 * 2**20 and file > 0 and peak >= anon + file


async def test_unknown_paths_share_one_route_label(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    for i in range(3):
        await client.get(f"/scan/{i}")
    samples = await scrape(client)
    assert sample(samples, "tierwise_runtime_requests_total", route="other", status="404") == 3


async def test_gpu_memory_of_the_serving_device_is_exposed_when_there_is_one(
    start_server: StartServer,
) -> None:
    engine = FakeGenerationEngine()
    engine.info = dataclasses.replace(engine.info, device="cuda:0", tier=TierKind.GPU)
    seen: list[str] = []

    def gpu(device: str) -> GpuMemory:
        seen.append(device)
        return GpuMemory(name="H100", used_bytes=3 * GIB, total_bytes=80 * GIB)

    client = await start_server(engine, metrics=RuntimeMetrics(gpu=gpu))
    samples = await scrape(client)
    assert sample(samples, "tierwise_runtime_gpu_memory_bytes", state="used") == 3 * GIB
    assert sample(samples, "tierwise_runtime_gpu_memory_bytes", state="total") == 80 * GIB
    assert set(seen) == {"cuda:0"}


@pytest.mark.cuda
async def test_a_real_gpu_shows_in_the_metrics(start_server: StartServer) -> None:
    if gpu_memory("cuda:0") is None:
        pytest.skip("no NVIDIA GPU or driver on this machine")
    engine = FakeGenerationEngine()
    engine.info = dataclasses.replace(engine.info, device="cuda:0", tier=TierKind.GPU)
    client = await start_server(engine)
    samples = await scrape(client)
    used = sample(samples, "tierwise_runtime_gpu_memory_bytes", state="used")
    total = sample(samples, "tierwise_runtime_gpu_memory_bytes", state="total")
    assert used is not None and total is not None
    assert 0 < used <= total


def test_memory_figures_are_read_at_every_scrape() -> None:
    readings = iter([MemoryUsage(1, 2, 3, 10), MemoryUsage(5, 6, 7, 20)])
    metrics = RuntimeMetrics(memory=lambda: next(readings))
    values = []
    for _ in range(2):
        text = metrics.render().decode()
        values.append(
            {
                s.labels.get("kind", s.name): s.value
                for f in text_string_to_metric_families(text)
                if f.name.startswith("tierwise_runtime_memory")
                for s in f.samples
            }
        )
    assert values[0] == {
        "anon": 1,
        "file": 2,
        "shmem": 3,
        "tierwise_runtime_memory_peak_rss_bytes": 10,
    }
    assert values[1]["anon"] == 5 and values[1]["tierwise_runtime_memory_peak_rss_bytes"] == 20


def test_each_server_has_its_own_registry() -> None:
    first, second = RuntimeMetrics(), RuntimeMetrics()
    first.tokens.labels(kind="prompt").inc(5)
    assert b'tierwise_runtime_tokens_total{kind="prompt"} 5.0' in first.render()
    assert b'kind="prompt"' not in second.render()
