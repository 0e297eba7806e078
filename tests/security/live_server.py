"""A real aiohttp server (the runtime's app, real sockets) on a thread of its own, so
synchronous tests (hypothesis, raw sockets) can poke it and see whether it still answers."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tierwise_runtime.appkeys import LIFECYCLE
from tierwise_runtime.engine import Engine
from tierwise_runtime.lifecycle import Lifecycle, Phase
from tierwise_runtime.serve_config import ServeConfig
from tierwise_runtime.server import create_app


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LiveServer:
    """One server on 127.0.0.1; `request` is a plain blocking HTTP call to it."""

    port: int
    app: web.Application
    loop: asyncio.AbstractEventLoop
    _stop: Callable[[], None] = field(repr=False)

    @property
    def life(self) -> Lifecycle:
        return self.app[LIFECYCLE]

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> Reply:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                data,
                time.perf_counter() - started,
            )
        finally:
            conn.close()

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> Reply:
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} | kwargs.pop("headers", {})
        return self.request("POST", path, raw, headers, **kwargs)

    def alive(self) -> bool:
        """The server still answers its liveness probe."""
        return self.request("GET", "/healthz", timeout_s=10).status == 200

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def stop(self) -> None:
        self._stop()


@contextlib.contextmanager
def live_server(engine: Engine, config: ServeConfig, ready_s: float = 60.0) -> Iterator[LiveServer]:
    """Serve `engine` with `config` (its host and port are ignored) until the block ends."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        app = create_app(lambda: engine, config)
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0,
            keepalive_timeout=config.header_timeout_s,
        )  # fmt: skip
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["port"] = runner.addresses[0][1]
        holder["app"] = app
        holder["done"] = asyncio.Event()
        started.set()
        await holder["done"].wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the server did not start")

    def stop() -> None:
        loop.call_soon_threadsafe(holder["done"].set)
        thread.join(30)

    server = LiveServer(holder["port"], holder["app"], loop, stop)
    deadline = time.monotonic() + ready_s
    while server.life.phase is not Phase.READY:
        if time.monotonic() > deadline or server.life.phase is Phase.FAILED:
            stop()
            raise RuntimeError(f"the server is {server.life.phase}, not ready")
        time.sleep(0.01)
    try:
        yield server
    finally:
        stop()
        loop.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.01)
