"""Wake from zero end to end: the real operator on the API emulator, the gateway in front,
and runtime processes started for the pods the operator asks for."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tierwise_operator.gateway.config import GatewaySettings
from tierwise_operator.gateway.run import GatewayOptions, running
from tierwise_operator.planner.wake import DEMAND_ANNOTATION, WOKEN

from ..integration.conftest import NAMESPACE, embedder
from .e2e import ReplicaKubelet, fleet

pytestmark = pytest.mark.slow  # the operator, and a runtime process per serving pod


def sleeping_model(name: str) -> dict[str, Any]:
    """The sample embedder at zero replicas until traffic arrives."""
    doc = embedder(name)
    doc["spec"]["replicas"] = {"min": 0, "max": 2}
    doc["spec"]["traffic"] = {"headroom": "20%"}
    return doc


async def test_a_request_wakes_a_model_at_zero_and_is_served(tmp_path: Any) -> None:
    async with fleet(ReplicaKubelet()) as cluster:
        client = cluster.client
        await client.create("inferencemodels", sleeping_model("sleepy"))
        planned = await client.wait_for(
            "inferencemodels", "sleepy",
            lambda m: (m.get("status") or {}).get("decision") is not None
            and (m.get("status") or {}).get("profile") is not None, NAMESPACE, timeout=60,
        )  # fmt: skip
        assert planned["status"]["replicas"] == 0
        options = GatewayOptions(host="127.0.0.1", port=0, server=cluster.url,
                                 settings=GatewaySettings(wait_s=90))  # fmt: skip
        async with running(options) as gateway:
            await asyncio.wait_for(_synced(gateway.watcher), 30)
            async with aiohttp.ClientSession() as session:
                started = time.monotonic()
                answers = await asyncio.gather(*(
                    session.post(f"{gateway.url}/v1/embeddings",
                                 json={"model": f"{NAMESPACE}/sleepy", "input": f"ticket {i}"})
                    for i in range(3)
                ))  # fmt: skip
                waited = time.monotonic() - started
                bodies = [await a.json() for a in answers]
                assert [a.status for a in answers] == [200] * 3, bodies
                assert all(len(b["data"][0]["embedding"]) == 8 for b in bodies)
        model = await client.get("inferencemodels", "sleepy", NAMESPACE)
        assert DEMAND_ANNOTATION in model["metadata"]["annotations"]
        assert model["status"]["replicas"] == 1
        assert model["status"]["decision"]["reason"].startswith(WOKEN)
        events = await client.list("events", NAMESPACE)
        woken = [e for e in events if e.get("involvedObject", {}).get("name") == "sleepy"
                 and WOKEN in e.get("message", "")]  # fmt: skip
        assert woken, [e["message"] for e in events]
        assert waited < 90


async def _synced(watcher: Any) -> None:
    while not watcher.synced:
        await asyncio.sleep(0.05)
