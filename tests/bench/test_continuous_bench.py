"""bench/continuous.py on a fake engine, so the benchmark cannot silently rot."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from types import ModuleType

import pytest

from tierwise_runtime.completion_service import ContinuousEngine

from ..conftest import REPO
from ..runtime_serve.fakes import FakeContinuousEngine


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("continuous_bench", REPO / "bench/continuous.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_static_view_hides_the_running_batch_and_nothing_else(bench: ModuleType) -> None:
    engine = FakeContinuousEngine()
    assert isinstance(engine, ContinuousEngine)
    view = bench.StaticView(engine)
    assert not isinstance(view, ContinuousEngine)
    assert view.info is engine.info and view.tokenize(["a"]) == engine.tokenize(["a"])


async def test_both_modes_serve_the_same_workload_with_the_same_text(bench: ModuleType) -> None:
    args = argparse.Namespace(seed=3, requests=12, rate=200.0, long_share=0.25,
                              long_tokens=20, short_tokens=3)  # fmt: skip
    requests = bench.workload(args, ["a", "m"])
    assert requests == bench.workload(args, ["a", "m"])  # seeded
    engine = FakeContinuousEngine()
    static, _ = await bench.serve(bench.StaticView(engine), requests, max_batch=4)
    continuous, wall = await bench.serve(engine, requests, max_batch=4)
    assert [d.text for d in static] == [d.text for d in continuous]
    assert all(d.tokens == d.request.params.max_tokens or d.text.endswith("z") for d in continuous)
    figures = bench.summary(continuous, wall)
    assert figures["short p50"] <= figures["short p95"] and figures["tokens/s"] > 0
