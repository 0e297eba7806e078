"""Bodies, headers and keys: what one client holds of the server is bounded, and without the
API key nothing but the probes answers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tierwise_runtime.appkeys import BUDGET
from tierwise_runtime.cli import read_api_key

from ..runtime_serve.fakes import FakeContinuousEngine
from .conftest import TEST_CONFIG
from .live_server import LiveServer, live_server, wait_until

BODY = 256 * 1024  # TEST_CONFIG's largest body; four of them fill its budget


def _start_body(server: LiveServer, length: int, sent: bytes = b"{") -> socket.socket:
    """A connection that declares a body of `length` bytes and sends only `sent` of it."""
    sock = server.connect()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def _status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_bodies_beyond_the_bytes_in_flight_budget_get_503_and_the_budget_comes_back(
    generator_server: LiveServer,
) -> None:
    budget = generator_server.app[BUDGET]
    stalled = [_start_body(generator_server, BODY) for _ in range(4)]
    try:
        wait_until(lambda: budget.held == 4 * BODY)
        refused = generator_server.post_json(
            "/v1/completions", {"model": "fake-generator", "prompt": "a" * 1000}
        )
        assert refused.status == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "bodies_in_flight"
        assert generator_server.alive()
    finally:
        for sock in stalled:
            sock.close()
    wait_until(lambda: budget.held == 0)
    served = generator_server.post_json(
        "/v1/completions", {"model": "fake-generator", "prompt": "a", "temperature": 0}
    )
    assert served.status == 200
    assert budget.peak <= budget.capacity


def test_a_body_larger_than_the_limit_is_413_unread(generator_server: LiveServer) -> None:
    sock = _start_body(generator_server, 10 * 2**30)  # declares 10 GiB
    try:
        assert _status(sock) == 413
    finally:
        sock.close()
    assert generator_server.app[BUDGET].held == 0


def test_a_stalled_body_gets_408_after_the_body_timeout(generator_server: LiveServer) -> None:
    started = time.monotonic()
    sock = _start_body(generator_server, 1000)
    try:
        assert _status(sock) == 408
    finally:
        sock.close()
    assert TEST_CONFIG.body_timeout_s - 0.5 < time.monotonic() - started < 15


def test_headers_that_never_end_are_cut_after_the_header_timeout(
    generator_server: LiveServer,
) -> None:
    sock = generator_server.connect()
    started = time.monotonic()
    try:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert sock.recv(4096) == b""  # the server closed the connection
    finally:
        sock.close()
    assert time.monotonic() - started < TEST_CONFIG.header_timeout_s + 10
    assert generator_server.alive()


@pytest.fixture
def keyed_server() -> Iterator[LiveServer]:
    config = replace(TEST_CONFIG, api_key="s3cret-key")
    with live_server(FakeContinuousEngine(), config) as server:
        yield server


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"},
     {"Authorization": "Basic czNjcmV0LWtleQ=="}, {"Authorization": "Bearer s3cret-keyX"}],
)  # fmt: skip
def test_without_the_api_key_the_routes_answer_401(
    keyed_server: LiveServer, headers: dict[str, str]
) -> None:
    for method, path in [("POST", "/v1/completions"), ("GET", "/v1/models"), ("GET", "/nope")]:
        body = json.dumps({"model": "fake-generator", "prompt": "a"}).encode()
        reply = keyed_server.request(method, path, body if method == "POST" else None, headers)
        assert reply.status == 401
        assert reply.headers["www-authenticate"] == "Bearer"
        error = reply.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"


def test_with_the_api_key_requests_are_served_and_probes_never_need_it(
    keyed_server: LiveServer,
) -> None:
    auth = {"Authorization": "Bearer s3cret-key"}
    body = {"model": "fake-generator", "prompt": "a", "temperature": 0, "max_tokens": 3}
    assert keyed_server.post_json("/v1/completions", body, headers=auth).status == 200
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert keyed_server.request("GET", probe).status == 200


def test_the_api_key_file_is_read_without_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("s3cret-key\n")
    assert read_api_key(path) == "s3cret-key"
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_api_key(path)


def _metric(server: LiveServer, name: str) -> float:
    text = server.request("GET", "/metrics").body.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no metric {name}")


def test_an_engine_call_over_its_limit_turns_the_replica_not_ready_until_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = FakeContinuousEngine()
    config = replace(TEST_CONFIG, engine_call_limit_s=0.3)
    with live_server(engine, config) as server:
        engine.hold()
        with server_request_in_background(server) as pending:
            wait_until(lambda: server.request("GET", "/readyz").status == 503)
            readyz = server.request("GET", "/readyz").json()
            assert readyz["status"] == "stalled"
            assert "over its limit of 0.3 s" in readyz["reason"]
            assert _metric(server, "tierwise_runtime_engine_stalled") == 1
            assert _metric(server, "tierwise_runtime_ready") == 0
            assert server.alive()
            engine.release()
            assert pending.result(30).status == 200
        wait_until(lambda: server.request("GET", "/readyz").status == 200)
        assert _metric(server, "tierwise_runtime_engine_stalled") == 0
        assert _metric(server, "tierwise_runtime_engine_overruns_total") == 1
    assert any("not ready: the engine call" in r.message for r in caplog.records)


class server_request_in_background:  # noqa: N801 (reads as a with-statement)
    """A completion sent on a thread while the block runs."""

    def __init__(self, server: LiveServer) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1)
        body = {"model": "fake-generator", "prompt": "a", "temperature": 0, "max_tokens": 3}
        self._future = self._pool.submit(server.post_json, "/v1/completions", body)

    def __enter__(self) -> object:
        return self._future

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)


def test_the_api_key_file_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tierwise_runtime.cli import API_KEY_FILE_ENV, build_parser

    args = build_parser().parse_args(["serve", "--model", "builtin://x", "--api-key-file", "/k"])
    assert args.api_key_file == Path("/k")
    monkeypatch.setenv(API_KEY_FILE_ENV, "/run/secrets/tierwise/key")
    args = build_parser().parse_args(["serve", "--model", "builtin://x"])
    assert Path(args.api_key_file) == Path("/run/secrets/tierwise/key")
    monkeypatch.delenv(API_KEY_FILE_ENV)
    assert build_parser().parse_args(["serve", "--model", "builtin://x"]).api_key_file is None
