"""`tierwise dev`'s wake step: a copy of the measured model at zero, woken by one request."""

from __future__ import annotations

import asyncio

import pytest

from tierwise_operator.gateway.run import GatewayOptions, running
from tierwise_operator.local.wake_demo import COLD, cold_copy, wake_from_zero

from ..integration.conftest import NAMESPACE, embedder
from .e2e import ReplicaKubelet, fleet

pytestmark = pytest.mark.slow  # the operator, and a runtime process per serving pod


def test_the_cold_copy_carries_the_profile_and_sleeps_until_asked() -> None:
    model = embedder()
    model["status"] = {"profile": {"model": {"uri": "builtin://x"}, "candidates": []}}
    cold = cold_copy(model)
    assert cold["metadata"] == {"name": COLD, "namespace": NAMESPACE}
    assert cold["spec"]["profile"] == model["status"]["profile"]
    assert cold["spec"]["replicas"]["min"] == 0
    assert "targetRPS" not in cold["spec"]["traffic"]


async def test_the_wake_step_serves_its_request_and_reports_no_failure() -> None:
    async with fleet(ReplicaKubelet()) as cluster:
        await cluster.client.create("inferencemodels", embedder())
        measured = await cluster.client.wait_for(
            "inferencemodels", "ticket-embedder",
            lambda m: bool((m.get("status") or {}).get("profile")), NAMESPACE, timeout=60,
        )  # fmt: skip
        options = GatewayOptions(host="127.0.0.1", port=0, server=cluster.url)
        async with running(options) as gateway:
            while not gateway.watcher.synced:
                await asyncio.sleep(0.05)
            lines: list[str] = []
            failed = await wake_from_zero(cluster, gateway.url, measured, lines.append)
    out = "\n".join(lines)
    assert failed == 0, out
    assert "planned at 0 replicas" in out
    assert "HTTP 200" in out
    assert "woken by traffic" in out
    assert "woken from zero: 1 request, 0 failed" in out
