"""An emulated cluster for tests and local mode: API server on 127.0.0.1, controllers, a kubelet.

async with Cluster.start(crds=CRD_FILES) as cluster:
    await cluster.client.create("inferencemodels", manifest)
    cluster.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import kmock
import yaml

from .apiserver import ApiServer
from .client import Client, write_kubeconfig
from .controllers.base import Controller
from .controllers.deployments import DeploymentController
from .controllers.jobs import JobController
from .controllers.nodes import NodeAgent, NodeSpec
from .controllers.scheduling import Scheduler
from .gc import GarbageCollector
from .kubelet import FakeKubelet, Kubelet
from .registry import Registry
from .server import Emulator
from .storage import Store

DEFAULT_NAMESPACES = ("default", "kube-system")


def load_manifests(sources: Iterable[Path | dict[str, Any]]) -> list[dict[str, Any]]:
    """Documents from YAML files, directories of them, or dicts, in order."""
    docs: list[dict[str, Any]] = []
    for source in sources:
        if isinstance(source, dict):
            docs.append(source)
            continue
        files = sorted(source.glob("*.y*ml")) if source.is_dir() else [source]
        for file in files:
            docs += [d for d in yaml.safe_load_all(file.read_text()) if _is_object(d)]
    return docs


def _is_object(doc: Any) -> bool:
    """API objects only: a kustomization.yaml beside the manifests is build input, not an object."""
    return isinstance(doc, dict) and not str(doc.get("apiVersion", "")).startswith(
        "kustomize.config.k8s.io/"
    )


class Cluster:
    """The API server, its controllers and a kubelet, in this event loop."""

    def __init__(
        self,
        *,
        kubelet: Kubelet | None = None,
        nodes: Iterable[NodeSpec] = (NodeSpec(),),
        controllers: bool = True,
    ) -> None:
        self.registry = Registry()
        self.store = Store()
        self.api = ApiServer(self.registry, self.store)
        self.kubelet: Kubelet = kubelet if kubelet is not None else FakeKubelet()
        self.nodes = tuple(nodes)
        self.emulator = Emulator(self.api)
        self.controllers: list[Controller] = [GarbageCollector(self.api)]
        if controllers:
            self.controllers += [
                Scheduler(self.api),
                NodeAgent(self.api, self.kubelet, {n.name for n in self.nodes}),
                DeploymentController(self.api),
                JobController(self.api),
            ]
        self._server: kmock.Server | None = None
        self._client: Client | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        crds: Iterable[Path | dict[str, Any]] = (),
        objects: Iterable[Path | dict[str, Any]] = (),
        port: int | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Cluster]:
        """Serve on 127.0.0.1 (`port`, or a free one) with the CRDs and objects created."""
        cluster = cls(**kwargs)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(cluster.emulator)
            cluster._server = await stack.enter_async_context(
                kmock.Server(cluster.emulator, port=port)
            )
            stack.push_async_callback(cluster._shutdown)
            cluster._bootstrap(load_manifests(crds), load_manifests(objects))
            yield cluster

    def _bootstrap(self, crds: list[dict[str, Any]], objects: list[dict[str, Any]]) -> None:
        namespaces = self.registry.lookup("namespaces")
        for name in DEFAULT_NAMESPACES:
            self.api.create(namespaces, {"metadata": {"name": name}}, manager="emulator")
        for node in self.nodes:
            self._create_node(node)
        for doc in [*crds, *objects]:
            rtype = self.registry.by_kind(doc["apiVersion"], doc["kind"])
            if rtype is None:
                raise ValueError(f"no resource serves {doc['apiVersion']} {doc['kind']}")
            self.api.create(
                rtype, doc, doc.get("metadata", {}).get("namespace"), manager="emulator"
            )
        for controller in self.controllers:
            controller.start()
        self._client = Client(self.url, self.registry)

    def _create_node(self, node: NodeSpec) -> None:
        rtype = self.registry.lookup("nodes")
        manifest = node.manifest()
        status = manifest.pop("status")
        created = self.api.create(rtype, manifest, manager="emulator")
        created["status"] = status
        self.api.update(rtype, created, None, node.name, subresource="status", manager="emulator")

    async def _shutdown(self) -> None:
        if self._client is not None:
            await self._client.close()
        for controller in reversed(self.controllers):
            await controller.stop()
        close = getattr(self.kubelet, "close", None)
        if close is not None:
            await close()
        self.store.close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the cluster is not started: use `async with Cluster.start()`")
        return str(self._server.url).rstrip("/")

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the cluster is not started: use `async with Cluster.start()`")
        return self._client

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig for kubectl (or any client) pointing at this cluster."""
        return write_kubeconfig(self.url, path, namespace)

    async def settle(self) -> None:
        """Wait until every controller's queue is empty."""
        for _ in range(3):  # one controller's work can queue another's
            for controller in self.controllers:
                await controller.idle()
