"""POST /v1/embeddings: OpenAI's shape, exact floats or base64, batched across requests."""

from __future__ import annotations

import asyncio
import base64
import time

import numpy as np
import torch
from aiohttp import ClientResponse

from .conftest import StartServer, lifecycle, sample, scrape, wait_until
from .fakes import FakeEmbeddingEngine


async def test_each_text_gets_its_vector_in_order_with_usage(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    texts = ["the cat sat", "on the mat", "hello"]
    response = await client.post("/v1/embeddings", json={"model": "fake-embedder", "input": texts})
    assert response.status == 200
    body = await response.json()
    assert body["object"] == "list" and body["model"] == "fake-embedder"
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert all(item["object"] == "embedding" for item in body["data"])
    got = torch.tensor([item["embedding"] for item in body["data"]])
    assert torch.equal(got, embedder.embed(texts))
    tokens = sum(map(len, embedder.tokenize(texts)))
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


async def test_a_single_string_input_gets_one_vector(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    response = await client.post("/v1/embeddings", json={"model": "fake-embedder", "input": "hi"})
    body = await response.json()
    assert len(body["data"]) == 1
    assert len(body["data"][0]["embedding"]) == embedder.info.embedding_dim


async def test_base64_decodes_to_exactly_the_float_vectors(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    request = {"model": "fake-embedder", "input": ["one two", "three"]}
    floats = await (await client.post("/v1/embeddings", json=request)).json()
    b64 = await (
        await client.post("/v1/embeddings", json=request | {"encoding_format": "base64"})
    ).json()
    for as_float, as_b64 in zip(floats["data"], b64["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(as_b64["embedding"]), dtype="<f4")
        assert decoded.tolist() == as_float["embedding"]


async def test_concurrent_requests_are_merged_into_one_batch(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder, max_batch=8, max_wait_s=1.0)
    warm_up_batches = len(embedder.batches)
    requests = [
        client.post("/v1/embeddings", json={"model": "fake-embedder", "input": f"text {i}"})
        for i in range(8)
    ]
    responses = await asyncio.gather(*requests)
    assert [r.status for r in responses] == [200] * 8
    assert embedder.batches[warm_up_batches:] == [8]
    samples = await scrape(client)
    assert sample(samples, "tierwise_runtime_batch_size_count", route="/v1/embeddings") == 1
    assert sample(samples, "tierwise_runtime_batch_size_sum", route="/v1/embeddings") == 8
    assert embedder.threads == {"tierwise-engine_0"}  # every engine call on the one worker


async def test_a_lone_request_waits_no_longer_than_max_wait(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder, max_batch=64, max_wait_s=0.2)
    started = time.monotonic()
    response = await client.post("/v1/embeddings", json={"model": "fake-embedder", "input": "x"})
    elapsed = time.monotonic() - started
    assert response.status == 200
    assert 0.19 <= elapsed < 2.0


async def test_a_full_batch_does_not_wait_for_max_wait(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder, max_batch=4, max_wait_s=30.0)
    started = time.monotonic()
    body = {"model": "fake-embedder", "input": ["a", "b", "c", "d"]}
    response = await client.post("/v1/embeddings", json=body)
    assert response.status == 200
    assert time.monotonic() - started < 5.0


async def test_a_full_queue_refuses_at_once_with_503_and_retry_after(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder, max_batch=1, max_queue=2, max_wait_s=0.0)
    batcher = lifecycle(client).embeddings.batcher  # type: ignore[union-attr]
    embedder.hold()

    async def embed(text: str) -> ClientResponse:
        return await client.post("/v1/embeddings", json={"model": "fake-embedder", "input": text})

    def post(text: str) -> asyncio.Task[ClientResponse]:
        return asyncio.create_task(embed(text))

    running = post("running")
    await asyncio.to_thread(embedder.entered.wait, 10)
    queued = [post("queued 1"), post("queued 2")]
    await wait_until(lambda: batcher.waiting == 2)

    refused = await asyncio.gather(*(post(f"extra {i}") for i in range(20)))
    assert {r.status for r in refused} == {503}
    assert {r.headers["Retry-After"] for r in refused} == {"1"}
    body = await refused[0].json()
    assert body["error"]["code"] == "queue_full"
    assert batcher.waiting == 2  # nothing beyond the bound was held
    samples = await scrape(client)
    assert sample(samples, "tierwise_runtime_queue_depth") == 2
    assert (
        sample(samples, "tierwise_runtime_requests_total", route="/v1/embeddings", status="503")
        == 20
    )

    embedder.release()
    done = await asyncio.gather(running, *queued)
    assert [r.status for r in done] == [200] * 3
    assert batcher.waiting == 0
