"""Fixtures for the serving tests: fake engines and in-process servers around them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from tierwise_runtime.appkeys import LIFECYCLE
from tierwise_runtime.batching import BatchLimits
from tierwise_runtime.engine import Engine
from tierwise_runtime.lifecycle import Lifecycle, Phase
from tierwise_runtime.metrics import RuntimeMetrics
from tierwise_runtime.serve_config import ServeConfig
from tierwise_runtime.server import create_app

from .fakes import FakeContinuousEngine, FakeEmbeddingEngine, FakeGenerationEngine

Client = TestClient[Any, Any]
REPO = Path(__file__).resolve().parents[2]
StartServer = Callable[..., Awaitable[Client]]


@pytest.fixture
def embedder() -> FakeEmbeddingEngine:
    return FakeEmbeddingEngine()


@pytest.fixture(params=["static", "continuous"])
def generator(request: pytest.FixtureRequest) -> FakeGenerationEngine:
    """A generation engine decoding static groups, and one with continuous batching."""
    return FakeGenerationEngine() if request.param == "static" else FakeContinuousEngine()


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Starts a server around a loader (or an engine) and returns its client once ready.

    Keyword arguments are BatchLimits fields (max_wait_s defaults to 10 ms)
    and ServeConfig fields; `wait=False` returns before the model is ready.
    """
    clients: list[Client] = []

    async def start(
        engine_or_load: Engine | Callable[[], Engine],
        *,
        wait: bool = True,
        metrics: RuntimeMetrics | None = None,
        **settings: Any,
    ) -> Client:
        load = engine_or_load if callable(engine_or_load) else (lambda: engine_or_load)
        limit_names = {"max_batch", "max_wait_s", "max_queue"}
        limits = BatchLimits(
            **({"max_wait_s": 0.01} | {k: v for k, v in settings.items() if k in limit_names})
        )
        config = ServeConfig(
            limits=limits, **{k: v for k, v in settings.items() if k not in limit_names}
        )
        app = create_app(load, config, metrics)
        client: Client = TestClient(TestServer(app, handler_cancellation=True))
        await client.start_server()
        clients.append(client)
        if wait:
            await wait_for_phase(client, Phase.READY)
        return client

    yield start
    for client in clients:
        await client.close()


def lifecycle(client: Client) -> Lifecycle:
    return client.app[LIFECYCLE]  # type: ignore[index]


async def wait_for_phase(client: Client, phase: Phase, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while lifecycle(client).phase is not phase:
            await asyncio.sleep(0.005)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def scrape(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, keyed by (sample name, labels)."""
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def assert_error(body: dict[str, Any], code: str, param: str | None = None) -> None:
    """An OpenAI-style error body with this code, naming `param` in its message."""
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["param"] == param
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert param.split("[")[0] in error["message"]


def child_env() -> dict[str, str]:
    """The environment for a child Python that imports this checkout's code (and the tests)."""
    paths = [str(REPO / "operator"), str(REPO / "runtime"), str(REPO)]
    if inherited := os.environ.get("PYTHONPATH"):
        paths.append(inherited)
    return os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
