"""SIGTERM with a stalled body and a long stream in flight: the process still exits soon
after its drain timeout, and the stream ends with an error event, then [DONE]."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ..runtime_serve.conftest import REPO, child_env

pytestmark = pytest.mark.slow  # a real process (it imports torch)

DRAIN_S = 1.5


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.security.serve_process", "--delay", "0.3",
         "--drain-timeout", str(DRAIN_S)],
        cwd=REPO, env=child_env(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip())
            if "ready: serving" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120), "\n".join(lines)
        port = next(
            int(m.group(1))
            for line in lines
            if (m := re.search(r"http://127\.0\.0\.1:(\d+)", line))
        )
        yield process, port, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_stalled_body_does_not_hold_the_drain_and_a_cut_stream_ends_with_an_error(
    server: tuple[subprocess.Popen[str], int, list[str]],
) -> None:
    process, port, lines = server
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = {"model": "fake-generator", "prompt": "a", "stream": True, "max_tokens": 200,
            "temperature": 0}  # fmt: skip
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    first = response.read1(65536)
    assert first.startswith(b"data: ")
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    rest = (first + response.read()).decode()
    process.wait(timeout=30)
    took = time.monotonic() - sent
    events = [line[6:] for line in rest.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "shutting_down", rest[-500:]
    assert took < DRAIN_S + 8, "\n".join(lines)
    stalled.close()
