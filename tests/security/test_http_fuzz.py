"""Every HTTP route, fuzzed with hypothesis against the real app: no answer is a 5xx, and the
server still answers its liveness probe after each case."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .live_server import LiveServer

ROUTES = ["/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/models",
          "/healthz", "/readyz", "/metrics", "/v1/nothing", "/"]  # fmt: skip
FIELDS = ["model", "prompt", "input", "messages", "max_tokens", "max_completion_tokens",
          "temperature", "top_p", "seed", "stop", "stream", "stream_options", "n", "best_of",
          "echo", "logprobs", "suffix", "tools", "response_format", "encoding_format",
          "dimensions", "presence_penalty", "frequency_penalty", "user"]  # fmt: skip
KEYS = ["type", "role", "content", "text"]
MODELS = ["fake-generator", "fake-embedder", "nope"]
CASES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# Text with what breaks servers: lone surrogates, NUL, long runs, non-BMP characters.
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "😀" * 20, "a" * 3000, "", " "]),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-300, 5e-324, -0.0, 0, 1, 2, 2.0000001, 10**4000]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.sampled_from([*FIELDS, *KEYS]), inner, max_size=5),
    ),
    max_leaves=12,
)  # fmt: skip
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool", 3]), "content": values}
    ),
    max_size=3,
)
# Mostly a served model, so most cases get past the model check to the engine.
models = st.one_of(st.sampled_from(MODELS[:2]), st.sampled_from(MODELS), values)
inputs = st.one_of(texts, st.lists(texts, min_size=1, max_size=3), values)


def _body(**required: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    mapping = {"model": models, **required}
    optional = {name: values for name in FIELDS if name not in mapping}
    return st.fixed_dictionaries(mapping, optional=optional)


bodies = st.one_of(_body(prompt=inputs), _body(input=inputs), _body(messages=messages), _body())


def _encode(body: Any) -> bytes:
    # NaN and Infinity as Python writes them: not JSON, but what clients send.
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def _deep(depth: int) -> bytes:
    return b'{"model": "fake-generator", "prompt": ' + b"[" * depth + b"]" * depth + b"}"


raw_bodies = st.one_of(
    bodies.map(_encode),
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe", _deep(100), _deep(5000),
                     _deep(200_000), b'{"model": "fake-generator", "prompt": "\\ud800"}',
                     b'{"prompt": "a", "model": "fake-generator", "temperature": NaN}']),
)  # fmt: skip
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
content_types = st.sampled_from(
    ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
)


def _check(server: LiveServer, method: str, route: str, body: bytes, ctype: str) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    reply = server.request(method, route, body if method != "GET" else None, headers)
    assert reply.status < 500, (reply.status, reply.body[:300])
    if reply.status >= 400 and route.startswith("/v1/"):
        error = reply.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
    assert server.alive()


@pytest.mark.parametrize("route", ["/v1/completions", "/v1/chat/completions"])
@CASES
@given(body=raw_bodies, ctype=content_types)
def test_generation_routes_never_answer_5xx(
    generator_server: LiveServer, route: str, body: bytes, ctype: str
) -> None:
    _check(generator_server, "POST", route, body, ctype)


@CASES
@given(body=raw_bodies)
def test_embeddings_never_answers_5xx(embedder_server: LiveServer, body: bytes) -> None:
    _check(embedder_server, "POST", "/v1/embeddings", body, "application/json")


@settings(CASES, max_examples=40)
@given(method=methods, route=st.sampled_from(ROUTES), body=raw_bodies)
def test_any_method_on_any_route_never_answers_5xx(
    generator_server: LiveServer, method: str, route: str, body: bytes
) -> None:
    _check(generator_server, method, route, body, "application/json")


@settings(CASES, max_examples=20)
@given(body=bodies.map(_encode))
def test_the_real_decoder_never_answers_5xx(llama_server: LiveServer, body: bytes) -> None:
    text = body.replace(b'"fake-generator"', b'"tiny-llama"')
    _check(llama_server, "POST", "/v1/completions", text, "application/json")
