"""Continuous batching in the server: requests join the running batch between decode steps,
leave it as soon as they end, and it never holds more than max_batch sequences."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .conftest import Client, StartServer, lifecycle, sample, scrape, wait_until
from .fakes import FakeContinuousEngine, FakeGenerationEngine

MODEL = "fake-generator"


async def complete(client: Client, **request: Any) -> dict[str, Any]:
    response = await client.post("/v1/completions", json={"model": MODEL} | request)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def start_long(client: Client) -> Any:
    """A streamed request for 20 letters, once its first chunk has arrived (it decodes)."""
    body = {"model": MODEL, "prompt": "a", "max_tokens": 20, "temperature": 0, "stream": True}
    response = await client.post("/v1/completions", json=body)
    await response.content.readuntil(b"\n\n")
    return response


async def test_a_short_request_finishes_while_a_long_one_still_decodes(
    start_server: StartServer,
) -> None:
    engine = FakeContinuousEngine(delay_s=0.02)
    client = await start_server(engine, max_batch=4)
    long = await start_long(client)
    short = await complete(client, prompt="w", max_tokens=5, temperature=0)
    assert short["choices"][0]["text"] == "xyz" and short["choices"][0]["finish_reason"] == "stop"
    session = engine.sessions[-1]
    assert len(session.rows) == 1, "the long request should still be running"
    rest = (await long.read()).decode()
    texts = [json.loads(e.removeprefix("data: "))["choices"] for e in rest.split("\n\n")[:-2]]
    streamed = "b" + "".join(c[0]["text"] for c in texts if c)
    assert streamed == "bcdefghijklmnopqrstu"  # 20 letters, unaffected by the short one
    assert engine.batches[-2:] == [1, 1]  # each joined the running batch on its own


async def test_a_static_engine_makes_the_short_request_wait(start_server: StartServer) -> None:
    """The contrast that makes the test above mean something."""
    engine = FakeGenerationEngine(delay_s=0.02)
    client = await start_server(engine, max_batch=4)
    long = await start_long(client)
    short = asyncio.create_task(complete(client, prompt="w", max_tokens=5, temperature=0))
    await long.read()
    assert not short.done()  # it starts only once the long group has ended
    assert (await short)["choices"][0]["text"] == "xyz"


async def test_the_running_batch_never_holds_more_than_max_batch(
    start_server: StartServer,
) -> None:
    engine = FakeContinuousEngine(delay_s=0.005)
    client = await start_server(engine, max_batch=2, max_wait_s=0.0)
    letters = "abcdefg"
    bodies = await asyncio.gather(
        *(complete(client, prompt=c, max_tokens=4, temperature=0) for c in letters)
    )
    want = ["".join(chr(ord(c) + i) for i in range(1, 5)) for c in letters]
    assert [b["choices"][0]["text"] for b in bodies] == want
    assert max(s.largest for s in engine.sessions) == 2
    assert sum(engine.batches) >= len(letters)  # every prompt joined (warm-up included)


async def test_a_client_that_leaves_gives_its_place_to_the_others(
    start_server: StartServer,
) -> None:
    engine = FakeContinuousEngine(delay_s=0.02)
    client = await start_server(engine, max_batch=4)
    leaving = await start_long(client)
    staying = asyncio.create_task(complete(client, prompt="p", max_tokens=8, temperature=0))
    await wait_until(lambda: len(engine.sessions[-1].rows) == 2)
    leaving.close()
    assert (await staying)["choices"][0]["text"] == "qrstuvwx"
    await wait_until(lambda: not engine.sessions[-1].rows and not lifecycle(client).worker.busy)
    assert engine.steps_run < 20 + 5  # the one that left stopped early


async def test_a_prompt_that_would_stretch_the_cache_past_the_context_waits_its_turn(
    start_server: StartServer,
) -> None:
    """Each sequence fits the 64-token context alone; together their cache would need a
    41-token history plus 59 tokens of room, so the second joins once the first has left."""
    engine = FakeContinuousEngine(max_tokens=64, delay_s=0.005)
    client = await start_server(engine, max_batch=4)
    first = asyncio.create_task(complete(client, prompt="a", max_tokens=60, temperature=0))
    await wait_until(lambda: bool(engine.sessions and engine.sessions[-1].rows))
    second = await complete(client, prompt="m" * 39 + "a", max_tokens=5, temperature=0)
    assert first.done()  # the second could only start after the first had ended
    assert (await first)["choices"][0]["text"] == "bcdefghijklmnopqrstuvwxyz"
    assert second["choices"][0]["text"] == "bcdef"
    assert engine.sessions[-1].largest == 1


async def test_the_running_sequences_gauge_follows_the_batch(start_server: StartServer) -> None:
    engine = FakeContinuousEngine(delay_s=0.02)
    client = await start_server(engine, max_batch=4)
    long = await start_long(client)
    assert sample(await scrape(client), "tierwise_runtime_running_sequences") == 1
    await long.read()
    await wait_until(lambda: not engine.sessions[-1].rows)
    assert sample(await scrape(client), "tierwise_runtime_running_sequences") == 0
