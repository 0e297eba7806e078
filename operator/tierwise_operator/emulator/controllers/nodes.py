"""The node agent: hands pods bound to the emulated nodes to the kubelet, and back on deletion.

A pod that gets a node is started through `Kubelet.start`; a pod marked for
deletion is stopped through `Kubelet.stop` and then removed (the end of
graceful termination). Stopping runs in its own task so a slow stop holds up
no other pod.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from .. import errors
from ..apiserver import ApiServer
from ..kubelet import Kubelet, PodHandle
from ..storage import Event
from .base import Controller
from .objects import key_of, terminating


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """An emulated node: its name, labels, taints and allocatable resources."""

    name: str = "emulator"
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    allocatable: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"cpu": "32", "memory": "128Gi", "pods": "1000"}
    )

    def manifest(self) -> dict[str, Any]:
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", **self.labels}
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {"taints": [dict(t) for t in self.taints]} if self.taints else {},
            "status": {
                "capacity": dict(self.allocatable),
                "allocatable": dict(self.allocatable),
                "conditions": [ready],
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.name},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.31.0-emulator",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }


class NodeAgent(Controller):
    name = "kubelet"

    def __init__(self, api: ApiServer, kubelet: Kubelet, nodes: set[str]) -> None:
        super().__init__(api)
        self.kubelet = kubelet
        self.nodes = nodes
        self._started: dict[tuple[str, str], PodHandle] = {}
        self._stopping: dict[tuple[str, str], asyncio.Task[None]] = {}

    def wants(self, event: Event) -> list[Any]:
        if event.rtype.plural == "pods" and event.rtype.group == "":
            return [key_of(event.object)]
        return []

    def resync(self) -> list[Any]:
        return [key_of(p) for p in self.api.list(self.api.registry.lookup("pods"), copy=False)]

    async def reconcile(self, key: tuple[str, str]) -> None:
        pod = self.api.store.get(self.api.registry.lookup("pods"), *key)
        if pod is None or terminating(pod):
            if key in self._started and key not in self._stopping:
                self._stopping[key] = asyncio.create_task(self._stop(key, pod is not None))
            elif pod is not None and key not in self._stopping:
                self._finish(key)  # never started here: nothing to stop
            return
        if pod["spec"].get("nodeName") in self.nodes and key not in self._started:
            handle = PodHandle(self.api, *key)
            self._started[key] = handle
            await self.kubelet.start(handle)

    async def _stop(self, key: tuple[str, str], remove: bool) -> None:
        try:
            await self.kubelet.stop(self._started[key])
        finally:
            del self._started[key]
            del self._stopping[key]
        if remove:
            self._finish(key)

    def _finish(self, key: tuple[str, str]) -> None:
        try:
            self.api.delete(self.api.registry.lookup("pods"), *key, grace_period=0)
        except errors.ApiError as exc:
            if exc.status != 404:
                raise

    async def stop(self) -> None:
        await super().stop()
        for task in list(self._stopping.values()):
            task.cancel()
        for key, handle in list(self._started.items()):
            await self.kubelet.stop(handle)
            self._started.pop(key, None)
