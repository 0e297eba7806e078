"""Routing one request: by model, to the least-loaded replica, retried only where safe,
held while a model wakes, refused fast when a model is over its bounds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tierwise_operator.gateway.config import GatewaySettings
from tierwise_operator.gateway.endpoints import Route

from .conftest import StartGateway, StartReplica, answer, metric, unavailable, wait_until


async def test_a_request_goes_to_a_replica_of_the_model_it_names(
    gateway: StartGateway, replica: StartReplica
) -> None:
    setup = await gateway()
    a, b = await replica("a"), await replica("b")
    setup.route("alpha").set_endpoints([a.url])
    setup.route("beta", "team").set_endpoints([b.url])
    assert (await (await setup.post("alpha")).json())["served_by"] == "a"
    by_namespace = await setup.post("team/beta")
    assert (await by_namespace.json())["served_by"] == "b"
    assert b.seen[-1]["model"] == "beta"  # a replica knows itself by its bare name


async def test_unknown_ambiguous_and_malformed_requests_get_4xx_with_a_reason(
    gateway: StartGateway,
) -> None:
    setup = await gateway()
    setup.route("same", "one")
    setup.route("same", "two")
    unknown = await setup.post("nope")
    assert unknown.status == 404
    assert (await unknown.json())["error"]["code"] == "model_not_found"
    ambiguous = await setup.post("same")
    assert ambiguous.status == 400
    assert "one/same, two/same" in (await ambiguous.json())["error"]["message"]
    bad = await setup.client.post("/v1/embeddings", data=b"{not json")
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "invalid_json"
    nameless = await setup.client.post("/v1/embeddings", json={"input": "x"})
    assert nameless.status == 400 and (await nameless.json())["error"]["param"] == "model"


async def test_a_refused_connection_is_retried_on_another_replica(
    gateway: StartGateway, replica: StartReplica
) -> None:
    setup = await gateway()
    alive = await replica("alive")
    dead = await replica("dead")
    assert dead.client is not None
    await dead.client.close()  # its port now refuses connections
    setup.route("m").set_endpoints([dead.url, alive.url])
    setup.route("m").endpoints[alive.url].outstanding = 100  # the dead one looks idler
    for _ in range(6):
        response = await setup.post("m")
        assert response.status == 200
        assert (await response.json())["served_by"] == "alive"
    labels = {"model_namespace": "default", "model_name": "m", "reason": "connect_failed"}
    assert metric(setup.metrics, "tierwise_gateway_retries_total", **labels) == 6


async def test_shutting_down_and_loading_replicas_pass_the_request_on(
    gateway: StartGateway, replica: StartReplica
) -> None:
    setup = await gateway()
    draining = await replica("draining", unavailable("shutting_down"))
    loading = await replica("loading", unavailable("model_loading"))
    ready = await replica("ready")
    setup.route("m").set_endpoints([draining.url, loading.url, ready.url])
    setup.route("m").endpoints[ready.url].outstanding = 100  # the others are tried first
    for _ in range(5):
        response = await setup.post("m")
        assert response.status == 200 and (await response.json())["served_by"] == "ready"
    assert (len(draining.seen), len(loading.seen), len(ready.seen)) == (5, 5, 5)


async def test_when_every_replica_is_full_their_503_reaches_the_client_at_once(
    gateway: StartGateway, replica: StartReplica
) -> None:
    setup = await gateway(GatewaySettings(wait_s=30))
    full = [await replica(f"full-{i}", unavailable("queue_full")) for i in range(2)]
    setup.route("m").set_endpoints([r.url for r in full])
    started = time.monotonic()
    response = await setup.post("m")
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    assert (await response.json())["error"]["code"] == "queue_full"
    assert time.monotonic() - started < 5  # not held for the 30 s wait
    assert all(len(r.seen) == 1 for r in full)  # each tried once


async def test_a_4xx_or_500_from_the_engine_is_the_answer_not_retried(
    gateway: StartGateway, replica: StartReplica
) -> None:
    async def refuse(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response({"error": {"code": "context_length_exceeded"}}, status=400)

    async def crash(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response({"error": {"code": "internal"}}, status=500)

    setup = await gateway()
    first = await replica("refuses", refuse)
    setup.route("m").set_endpoints([first.url])
    assert (await setup.post("m")).status == 400
    second = await replica("crashes", crash)
    spare = await replica("spare")
    setup.route("m").set_endpoints([second.url])
    assert (await setup.post("m")).status == 500
    setup.route("m").set_endpoints([second.url, spare.url])
    assert len(first.seen) == 1 and len(second.seen) == 1


async def test_a_stream_passes_through_event_by_event_and_is_never_retried_once_started(
    gateway: StartGateway, replica: StartReplica
) -> None:
    release = asyncio.Event()
    sent: list[float] = []

    async def stream_then_die(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"token": "one"}\n\n')
        sent.append(time.monotonic())
        await release.wait()
        assert request.transport is not None
        request.transport.close()  # the replica dies mid-stream
        return response

    setup = await gateway()
    dying = await replica("dying", stream_then_die)
    spare = await replica("spare")
    setup.route("m").set_endpoints([dying.url, spare.url])
    setup.route("m").endpoints[spare.url].outstanding = 100  # the dying one is picked first
    response = await setup.post("m", path="/v1/completions", stream=True)
    assert response.status == 200
    first = await response.content.readuntil(b"\n\n")
    # The first event arrived while the replica still holds the stream open.
    assert first == b'data: {"token": "one"}\n\n' and not release.is_set()
    release.set()
    # The client sees the stream break (not a clean end that would pass for a whole one).
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.content.read()
    assert spare.seen == []  # a started stream is never sent again
    await wait_until(lambda: metric(setup.metrics, "tierwise_gateway_errors_total",
                                    model_namespace="default", model_name="m",
                                    reason="connection_error") +
                     metric(setup.metrics, "tierwise_gateway_errors_total",
                            model_namespace="default", model_name="m",
                            reason="disconnected") >= 1)  # fmt: skip


async def test_a_model_at_zero_is_held_woken_and_served(
    gateway: StartGateway, replica: StartReplica
) -> None:
    woken = await replica("woken")
    setup: Any = None

    def wake(route: Route) -> None:
        # The operator scales it up; its first replica turns ready a moment later.
        asyncio.get_running_loop().call_later(0.3, route.set_endpoints, [woken.url])

    setup = await gateway(GatewaySettings(wait_s=20), on_demand=wake)
    setup.route("sleepy")
    started = time.monotonic()
    answers = await asyncio.gather(*(setup.post("sleepy") for _ in range(5)))
    assert [a.status for a in answers] == [200] * 5
    assert time.monotonic() - started >= 0.3
    assert setup.demands and set(setup.demands) == {"default/sleepy"}
    assert metric(setup.metrics, "tierwise_gateway_queue_seconds_count",
                  model_namespace="default", model_name="sleepy") == 5  # fmt: skip


async def test_past_the_wait_a_held_request_gets_503_with_retry_after_never_a_hang(
    gateway: StartGateway,
) -> None:
    setup = await gateway(GatewaySettings(wait_s=0.5, retry_after_s=7))
    setup.route("sleepy")
    started = time.monotonic()
    response = await setup.post("sleepy")
    waited = time.monotonic() - started
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    body = await response.json()
    assert body["error"]["code"] == "no_ready_replica"
    assert "being woken" in body["error"]["message"]
    assert 0.5 <= waited < 5


async def test_the_wait_queue_per_model_is_bounded(gateway: StartGateway) -> None:
    setup = await gateway(GatewaySettings(wait_s=2, max_queue=3))
    setup.route("sleepy")
    answers = await asyncio.gather(*(setup.post("sleepy") for _ in range(5)))
    codes = sorted([(await a.json())["error"]["code"] for a in answers])
    assert codes == ["no_ready_replica"] * 3 + ["queue_full"] * 2
    assert all(a.status == 503 and "Retry-After" in a.headers for a in answers)


async def test_a_hot_model_over_its_bound_is_refused_while_another_is_served(
    gateway: StartGateway, replica: StartReplica
) -> None:
    gate = asyncio.Event()

    async def slow(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        await gate.wait()
        return await answer(request, body)

    setup = await gateway(GatewaySettings(max_pending=4))
    hot, cold = await replica("hot", slow), await replica("cold")
    setup.route("hot").set_endpoints([hot.url])
    setup.route("cold").set_endpoints([cold.url])
    flood = [asyncio.create_task(setup.post("hot")) for _ in range(10)]
    await wait_until(lambda: len(hot.seen) == 4)
    started = time.monotonic()
    assert (await setup.post("cold")).status == 200
    assert time.monotonic() - started < 2
    gate.set()
    statuses = sorted([r.status for r in await asyncio.gather(*flood)])
    assert statuses == [200] * 4 + [503] * 6


async def test_a_replica_that_went_away_is_replaced_while_the_request_waits(
    gateway: StartGateway, replica: StartReplica
) -> None:
    setup = await gateway(GatewaySettings(wait_s=20))
    gone = await replica("gone")
    assert gone.client is not None
    await gone.client.close()
    fresh = await replica("fresh")
    route = setup.route("m")
    route.set_endpoints([gone.url])
    asyncio.get_running_loop().call_later(0.5, route.set_endpoints, [fresh.url])
    response = await setup.post("m")
    assert response.status == 200 and (await response.json())["served_by"] == "fresh"
    assert setup.demands == []  # it had a replica all along: nothing to wake


async def test_gateway_metrics_count_requests_per_model(
    gateway: StartGateway, replica: StartReplica
) -> None:
    setup = await gateway()
    rep = await replica("r")
    setup.route("m").set_endpoints([rep.url])
    for _ in range(3):
        await setup.post("m")
    text = await (await setup.client.get("/metrics")).text()
    assert ('tierwise_gateway_requests_total{code="200",model_name="m",'
            'model_namespace="default",route="/v1/embeddings"} 3.0') in text  # fmt: skip
    assert 'tierwise_gateway_ready_endpoints{model_name="m",model_namespace="default"} 1.0' in text
    assert 'tierwise_gateway_in_flight{model_name="m",model_namespace="default"} 0.0' in text


async def test_before_the_first_list_an_unknown_model_is_503_not_404(
    gateway: StartGateway,
) -> None:
    setup = await gateway(ready=lambda: False)
    response = await setup.post("not-listed-yet")
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert (await response.json())["error"]["code"] == "gateway_starting"
