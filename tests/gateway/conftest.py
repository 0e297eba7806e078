"""Fixtures for the gateway: scripted replicas in this process and a gateway in front of them."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tierwise_operator.gateway.app import create_app
from tierwise_operator.gateway.config import GatewaySettings
from tierwise_operator.gateway.endpoints import Directory, Route
from tierwise_operator.gateway.keys import KeyRing
from tierwise_operator.gateway.metrics import GatewayMetrics
from tierwise_operator.local.process_kubelet import _die_with_parent

from ..runtime_serve.conftest import REPO, child_env

Client = TestClient[Any, Any]
NAME = web.AppKey("name", str)
Behaviour = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """What a healthy replica says: which model it was asked for, and who it is."""
    return web.json_response({"model": body.get("model"), "served_by": request.app[NAME]})


def unavailable(code: str) -> Behaviour:
    async def respond(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        error = {"message": code, "type": "server_error", "param": None, "code": code}
        return web.json_response({"error": error}, status=503, headers={"Retry-After": "2"})

    return respond


@dataclass
class Replica:
    """A replica whose answers the test scripts; it records what it was asked."""

    name: str
    behaviour: Behaviour = answer
    seen: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    client: Client | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        self.seen.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        return await self.behaviour(request, body)


@dataclass
class Setup:
    directory: Directory
    metrics: GatewayMetrics
    client: Client
    demands: list[str]

    def route(self, name: str, namespace: str = "default") -> Route:
        return self.directory.add_model(namespace, name)

    async def post(
        self, model: str, path: str = "/v1/embeddings", **extra: Any
    ) -> aiohttp.ClientResponse:
        headers = extra.pop("headers", {})
        return await self.client.post(
            path, json={"model": model, "input": "hi", **extra}, headers=headers
        )


class Recorder:
    """A demand signal that records which models asked to be woken."""

    def __init__(self, on_demand: Callable[[Route], None] | None = None) -> None:
        self.models: list[str] = []
        self.on_demand = on_demand

    def demand(self, route: Route) -> None:
        self.models.append(route.label)
        if self.on_demand is not None:
            self.on_demand(route)


StartReplica = Callable[..., Awaitable[Replica]]
StartGateway = Callable[..., Awaitable[Setup]]


@pytest.fixture
async def replica() -> AsyncIterator[StartReplica]:
    started: list[Client] = []

    async def start(name: str, behaviour: Behaviour = answer) -> Replica:
        rep = Replica(name, behaviour)
        app = web.Application()
        app[NAME] = name
        app.router.add_post("/{tail:.*}", rep.handle)
        client: Client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        started.append(client)
        rep.client = client
        rep.url = str(client.make_url("")).rstrip("/")
        return rep

    yield start
    for client in started:
        await client.close()


@pytest.fixture
async def gateway() -> AsyncIterator[StartGateway]:
    started: list[Client] = []

    async def start(
        settings: GatewaySettings | None = None,
        *,
        keys: KeyRing | None = None,
        on_demand: Callable[[Route], None] | None = None,
        ready: Callable[[], bool] = lambda: True,
    ) -> Setup:
        directory = Directory()
        metrics = GatewayMetrics()
        recorder = Recorder(on_demand)
        app = create_app(
            directory, settings, keys=keys, metrics=metrics, signal=recorder, ready=ready
        )
        client: Client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        started.append(client)
        return Setup(directory, metrics, client, recorder.models)

    yield start
    for client in started:
        await client.close()


def metric(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@dataclass
class ReplicaProcess:
    """A real runtime process (fake engine) and its log."""

    process: asyncio.subprocess.Process
    url: str = ""
    lines: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    async def read_log(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self.changed.set()

    async def terminate(self, grace: float = 30) -> None:
        """SIGTERM, as a kubelet stops a pod: the runtime drains, then exits."""
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(grace):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)

    async def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                if self.process.returncode is not None and self.reader and self.reader.done():
                    raise RuntimeError("replica exited: " + "\n".join(self.lines[-20:]))
                self.changed.clear()
                await self.changed.wait()


StartProcess = Callable[..., Awaitable[ReplicaProcess]]


async def spawn(kind: str, name: str, *args: str, host: str = "127.0.0.1") -> ReplicaProcess:
    """Start a replica process (it dies with this one); returns at once."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.gateway.replica_process", kind, "--name", name,
        "--host", host, *args, cwd=REPO, env=child_env(), stderr=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )  # fmt: skip
    replica = ReplicaProcess(process, url=f"http://{host}")
    replica.reader = asyncio.create_task(replica.read_log())
    return replica


async def listening(replica: ReplicaProcess) -> None:
    """Wait for the replica to log its address, and complete its URL with the port."""
    port = (await replica.wait_for_line(r"listening on http://[\d.]+:(\d+)")).group(1)
    replica.url = f"{replica.url}:{port}"


async def launch(kind: str, name: str, *args: str, host: str = "127.0.0.1") -> ReplicaProcess:
    """Start a replica process; returns once it logs its address (not yet ready)."""
    replica = await spawn(kind, name, *args, host=host)
    try:
        await listening(replica)
    except BaseException:
        await stop(replica)
        raise
    return replica


async def stop(replica: ReplicaProcess) -> None:
    if replica.process.returncode is None:
        replica.process.kill()
    await replica.process.wait()
    if replica.reader is not None:
        await asyncio.gather(replica.reader, return_exceptions=True)


@pytest.fixture
async def replica_process() -> AsyncIterator[StartProcess]:
    started: list[ReplicaProcess] = []

    async def start(kind: str, name: str, *args: str) -> ReplicaProcess:
        replica = await launch(kind, name, *args)
        started.append(replica)
        await replica.wait_for_line(r"ready: serving")
        return replica

    yield start
    for replica in started:
        await stop(replica)
