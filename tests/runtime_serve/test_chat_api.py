"""POST /v1/chat/completions: messages through the model's chat template, OpenAI's shapes for
whole and streamed answers, and a clear 400 for what cannot be served."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Client, StartServer, sample, scrape
from .fakes import FakeEmbeddingEngine, FakeGenerationEngine

MODEL = "fake-generator"
ASK = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


async def chat(client: Client, status: int = 200, **request: Any) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", json={"model": MODEL} | request)
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_an_answer_is_the_assistant_message_with_finish_reason_and_usage(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    body = await chat(client, messages=ASK, max_tokens=4, temperature=0)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "abcd"}
    assert choice["finish_reason"] == "length" and choice["index"] == 0
    prompt = "<system>Be brief.\n<user>Hi\n<assistant>"
    assert body["usage"] == {"prompt_tokens": 1 + len(prompt), "completion_tokens": 4,
                             "total_tokens": 1 + len(prompt) + 4}  # fmt: skip
    samples = await scrape(client)
    route = "/v1/chat/completions"
    assert sample(samples, "tierwise_runtime_requests_total", route=route, status="200") == 1


async def test_text_parts_stop_strings_and_max_completion_tokens_are_honoured(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    text = [{"type": "text", "text": "H"}, {"type": "text", "text": "i"}]
    parts = [{"role": "user", "content": text}]
    body = await chat(client, messages=parts, max_completion_tokens=10, stop="e", temperature=0)
    assert body["choices"][0]["message"]["content"] == "abcd"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert generator.params[-1].max_tokens == 10


async def test_streaming_sends_the_role_then_content_then_the_finish(
    start_server: StartServer, generator: FakeGenerationEngine
) -> None:
    client = await start_server(generator)
    body = {"model": MODEL, "messages": ASK, "max_tokens": 3, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    events = (await response.read()).decode().split("\n\n")[:-1]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2])
    assert content == "abc"
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": "length"}  # fmt: skip
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("request_body", "param", "code", "words"),
    [
        ({}, "messages", "missing_required_parameter", "messages is required"),
        ({"messages": []}, "messages", "empty_input", "must not be an empty list"),
        ({"messages": "hi"}, "messages", "invalid_type", "list of messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages", "invalid_value",
         "messages[0].role must be one of system, developer, user, assistant"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages", "unsupported_content", "only text parts are supported, got 'image_url'"),
        ({"messages": [{"role": "user"}]}, "messages", "invalid_type",
         "messages[0].content must be a string or a list of text parts"),
        ({"messages": ASK, "n": 2}, "n", "unsupported_parameter", "n=2 is not supported"),
        ({"messages": ASK, "tools": [{"type": "function"}]}, "tools", "unsupported_parameter",
         "is not supported"),
    ],
)  # fmt: skip
async def test_bad_requests_get_a_400_naming_the_problem(
    start_server: StartServer,
    generator: FakeGenerationEngine,
    request_body: dict[str, Any],
    param: str,
    code: str,
    words: str,
) -> None:
    client = await start_server(generator)
    error = (await chat(client, 400, **request_body))["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert words in error["message"]


async def test_a_model_without_a_chat_template_says_to_use_completions(
    start_server: StartServer,
) -> None:
    client = await start_server(FakeGenerationEngine(chat_template=None))
    error = (await chat(client, 400, messages=ASK))["error"]
    assert error["code"] == "chat_unavailable"
    assert "no chat template: send a prompt to /v1/completions" in error["message"]


async def test_an_embedding_model_does_not_chat(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder)
    response = await client.post(
        "/v1/chat/completions", json={"model": "fake-embedder", "messages": ASK}
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "unsupported_task"
