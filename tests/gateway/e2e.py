"""The gateway's end-to-end setting: the real operator on the emulator, serving pods as
real runtime processes (fake engine), profile Jobs faked as in the integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import kopf

from tierwise_operator.emulator import Cluster, FakeKubelet
from tierwise_operator.emulator.kopfrun import run_operator
from tierwise_operator.emulator.kubelet import PodHandle
from tierwise_operator.runner import registry_for
from tierwise_operator.settings import Settings

from ..conftest import REPO, SAMPLES
from ..integration.conftest import NAMESPACE, NODES, Behaviours
from .conftest import ReplicaProcess, listening, spawn, stop


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
        replica = await spawn("embed", model, "--port", str(port), host=pod.ip)
        key = (pod.namespace, pod.name)
        if key not in self.running:  # stopped while starting
            await stop(replica)
            return
        self.running[key] = (replica, self.running[key][1])  # stop() now finds the process
        await listening(replica)
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
            await replica.terminate()

    async def close(self) -> None:
        for key in list(self.running):
            _, task = self.running[key]
            task.cancel()
        for replica, task in list(self.running.values()):
            await asyncio.gather(task, return_exceptions=True)
            if replica is not None:
                await stop(replica)
        await self.jobs.close()


@contextlib.asynccontextmanager
async def operator(cluster: Cluster) -> AsyncIterator[None]:
    settings = Settings.from_env({"TIERWISE_REPLAN_INTERVAL": "2s", "TIERWISE_TIER_DWELL": "0s"})
    registry = registry_for(settings, server=cluster.url, login=False)
    async with run_operator(cluster.url, registry=registry, memo=kopf.Memo()):
        yield


@contextlib.asynccontextmanager
async def fleet(kubelet: ReplicaKubelet) -> AsyncIterator[Cluster]:
    """The emulator with the integration tests' nodes and the sample TierClasses, and the
    operator running against it."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    async with (
        Cluster.start(
            crds=[REPO / "crds"], objects=[namespace, SAMPLES / "tierclasses.yaml"],
            nodes=NODES, kubelet=kubelet,
        ) as cluster,
        operator(cluster),
    ):  # fmt: skip
        yield cluster
