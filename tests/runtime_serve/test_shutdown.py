"""SIGTERM on a real server process: stop accepting, finish what is in flight, exit 0."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from .conftest import REPO, child_env

pytestmark = pytest.mark.slow  # starts real processes (each imports torch)


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    reader: asyncio.Task[None] | None = None

    async def read_log(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode().rstrip())
            self.changed.set()

    async def wait_for_line(self, pattern: str, count: int = 1) -> re.Match[str]:
        """The `count`-th log line matching `pattern`."""
        async with asyncio.timeout(30):
            while True:
                matches = [m for line in self.lines if (m := re.search(pattern, line))]
                if len(matches) >= count:
                    return matches[count - 1]
                self.changed.clear()
                await self.changed.wait()


StartProcess = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def start_process() -> AsyncIterator[StartProcess]:
    started: list[ServerProcess] = []

    async def start(*args: str) -> ServerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.runtime_serve.serve_fake", *args,
            cwd=REPO, env=child_env(), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        server = ServerProcess(process)
        started.append(server)
        server.reader = asyncio.create_task(server.read_log())
        port = (await server.wait_for_line(r"listening on http://127\.0\.0\.1:(\d+)")).group(1)
        server.url = f"http://127.0.0.1:{port}"
        await server.wait_for_line(r"ready: serving")
        return server

    yield start
    for server in started:
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


async def test_sigterm_finishes_an_embedding_in_flight_then_exits_0(
    start_process: StartProcess,
) -> None:
    server = await start_process("embed", "--delay", "1.5")
    async with aiohttp.ClientSession() as session:
        body = {"model": "fake-embedder", "input": "still wanted"}
        in_flight = asyncio.create_task(session.post(f"{server.url}/v1/embeddings", json=body))
        await server.wait_for_line(r"fake engine: batch of 1", count=2)  # after the warm-up's
        server.process.send_signal(signal.SIGTERM)
        await server.wait_for_line(r"draining")

        readyz = await session.get(f"{server.url}/readyz")
        assert readyz.status == 503
        late = await session.post(f"{server.url}/v1/embeddings", json=body)
        assert late.status == 503
        assert (await late.json())["error"]["code"] == "shutting_down"

        response = await in_flight
        assert response.status == 200
        assert len((await response.json())["data"][0]["embedding"]) == 8
    assert await asyncio.wait_for(server.process.wait(), 15) == 0


async def test_sigterm_finishes_a_stream_in_flight_then_exits_0(
    start_process: StartProcess,
) -> None:
    server = await start_process("generate", "--delay", "0.1")
    async with aiohttp.ClientSession() as session:
        body = {
            "model": "fake-generator", "prompt": "a", "max_tokens": 10,
            "temperature": 0, "stream": True,
        }  # fmt: skip
        response = await session.post(f"{server.url}/v1/completions", json=body)
        first = await response.content.readuntil(b"\n\n")
        server.process.send_signal(signal.SIGTERM)
        rest = await response.content.read()
    events = (first + rest).decode().split("\n\n")[:-1]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "bcdefghijk"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert await asyncio.wait_for(server.process.wait(), 15) == 0
