"""Nothing lost through moves: a precision change and a tier move by the real operator,
with requests flowing through the gateway the whole time."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tierwise_operator.gateway.config import GatewaySettings
from tierwise_operator.gateway.run import GatewayOptions, running

from ..integration.conftest import NAMESPACE, embedder
from .e2e import ReplicaKubelet, fleet

pytestmark = pytest.mark.slow  # the operator, and a runtime process per serving pod


async def _steady(url: str, stop: asyncio.Event, outcomes: list[int]) -> None:
    """One client sending back to back; -1 for a request that got no answer at all."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        while not stop.is_set():
            body = {"model": "steady", "input": "refund the duplicate payment"}
            try:
                async with session.post(f"{url}/v1/embeddings", json=body) as resp:
                    await resp.read()
                    outcomes.append(resp.status)
            except (aiohttp.ClientError, TimeoutError):
                outcomes.append(-1)
            await asyncio.sleep(0.02)


def _settled(want: dict[str, str]) -> Any:
    """The model's status shows `want` and every planned replica is ready."""

    def check(model: dict[str, Any]) -> bool:
        status = model.get("status") or {}
        return (
            all(status.get(k) == v for k, v in want.items())
            and status.get("replicas", 0) >= 1
            and status.get("readyReplicas") == status.get("replicas")
        )

    return check


async def _only_pods_of(cluster: Any, candidate: str) -> bool:
    pods = await cluster.client.list("pods", NAMESPACE, labels="tierwise.dev/model=steady,"
                                     "app.kubernetes.io/component=serving")  # fmt: skip
    found = {(p["metadata"].get("annotations") or {}).get("tierwise.dev/candidate") for p in pods}
    return found == {candidate}


async def test_a_precision_change_and_a_tier_move_under_load_fail_no_request() -> None:
    async with fleet(ReplicaKubelet()) as cluster:
        client = cluster.client
        doc = embedder("steady")
        doc["spec"]["precisions"] = ["fp32", "int8"]
        doc["spec"]["replicas"] = {"min": 1, "max": 2}
        await client.create("inferencemodels", doc)
        first = await client.wait_for("inferencemodels", "steady", _settled({}), NAMESPACE,
                                      timeout=120)  # fmt: skip
        precision, tier = first["status"]["precision"], first["status"]["tierClass"]
        options = GatewayOptions(host="127.0.0.1", port=0, server=cluster.url,
                                 settings=GatewaySettings(wait_s=60))  # fmt: skip
        async with running(options) as gateway:
            while not gateway.watcher.synced:
                await asyncio.sleep(0.05)
            stop = asyncio.Event()
            outcomes: list[int] = []
            clients = [asyncio.create_task(_steady(gateway.url, stop, outcomes)) for _ in range(4)]
            try:
                await asyncio.sleep(1)
                other = "int8" if precision == "fp32" else "fp32"
                await client.patch("inferencemodels", "steady",
                                   {"spec": {"precisions": [other]}}, NAMESPACE)  # fmt: skip
                await client.wait_for("inferencemodels", "steady", _settled({"precision": other}),
                                      NAMESPACE, timeout=120)  # fmt: skip
                moved_to = "nvme-offload" if tier != "nvme-offload" else "cpu-large"
                await client.patch("inferencemodels", "steady",
                                   {"spec": {"tierClasses": [moved_to]}}, NAMESPACE)  # fmt: skip
                await client.wait_for("inferencemodels", "steady",
                                      _settled({"tierClass": moved_to}), NAMESPACE,
                                      timeout=120)  # fmt: skip
                candidate = f"{other}/{moved_to}"
                for _ in range(200):
                    if await _only_pods_of(cluster, candidate):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1)
            finally:
                stop.set()
                await asyncio.gather(*clients)
        assert len(outcomes) > 50
        assert [o for o in outcomes if o != 200] == []
        assert await _only_pods_of(cluster, candidate)
