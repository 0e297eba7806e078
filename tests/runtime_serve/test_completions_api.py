"""POST /v1/completions: OpenAI's shape, stop strings, SSE streaming, prompts decoded together."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from .conftest import Client, StartServer, lifecycle, sample, scrape, wait_until
from .fakes import FakeGenerationEngine

MODEL = "fake-generator"


async def complete(client: Client, **request: Any) -> dict[str, Any]:
    response = await client.post("/v1/completions", json={"model": MODEL} | request)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def stream_events(client: Client, **request: Any) -> list[str]:
    """The `data:` payloads of an SSE response, in order."""
    body = {"model": MODEL, "stream": True} | request
    response = await client.post("/v1/completions", json=body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    raw = (await response.read()).decode()
    assert raw.endswith("\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


async def test_a_completion_has_text_finish_reason_and_usage(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    body = await complete(client, prompt="a", max_tokens=5, temperature=0)
    assert body["object"] == "text_completion" and body["model"] == MODEL
    assert body["id"].startswith("cmpl-")
    assert body["choices"] == [
        {"text": "bcdef", "index": 0, "logprobs": None, "finish_reason": "length"}
    ]
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}


async def test_an_end_token_finishes_with_stop_and_shows_no_text(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    body = await complete(client, prompt="w", max_tokens=10, temperature=0)
    assert body["choices"][0]["text"] == "xyz"
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("stop", "text"),
    [("de", "bc"), (["x", "ef"], "bcd"), (["q", "b"], ""), ("zz", "bcdefghi")],
)
async def test_stop_strings_end_the_text_before_them(
    start_server: StartServer, generator: FakeGenerationEngine, stop: Any, text: str
) -> None:
    client = await start_server(generator)
    body = await complete(client, prompt="a", max_tokens=8, temperature=0, stop=stop)
    assert body["choices"][0]["text"] == text
    assert body["choices"][0]["finish_reason"] == ("length" if len(text) == 8 else "stop")


async def test_a_stop_string_ends_decoding_early(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    steps_before = generator.steps_run
    await complete(client, prompt="a", max_tokens=20, temperature=0, stop="c")
    assert generator.steps_run - steps_before == 2  # b, c: not the 20 asked for


async def test_a_prompt_list_gets_one_choice_per_prompt(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    body = await complete(client, prompt=["a", "m"], max_tokens=3, temperature=0)
    assert [(c["index"], c["text"]) for c in body["choices"]] == [(0, "bcd"), (1, "nop")]
    assert body["usage"]["completion_tokens"] == 6


async def test_sampling_parameters_reach_the_engine(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    request = {"prompt": "a", "max_tokens": 6, "temperature": 0.7, "top_p": 0.9, "seed": 7}
    first = await complete(client, **request)
    second = await complete(client, **request)
    assert first["choices"][0]["text"] == second["choices"][0]["text"]
    params = generator.params[-1]
    assert (params.max_tokens, params.temperature, params.top_p, params.seed) == (6, 0.7, 0.9, 7)


async def test_streaming_sends_text_deltas_then_done(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    events = await stream_events(client, prompt="a", max_tokens=4, temperature=0, stop="e")
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(c["object"] == "text_completion" and c["model"] == MODEL for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    texts = [c["choices"][0]["text"] for c in chunks]
    reasons = [c["choices"][0]["finish_reason"] for c in chunks]
    assert "".join(texts) == "bcd"
    assert reasons == [None] * (len(chunks) - 1) + ["stop"]
    assert len(chunks) >= 3  # streamed piece by piece, not in one go


async def test_streaming_with_include_usage_ends_with_a_usage_chunk(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    events = await stream_events(
        client, prompt="a", max_tokens=3, temperature=0, stream_options={"include_usage": True}
    )
    last = json.loads(events[-2])
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


async def test_concurrent_prompts_are_decoded_together(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator, max_batch=4, max_wait_s=1.0)
    warm_up = len(generator.batches)
    bodies = await asyncio.gather(
        *(complete(client, prompt=letter, max_tokens=2, temperature=0) for letter in "abcd")
    )
    assert [b["choices"][0]["text"] for b in bodies] == ["bc", "cd", "de", "ef"]
    assert generator.batches[warm_up:] == [4]
    samples = await scrape(client)
    assert sample(samples, "tierwise_runtime_batch_size_sum", route="/v1/completions") == 4
    assert sample(samples, "tierwise_runtime_tokens_total", kind="completion") == 8
    assert sample(samples, "tierwise_runtime_tokens_total", kind="prompt") == 8


async def test_a_client_that_leaves_a_stream_stops_its_decoding(
    start_server: StartServer,
) -> None:
    slow = FakeGenerationEngine(delay_s=0.05)
    client = await start_server(slow)
    steps_before = slow.steps_run
    body = {"model": MODEL, "prompt": "a", "max_tokens": 20, "temperature": 0, "stream": True}
    response = await client.post("/v1/completions", json=body)
    await response.content.readuntil(b"\n\n")  # the first chunk
    response.close()
    await wait_until(lambda: not lifecycle(client).worker.busy)
    assert slow.steps_run - steps_before < 10  # all 20 would take a second
