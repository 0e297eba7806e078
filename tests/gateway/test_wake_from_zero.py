"""Wake from zero end to end: the real operator on the API emulator, the gateway in front,
and runtime processes started for the pods the operator asks for."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kopf
import pytest

from tierwise_operator.emulator import Cluster, FakeKubelet
from tierwise_operator.emulator.kopfrun import run_operator
from tierwise_operator.emulator.kubelet import PodHandle
from tierwise_operator.gateway.config import GatewaySettings
from tierwise_operator.gateway.run import GatewayOptions, running
from tierwise_operator.planner.wake import DEMAND_ANNOTATION, WOKEN
from tierwise_operator.runner import registry_for
from tierwise_operator.settings import Settings

from ..conftest import REPO, SAMPLES
from ..integration.conftest import NAMESPACE, NODES, Behaviours, embedder
from .conftest import ReplicaProcess, launch, stop

pytestmark = pytest.mark.slow  # the operator, and a runtime process per serving pod


class ReplicaKubelet:
    """Serving pods run as runtime processes (fake engine) on their own loopback IP;
    profile Jobs are faked as in the integration tests."""

    def __init__(self) -> None:
        self.jobs = FakeKubelet(delay=0.05, decide=Behaviours())
        self.running: dict[tuple[str, str], tuple[ReplicaProcess | None, asyncio.Task[None]]] = {}
        self._next_ip = 10

    async def start(self, pod: PodHandle) -> None:
        body = pod.pod
        if body is None:
            return
        labels = body["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/component") != "serving":
            await self.jobs.start(pod)
            return
        self._next_ip += 1
        pod.ip = f"127.0.0.{self._next_ip}"
        task = asyncio.create_task(self._serve(pod, labels["tierwise.dev/model"], body))
        self.running[(pod.namespace, pod.name)] = (None, task)

    async def _serve(self, pod: PodHandle, model: str, body: dict[str, Any]) -> None:
        port = body["spec"]["containers"][0]["ports"][0]["containerPort"]
        pod.running(ready=False)
        replica = await launch("embed", model, "--port", str(port), host=pod.ip)
        self.running[(pod.namespace, pod.name)] = (
            replica,
            self.running[(pod.namespace, pod.name)][1],
        )
        await replica.wait_for_line(r"ready: serving")
        pod.running(ready=True)
        await replica.process.wait()

    async def stop(self, pod: PodHandle) -> None:
        entry = self.running.pop((pod.namespace, pod.name), None)
        if entry is None:
            await self.jobs.stop(pod)
            return
        replica, task = entry
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if replica is not None:
            await stop(replica)

    async def close(self) -> None:
        for key in list(self.running):
            _, task = self.running[key]
            task.cancel()
        for replica, task in list(self.running.values()):
            await asyncio.gather(task, return_exceptions=True)
            if replica is not None:
                await stop(replica)
        await self.jobs.close()


def sleeping_model(name: str) -> dict[str, Any]:
    """The sample embedder at zero replicas until traffic arrives."""
    doc = embedder(name)
    doc["spec"]["replicas"] = {"min": 0, "max": 2}
    doc["spec"]["traffic"] = {"headroom": "20%"}
    return doc


@contextlib.asynccontextmanager
async def operator(cluster: Cluster) -> AsyncIterator[None]:
    settings = Settings.from_env({"TIERWISE_REPLAN_INTERVAL": "2s", "TIERWISE_TIER_DWELL": "0s"})
    registry = registry_for(settings, server=cluster.url, login=False)
    async with run_operator(cluster.url, registry=registry, memo=kopf.Memo()):
        yield


async def test_a_request_wakes_a_model_at_zero_and_is_served(tmp_path: Any) -> None:
    kubelet = ReplicaKubelet()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    async with (
        Cluster.start(
            crds=[REPO / "crds"], objects=[namespace, SAMPLES / "tierclasses.yaml"],
            nodes=NODES, kubelet=kubelet,
        ) as cluster,
        operator(cluster),
    ):  # fmt: skip
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
