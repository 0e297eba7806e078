"""A node_exporter for local mode: each emulated node reports this machine's real available
memory, less any memory pressure the demo simulates on it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from .prometheus_server import free_port


def mem_available() -> int:
    """MemAvailable of this machine, in bytes (/proc/meminfo)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable")


class NodeExporter:
    """`node_memory_MemAvailable_bytes{node=...}` for each node; `pressure[node]` is taken off."""

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = nodes
        self.pressure: dict[str, int] = {}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def available(self, node: str) -> int:
        return max(0, mem_available() - self.pressure.get(node, 0))

    def exposition(self) -> str:
        lines = [
            "# HELP node_memory_MemAvailable_bytes Memory available (this machine, less pressure).",
            "# TYPE node_memory_MemAvailable_bytes gauge",
        ]
        lines += [
            f'node_memory_MemAvailable_bytes{{node="{n}"}} {self.available(n)}' for n in self.nodes
        ]
        return "\n".join(lines) + "\n"

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[NodeExporter]:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(text=self.exposition(), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()
