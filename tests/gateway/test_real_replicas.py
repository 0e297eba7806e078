"""The gateway in front of real runtime processes: streams, a replica killed under load,
and one model overloaded while another keeps its latency."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import statistics
import time
from typing import Any

import aiohttp
import pytest

from tierwise_operator.gateway.config import GatewaySettings

from .conftest import StartGateway, StartProcess, metric

pytestmark = pytest.mark.slow  # starts real processes (each imports torch)


async def test_a_stream_arrives_token_by_token_through_the_gateway(
    gateway: StartGateway, replica_process: StartProcess
) -> None:
    rep = await replica_process("generate", "writer", "--delay", "0.15")
    setup = await gateway()
    setup.route("writer").set_endpoints([rep.url])
    body = {"model": "writer", "prompt": "a", "max_tokens": 6, "temperature": 0, "stream": True}
    arrivals: list[tuple[float, str]] = []
    async with setup.client.post("/v1/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for line in response.content:
            if line.startswith(b"data: "):
                arrivals.append((time.monotonic(), line.decode().strip()))
    assert arrivals[-1][1] == "data: [DONE]"
    text = "".join(
        choice["text"]
        for _, data in arrivals[:-1]
        for choice in json.loads(data[len("data: ") :])["choices"]
    )
    assert text.startswith("bcdefg")
    # Each token left the engine ~0.15 s after the last and reached the client as it did:
    # the events are spread over the generation, not delivered in one piece at the end.
    tokens = [t for t, data in arrivals[:-1] if json.loads(data[6:])["choices"][0]["text"]]
    gaps = [b - a for a, b in itertools.pairwise(tokens)]
    assert len(gaps) >= 4 and statistics.median(gaps) > 0.08


async def _load(
    client_post: Any,
    model: str,
    until: asyncio.Event,
    outcomes: list[int],
    latencies: list[float],
    backoff_s: float = 0.0,
) -> None:
    """Requests back to back until `until`; after a 503, wait `backoff_s` (an impatient
    client: far less than the Retry-After it was given)."""
    while not until.is_set():
        started = time.monotonic()
        try:
            async with client_post("/v1/embeddings", json={"model": model, "input": "hello"}) as r:
                await r.read()
                outcomes.append(r.status)
        except aiohttp.ClientError:
            outcomes.append(-1)
        latencies.append(time.monotonic() - started)
        if outcomes[-1] == 503:
            await asyncio.sleep(backoff_s)


async def test_replicas_killed_and_stopped_under_load_fail_no_request(
    gateway: StartGateway, replica_process: StartProcess
) -> None:
    replicas = [await replica_process("embed", "e", "--delay", "0.01") for _ in range(3)]
    setup = await gateway(GatewaySettings(wait_s=30))
    route = setup.route("e")
    route.set_endpoints([r.url for r in replicas])
    done = asyncio.Event()
    outcomes: list[int] = []
    latencies: list[float] = []
    workers = [
        asyncio.create_task(_load(setup.client.post, "e", done, outcomes, latencies))
        for _ in range(12)
    ]
    await asyncio.sleep(1.0)
    before = len(outcomes)
    replicas[0].process.kill()  # no warning: whatever it had in flight is lost to it
    await asyncio.sleep(1.0)
    replicas[1].process.send_signal(signal.SIGTERM)  # a graceful stop: drains, then exits
    await asyncio.sleep(1.0)
    # The watch would drop them by now; the gateway must not have needed it.
    done.set()
    await asyncio.gather(*workers)
    assert before > 20 and len(outcomes) > before + 20
    assert [o for o in outcomes if o != 200] == []
    assert metric(setup.metrics, "tierwise_gateway_retries_total", model_namespace="default",
                  model_name="e", reason="connect_failed") >= 1  # fmt: skip


async def test_one_model_overloaded_while_another_keeps_its_latency(
    gateway: StartGateway, replica_process: StartProcess
) -> None:
    hot = await replica_process("embed", "hot", "--delay", "0.05", "--max-queue", "8")
    cold = await replica_process("embed", "cold")
    setup = await gateway(GatewaySettings(max_pending=32, wait_s=5))
    setup.route("hot").set_endpoints([hot.url])
    setup.route("cold").set_endpoints([cold.url])

    async def cold_latencies(n: int) -> list[float]:
        out = []
        for _ in range(n):
            started = time.monotonic()
            response = await setup.post("cold")
            assert response.status == 200
            out.append(time.monotonic() - started)
        return out

    quiet = statistics.median(await cold_latencies(20))
    done = asyncio.Event()
    outcomes: list[int] = []
    hot_latencies: list[float] = []
    flood = [
        asyncio.create_task(_load(setup.client.post, "hot", done, outcomes, hot_latencies, 0.05))
        for _ in range(64)
    ]
    await asyncio.sleep(0.5)
    loaded = statistics.median(await cold_latencies(20))
    done.set()
    await asyncio.gather(*flood)
    assert 200 in outcomes and 503 in outcomes  # the hot model is served and turned away
    assert -1 not in outcomes
    assert max(hot_latencies) < 5  # refused fast, never hung
    # The cold model's median stays within a small bound on a busy 2-core machine.
    assert loaded < max(10 * quiet, 0.1), (quiet, loaded)
