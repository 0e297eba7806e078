"""Readiness follows the life of a server: loading, warming up, ready, draining, failed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from tierwise_runtime.engine import Engine
from tierwise_runtime.lifecycle import Phase

from .conftest import StartServer, assert_error, lifecycle, sample, scrape, wait_for_phase
from .fakes import FakeEmbeddingEngine

EMBED = {"model": "fake-embedder", "input": "hello"}


def gated_loader(engine: FakeEmbeddingEngine, gate: threading.Event) -> Callable[[], Engine]:
    def load() -> Engine:
        assert gate.wait(10)
        return engine

    return load


async def test_before_the_model_is_loaded_only_liveness_answers_200(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    loaded = threading.Event()
    client = await start_server(gated_loader(embedder, loaded), wait=False)
    assert (await client.get("/healthz")).status == 200
    readyz = await client.get("/readyz")
    assert (readyz.status, await readyz.json()) == (503, {"status": "loading"})
    refused = await client.post("/v1/embeddings", json=EMBED)
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    assert_error(await refused.json(), "model_loading")
    assert (await client.get("/v1/models")).status == 503
    assert sample(await scrape(client), "tierwise_runtime_ready") == 0

    loaded.set()
    await wait_for_phase(client, Phase.READY)
    assert (await client.get("/readyz")).status == 200
    assert sample(await scrape(client), "tierwise_runtime_ready") == 1


async def test_readiness_waits_for_a_warm_up_pass_through_the_model(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    embedder.hold()  # the warm-up blocks inside the engine
    client = await start_server(embedder, wait=False)
    await asyncio.to_thread(embedder.entered.wait, 10)
    readyz = await client.get("/readyz")
    assert (readyz.status, await readyz.json()) == (503, {"status": "warming"})
    embedder.release()
    await wait_for_phase(client, Phase.READY)
    assert embedder.batches == [1]  # the warm-up, before any request
    assert (await client.post("/v1/embeddings", json=EMBED)).status == 200


async def test_a_failed_load_reports_failed_and_asks_the_server_to_exit_1(
    start_server: StartServer,
) -> None:
    def load() -> Engine:
        raise FileNotFoundError("no config.json in /models/x")

    client = await start_server(load, wait=False)
    await wait_for_phase(client, Phase.FAILED)
    life = lifecycle(client)
    assert life.stop_requested.is_set() and life.exit_code == 1
    assert (await client.get("/readyz")).status == 503
    refused = await client.post("/v1/embeddings", json=EMBED)
    assert_error(await refused.json(), "model_failed")


async def test_draining_refuses_new_work_and_lets_in_flight_requests_finish(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    life = lifecycle(client)
    embedder.hold()
    in_flight = asyncio.create_task(client.post("/v1/embeddings", json=EMBED))
    await asyncio.to_thread(embedder.entered.wait, 10)
    drained = asyncio.create_task(life.drain(timeout_s=10))
    await wait_for_phase(client, Phase.DRAINING)

    readyz = await client.get("/readyz")
    assert (readyz.status, await readyz.json()) == (503, {"status": "draining"})
    refused = await client.post("/v1/embeddings", json=EMBED)
    assert refused.status == 503 and refused.headers["Connection"] == "close"
    assert_error(await refused.json(), "shutting_down")
    assert sample(await scrape(client), "tierwise_runtime_ready") == 0
    assert not drained.done()

    embedder.release()
    response = await in_flight
    assert response.status == 200
    assert len((await response.json())["data"]) == 1
    assert await drained is True


async def test_a_drain_that_outlives_its_timeout_says_so(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    embedder.hold()
    in_flight = asyncio.create_task(client.post("/v1/embeddings", json=EMBED))
    await asyncio.to_thread(embedder.entered.wait, 10)
    assert await lifecycle(client).drain(timeout_s=0.05) is False
    embedder.release()
    assert (await in_flight).status == 200


async def test_models_lists_the_served_model_and_what_it_holds(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    body = await (await client.get("/v1/models")).json()
    assert [m["id"] for m in body["data"]] == ["fake-embedder"]
    assert body["data"][0]["object"] == "model"
    assert body["data"][0]["tierwise"]["weight_bytes"] == embedder.info.weight_bytes
