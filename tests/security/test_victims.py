"""Poisonous requests next to a victim's: the poison is refused or contained, the victim's
request, running at the same time, succeeds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tierwise_runtime.chat import RENDER_LIMIT_S
from tierwise_runtime.engine import Engine, SamplingParams
from tierwise_runtime.engines.generation import DecoderEngine
from tierwise_runtime.engines.sampling import SamplingError
from tierwise_runtime.textstream import TextStream

from .live_server import LiveServer, Reply, wait_until

VICTIM = {"model": "tiny-llama", "prompt": "w5 w6 w7", "max_tokens": 8, "temperature": 0.8,
          "seed": 3}  # fmt: skip


def _raw(payload: dict[str, Any], **raw_fields: str) -> bytes:
    """JSON with fields written verbatim (NaN and Infinity are not JSON, but clients send them)."""
    text = json.dumps(payload)[:-1]
    return (text + "".join(f', "{k}": {v}' for k, v in raw_fields.items()) + "}").encode()


def _alongside(
    poisons: list[Callable[[], Reply]], victims: int, victim: Callable[[], Reply]
) -> tuple[list[Reply], list[Reply]]:
    """Run the poisons and `victims` victim requests all at once."""
    with ThreadPoolExecutor(len(poisons) + victims) as pool:
        bad = [pool.submit(p) for p in poisons]
        good = [pool.submit(victim) for _ in range(victims)]
        return [f.result() for f in bad], [f.result() for f in good]


def _assert_victim_served(reply: Reply, tokens: int = 8) -> None:
    assert reply.status == 200, reply.body[:300]
    body = reply.json()
    assert body["usage"]["completion_tokens"] >= 1
    assert body["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.parametrize(
    "raw_field",
    [{"temperature": "NaN"}, {"temperature": "Infinity"}, {"top_p": "NaN"}, {"top_p": "-Infinity"},
     {"temperature": "1e309"}, {"presence_penalty": "NaN"}],
)  # fmt: skip
def test_non_finite_sampling_values_are_400s_and_the_victims_are_served(
    llama_server: LiveServer, raw_field: dict[str, str]
) -> None:
    poison = _raw({"model": "tiny-llama", "prompt": "w9", "max_tokens": 8}, **raw_field)
    bad, good = _alongside(
        [lambda: llama_server.request("POST", "/v1/completions", poison)] * 3,
        3,
        lambda: llama_server.post_json("/v1/completions", VICTIM),
    )
    for reply in bad:
        assert reply.status == 400, reply.body
        assert reply.json()["error"]["param"] == next(iter(raw_field))
    for reply in good:
        _assert_victim_served(reply)


def test_a_tiny_temperature_is_greedy_and_the_victims_are_served(llama_server: LiveServer) -> None:
    tiny = VICTIM | {"temperature": 1e-300, "max_tokens": 6}
    greedy = llama_server.post_json("/v1/completions", tiny | {"temperature": 0})
    bad, good = _alongside(
        [lambda: llama_server.post_json("/v1/completions", tiny)] * 3,
        3,
        lambda: llama_server.post_json("/v1/completions", VICTIM),
    )
    for reply in bad:
        assert reply.status == 200, reply.body
        assert reply.json()["choices"][0]["text"] == greedy.json()["choices"][0]["text"]
    for reply in good:
        _assert_victim_served(reply)


def test_a_sequence_whose_sampling_fails_leaves_alone(tiny_llama: Engine) -> None:
    """Below the API's checks: a row that cannot be sampled leaves with its error; its
    neighbours decode exactly what they decode without it."""
    assert isinstance(tiny_llama, DecoderEngine)
    ids = tiny_llama.tokenize(["w5 w6", "w7 w8 w9", "w10"])
    greedy = SamplingParams(max_tokens=6, temperature=0.0)

    def run(params: list[SamplingParams]) -> tuple[list[list[int]], list[Any]]:
        session = tiny_llama.session()
        rows = session.join(ids, params)
        out: list[list[int]] = [[] for _ in rows]
        while session.rows:
            for row, token in session.advance():
                if row.error is None:
                    out[rows.index(row)].append(token)
        return out, [row.error for row in rows]

    alone, _ = run([greedy, greedy, greedy])
    poisoned = _nan_logits_params()
    together, errors = run([greedy, poisoned, greedy])
    assert isinstance(errors[1], SamplingError)
    assert errors[0] is None and errors[2] is None
    assert together[0] == alone[0] and together[2] == alone[2]
    assert together[1] == []


def _nan_logits_params() -> SamplingParams:
    # What the API refuses, sent straight to the engine: a nucleus of top_p -1 keeps no
    # token, so the probabilities are 0/0.
    return SamplingParams(max_tokens=6, temperature=1.0, top_p=-1.0, seed=1)


def test_a_failing_sequence_fails_only_its_own_request(llama_server: LiveServer) -> None:
    """Through the running server: a poisoned prompt, submitted below the API's checks
    while three victims decode, fails its own stream; the victims are served in full."""
    service = llama_server.life.completions
    assert service is not None
    victim = VICTIM | {"max_tokens": 200, "temperature": 0.0}
    alone = llama_server.post_json("/v1/completions", victim).json()["choices"][0]

    async def poisoned() -> BaseException | None:
        stream = await service.submit(["w3 w4"], _nan_logits_params())
        try:
            async for _ in stream:
                pass
        except Exception as exc:
            return exc
        return None

    with ThreadPoolExecutor(3) as pool:
        victims = [pool.submit(llama_server.post_json, "/v1/completions", victim) for _ in range(3)]
        wait_until(lambda: llama_server.life.metrics.running._value.get() >= 3)
        outcome = asyncio.run_coroutine_threadsafe(poisoned(), llama_server.loop).result(30)
        replies = [v.result() for v in victims]
    assert isinstance(outcome, SamplingError)
    for reply in replies:
        _assert_victim_served(reply)
        assert reply.json()["choices"][0] == alone


@pytest.mark.parametrize(
    ("stop", "why"),
    [(["a", "b", "c", "d", "e"], "at most 4"), (["x" * 257], "at most 256"),
     (["y" * 60_000] * 4, "at most 256")],
)  # fmt: skip
def test_too_many_or_too_long_stop_strings_are_400s(
    generator_server: LiveServer, stop: list[str], why: str
) -> None:
    body = {"model": "fake-generator", "prompt": "a", "stop": stop}
    reply = generator_server.post_json("/v1/completions", body)
    assert reply.status == 400
    assert reply.json()["error"]["param"] == "stop" and why in reply.json()["error"]["message"]
    assert reply.seconds < 5


def test_stop_matching_costs_time_linear_in_the_generated_text() -> None:
    """The worst stop strings allowed (four of 256 characters that almost match all the
    time) cost the same per token late in a long text as early in it."""
    stops = ["a" * 255 + "b", "a" * 254 + "c", "a" * 253 + "d", "a" * 252 + "e"]

    def cost(tokens: int) -> float:
        stream = TextStream(lambda ids: "a" * len(ids), stops)
        started = time.perf_counter()
        for _ in range(tokens):
            stream.push(97)
        return time.perf_counter() - started

    short, long = min(cost(2000) for _ in range(3)), min(cost(8000) for _ in range(3))
    assert long < 8 * short  # quadratic would be 16x; linear is 4x
    assert long < 5.0


def test_a_stop_string_request_at_the_bounds_leaves_the_victim_served(
    generator_server: LiveServer,
) -> None:
    stops = ["b" * 255 + "!", "c" * 255 + "!", "d" * 255 + "!", "e" * 255 + "!"]
    abusive = {"model": "fake-generator", "prompt": "a", "stop": stops, "max_tokens": 200}
    victim = {"model": "fake-generator", "prompt": "a", "max_tokens": 5, "temperature": 0}
    bad, good = _alongside(
        [lambda: generator_server.post_json("/v1/completions", abusive)] * 4,
        4,
        lambda: generator_server.post_json("/v1/completions", victim),
    )
    assert all(reply.status == 200 for reply in bad)
    for reply in good:
        assert reply.status == 200 and reply.json()["choices"][0]["text"] == "bcdef"


def test_an_endless_chat_template_is_cut_short_and_the_victims_are_served(
    llama_server: LiveServer,
) -> None:
    chat = {"model": "tiny-llama", "messages": [{"role": "user", "content": "w4"}]}
    bad, good = _alongside(
        [lambda: llama_server.post_json("/v1/chat/completions", chat)] * 2,
        3,
        lambda: llama_server.post_json("/v1/completions", VICTIM),
    )
    for reply in bad:
        assert reply.status == 400, reply.body
        assert "ran out of time" in reply.json()["error"]["message"]
        assert reply.seconds < 2 * RENDER_LIMIT_S + 10  # two renders queue on one thread
    for reply in good:
        _assert_victim_served(reply)
    assert llama_server.request("GET", "/readyz").status == 200


@pytest.mark.parametrize(
    "template",
    ["{{ 'x' * 100000000 }}", "{{ 2 ** 100000000 }}", "{{ [1] * 100000000 }}",
     "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'abcdefgh' }}"
     "{% endfor %}{% endfor %}",
     "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"],
)  # fmt: skip
def test_templates_that_build_huge_values_refuse_fast(template: str) -> None:
    from tierwise_runtime.chat import ChatMessage, ChatTemplate
    from tierwise_runtime.errors import InputError

    started = time.perf_counter()
    with pytest.raises(InputError, match="chat template"):
        ChatTemplate(template).render([ChatMessage("user", "hi")])
    assert time.perf_counter() - started < RENDER_LIMIT_S + 2


@pytest.mark.parametrize(
    "raw",
    [b'{"model": "fake-generator", "prompt": "\\ud800"}',
     b'{"model": "fake-generator", "prompt": "a", "stop": ["\\udfff"]}',
     b'{"model": "fake-generator", "prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
)  # fmt: skip
def test_lone_surrogates_and_deep_nesting_are_400s(
    generator_server: LiveServer, raw: bytes
) -> None:
    reply = generator_server.request("POST", "/v1/completions", raw)
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "invalid_json"


def test_a_text_too_long_for_any_tokenization_is_refused_before_tokenizing(
    generator_server: LiveServer,
) -> None:
    engine = generator_server.life.completions
    assert engine is not None
    limit = 256 * 32  # the fake's context times chars_per_token
    body = {"model": "fake-generator", "prompt": "a" * (limit + 1)}
    started = time.perf_counter()
    reply = generator_server.post_json("/v1/completions", body)
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "context_length_exceeded"
    assert f"at most {limit}" in reply.json()["error"]["message"]
    assert time.perf_counter() - started < 5
