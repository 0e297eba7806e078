"""Bad requests get a 4xx with an OpenAI-style body that names the problem, and lose nothing."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import StartServer, assert_error
from .fakes import FakeEmbeddingEngine, FakeGenerationEngine

EMBED = {"model": "fake-embedder", "input": "fine"}
COMPLETE = {"model": "fake-generator", "prompt": "a"}
LONG_TEXT = " ".join(["word"] * 20)  # 22 tokens with CLS and SEP; the fake takes 16


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", (400, "invalid_json", None)),
        (b"\xff\xfe", (400, "invalid_json", None)),
        (b"[1, 2]", (400, "invalid_json", None)),
        ({"input": "x"}, (400, "missing_required_parameter", "model")),
        ({"model": 5, "input": "x"}, (400, "invalid_type", "model")),
        ({"model": "gpt-4", "input": "x"}, (404, "model_not_found", "model")),
        ({"model": "fake-embedder"}, (400, "missing_required_parameter", "input")),
        (EMBED | {"input": 42}, (400, "invalid_type", "input")),
        (EMBED | {"input": [1, 2, 3]}, (400, "invalid_type", "input")),
        (EMBED | {"input": ["ok", None]}, (400, "invalid_type", "input")),
        (EMBED | {"input": []}, (400, "empty_input", "input")),
        (EMBED | {"input": ""}, (400, "empty_input", "input")),
        (EMBED | {"input": ["ok", ""]}, (400, "empty_input", "input")),
        (EMBED | {"input": ["ok", LONG_TEXT]}, (400, "context_length_exceeded", "input")),
        (EMBED | {"input": ["x"] * 9}, (400, "too_many_inputs", "input")),
        (EMBED | {"encoding_format": "fp16"}, (400, "invalid_value", "encoding_format")),
        (EMBED | {"dimensions": 4}, (400, "invalid_value", "dimensions")),
        (EMBED | {"dimensions": "8"}, (400, "invalid_type", "dimensions")),
    ],
)
async def test_bad_embedding_requests_are_refused_with_the_reason(
    start_server: StartServer,
    embedder: FakeEmbeddingEngine,
    body: Any,
    expected: tuple[int, str, str | None],
) -> None:
    status, code, param = expected
    client = await start_server(embedder, max_queue=8)
    batches = len(embedder.batches)
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = await client.post("/v1/embeddings", **kwargs)
    assert response.status == status
    assert_error(await response.json(), code, param)
    assert len(embedder.batches) == batches  # the engine never saw it
    good = await client.post("/v1/embeddings", json=EMBED)
    assert good.status == 200  # and the server carries on


@pytest.mark.parametrize(
    ("patch", "code", "param"),
    [
        ({"prompt": None}, "missing_required_parameter", "prompt"),
        ({"prompt": [[1, 2]]}, "invalid_type", "prompt"),
        ({"prompt": ""}, "empty_input", "prompt"),
        ({"max_tokens": "5"}, "invalid_type", "max_tokens"),
        ({"max_tokens": True}, "invalid_type", "max_tokens"),
        ({"max_tokens": 0}, "invalid_value", "max_tokens"),
        ({"max_tokens": 64}, "context_length_exceeded", "prompt"),
        ({"prompt": "a" * 70, "max_tokens": 1}, "context_length_exceeded", "prompt"),
        ({"temperature": 2.5}, "invalid_value", "temperature"),
        ({"temperature": "hot"}, "invalid_type", "temperature"),
        ({"top_p": 0}, "invalid_value", "top_p"),
        ({"top_p": 1.5}, "invalid_value", "top_p"),
        ({"seed": 1.5}, "invalid_type", "seed"),
        ({"seed": 2**64}, "invalid_value", "seed"),
        ({"stop": 5}, "invalid_type", "stop"),
        ({"stop": ""}, "invalid_type", "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "invalid_value", "stop"),
        ({"stream": "yes"}, "invalid_type", "stream"),
        ({"stream": True, "stream_options": "usage"}, "invalid_type", "stream_options"),
        ({"n": 2}, "unsupported_parameter", "n"),
        ({"echo": True}, "unsupported_parameter", "echo"),
        ({"logprobs": 3}, "unsupported_parameter", "logprobs"),
    ],
)
async def test_bad_completion_requests_are_refused_with_the_reason(
    start_server: StartServer,
    generator: FakeGenerationEngine,
    patch: dict[str, Any],
    code: str,
    param: str,
) -> None:
    client = await start_server(generator)
    body = {k: v for k, v in (COMPLETE | patch).items() if v is not None}
    response = await client.post("/v1/completions", json=body)
    assert response.status == 400
    assert_error(await response.json(), code, param)


@pytest.mark.parametrize(
    ("engine", "route", "body"),
    [
        (FakeEmbeddingEngine, "/v1/completions", {"model": "fake-embedder", "prompt": "a"}),
        (FakeGenerationEngine, "/v1/embeddings", {"model": "fake-generator", "input": "a"}),
    ],
)
async def test_a_task_the_model_does_not_do_is_refused(
    start_server: StartServer, engine: type, route: str, body: dict[str, str]
) -> None:
    client = await start_server(engine())
    response = await client.post(route, json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    assert_error({"error": error}, "unsupported_task", "model")
    assert route in error["message"]


@pytest.mark.parametrize(
    ("request_line", "status", "code"),
    [
        ("GET /v1/chat", 404, "not_found"),
        ("POST /nowhere", 404, "not_found"),
        ("GET /v1/embeddings", 405, "method_not_allowed"),
        ("DELETE /v1/completions", 405, "method_not_allowed"),
        ("POST /readyz", 405, "method_not_allowed"),
    ],
)
async def test_unknown_routes_and_methods_get_json_errors(
    start_server: StartServer,
    embedder: FakeEmbeddingEngine,
    request_line: str,
    status: int,
    code: str,
) -> None:
    method, path = request_line.split()
    client = await start_server(embedder)
    response = await client.request(method, path)
    assert response.status == status
    assert_error(await response.json(), code)
    if status == 405:
        assert method in (await response.json())["error"]["message"]
        assert response.headers["Allow"]


async def test_a_body_over_the_size_limit_gets_413(
    start_server: StartServer, embedder: FakeEmbeddingEngine
) -> None:
    client = await start_server(embedder, max_body_bytes=1024)
    response = await client.post("/v1/embeddings", json=EMBED | {"input": "x " * 1000})
    assert response.status == 413
    assert_error(await response.json(), "request_too_large")


async def test_an_engine_failure_is_a_500_with_a_json_body(
    start_server: StartServer, embedder: FakeEmbeddingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await start_server(embedder)

    def broken(texts: list[str]) -> None:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(embedder, "embed", broken)
    response = await client.post("/v1/embeddings", json=EMBED)
    assert response.status == 500
    body = await response.json()
    assert body["error"]["type"] == "server_error"
    monkeypatch.undo()
    assert (await client.post("/v1/embeddings", json=EMBED)).status == 200
