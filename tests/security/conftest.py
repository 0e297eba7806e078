"""Fixtures of the runtime's security tests: live servers around fake and small real engines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tierwise_runtime.batching import BatchLimits
from tierwise_runtime.engine import Engine
from tierwise_runtime.loader import load_engine
from tierwise_runtime.serve_config import ServeConfig
from tierwise_runtime.synthetic import write_llama

from ..runtime_serve.fakes import FakeContinuousEngine, FakeEmbeddingEngine
from .live_server import LiveServer, live_server

#: Settings small enough for tests to reach every bound quickly.
TEST_CONFIG = ServeConfig(
    limits=BatchLimits(max_batch=8, max_wait_s=0.002, max_queue=64),
    max_body_bytes=256 * 1024,
    max_bytes_in_flight=1024 * 1024,
    header_timeout_s=2.0,
    body_timeout_s=2.0,
    engine_call_limit_s=5.0,
    watchdog_period_s=0.05,
)
#: A chat template that loops a billion times if nothing stops it.
ENDLESS_TEMPLATE = (
    "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
    "{% endfor %}{% endfor %}{% endfor %}{{ messages[0].content }}"
)


@pytest.fixture(scope="module")
def generator_server() -> Iterator[LiveServer]:
    """A continuous-batching fake generator (alphabet replies) behind the real server."""
    with live_server(FakeContinuousEngine(max_tokens=256), TEST_CONFIG) as server:
        yield server


@pytest.fixture(scope="module")
def embedder_server() -> Iterator[LiveServer]:
    with live_server(FakeEmbeddingEngine(max_tokens=64), TEST_CONFIG) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random Llama with a word tokenizer and a chat template that never ends."""
    folder = write_llama(tmp_path_factory.mktemp("tiny-llama"), vocab=256, dim=64, layers=2,
                         heads=4, kv_heads=2, intermediate=128, context=256)  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": ENDLESS_TEMPLATE}))
    return folder


@pytest.fixture(scope="module")
def tiny_llama(tiny_llama_dir: Path) -> Engine:
    return load_engine(f"file://{tiny_llama_dir}", "fp32", name="tiny-llama")


@pytest.fixture(scope="module")
def llama_server(tiny_llama: Engine) -> Iterator[LiveServer]:
    """The real decoder engine (real sampling, real chat template) behind the real server."""
    with live_server(tiny_llama, TEST_CONFIG) as server:
        yield server
