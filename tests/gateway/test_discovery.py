"""Ready endpoints come from the Kubernetes API, watched: models and their serving pods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yaml

from tierwise_operator.emulator import Cluster, FakeKubelet
from tierwise_operator.emulator.kubelet import Hang, Serve
from tierwise_operator.gateway.discovery import PodIndex, Watcher, pod_endpoint
from tierwise_operator.gateway.endpoints import Directory
from tierwise_operator.gateway.kubeapi import ApiConfig, KubeApi
from tierwise_operator.gateway.metrics import GatewayMetrics
from tierwise_operator.gateway.waking import AnnotationDemand
from tierwise_operator.planner.wake import DEMAND_ANNOTATION

from ..conftest import REPO, SAMPLES
from .conftest import wait_until

NAMESPACE = "support"


def pod(
    name: str,
    model: str = "m",
    *,
    ready: bool = True,
    ip: str = "10.0.0.7",
    port: int = 8000,
    terminating: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "labels": {"app.kubernetes.io/component": "serving", "tierwise.dev/model": model},
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-11-25T10:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "containers": [{"name": "runtime", "ports": [{"name": "http", "containerPort": port}]}]
        },
        "status": {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (pod("a"), ((NAMESPACE, "m"), "http://10.0.0.7:8000")),
        (pod("a", port=9000), ((NAMESPACE, "m"), "http://10.0.0.7:9000")),
        (pod("a", ready=False), ((NAMESPACE, "m"), None)),
        (pod("a", terminating=True), ((NAMESPACE, "m"), None)),  # in flight finishes; no new
        (pod("a", ip=""), ((NAMESPACE, "m"), None)),
    ],
)
def test_a_serving_pod_is_an_endpoint_only_while_ready_and_not_terminating(
    body: dict[str, Any], expected: tuple[Any, Any]
) -> None:
    assert pod_endpoint(body) == expected


def test_pods_of_other_components_are_ignored() -> None:
    job = pod("profile-1")
    job["metadata"]["labels"]["app.kubernetes.io/component"] = "profile"
    assert pod_endpoint(job) is None


def test_the_pod_index_publishes_each_models_ready_set() -> None:
    directory = Directory()
    route = directory.add_model(NAMESPACE, "m")
    index = PodIndex(directory)
    index.reset(None, [pod("a", ip="10.0.0.1"), pod("b", ip="10.0.0.2", ready=False)])
    assert set(route.endpoints) == {"http://10.0.0.1:8000"}
    index.event("MODIFIED", pod("b", ip="10.0.0.2"))
    assert set(route.endpoints) == {"http://10.0.0.1:8000", "http://10.0.0.2:8000"}
    index.event("MODIFIED", pod("a", ip="10.0.0.1", terminating=True))
    index.event("DELETED", pod("b", ip="10.0.0.2"))
    assert route.endpoints == {}


def test_endpoints_seen_before_their_model_are_kept_for_it() -> None:
    directory = Directory()
    PodIndex(directory).reset(None, [pod("a", model="late", ip="10.0.0.3")])
    assert set(directory.add_model(NAMESPACE, "late").endpoints) == {"http://10.0.0.3:8000"}


def model(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SAMPLES / "ticket-embedder.yaml").read_text())
    doc["metadata"] = {"name": name, "namespace": NAMESPACE}
    return doc


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    def decide(body: dict[str, Any]) -> Any:
        return Hang() if body["metadata"]["name"].startswith("never") else Serve(ready_after=0.05)

    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    async with Cluster.start(
        crds=[REPO / "crds"], objects=[namespace], kubelet=FakeKubelet(decide=decide)
    ) as started:
        yield started


def serving_pod(name: str, model_name: str, port: int) -> dict[str, Any]:
    body = pod(name, model_name, port=port)
    container = {**body["spec"]["containers"][0], "image": "x"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": body["metadata"],
            "spec": {"containers": [container]}}  # fmt: skip


async def test_the_watcher_follows_models_and_pods_on_the_emulator(cluster: Cluster) -> None:
    directory = Directory()
    async with aiohttp.ClientSession() as session:
        watcher = Watcher(KubeApi(ApiConfig.load(cluster.url), session), directory)
        task = asyncio.create_task(watcher.run())
        try:
            await cluster.client.create("inferencemodels", model("m"))
            await wait_until(lambda: watcher.synced and (NAMESPACE, "m") in directory.routes)
            route = directory.routes[(NAMESPACE, "m")]
            await cluster.client.create("pods", serving_pod("m-1", "m", 8001))
            await cluster.client.create("pods", serving_pod("m-2", "m", 8002))
            await cluster.client.create("pods", serving_pod("never-ready", "m", 8003))
            await wait_until(lambda: len(route.endpoints) == 2)
            assert set(route.endpoints) == {"http://127.0.0.1:8001", "http://127.0.0.1:8002"}
            await cluster.client.delete("pods", "m-1", NAMESPACE)
            await wait_until(lambda: set(route.endpoints) == {"http://127.0.0.1:8002"})
            await cluster.client.delete("inferencemodels", "m", NAMESPACE)
            await wait_until(lambda: (NAMESPACE, "m") not in directory.routes)
        finally:
            task.cancel()


async def test_a_demand_signal_lands_as_an_annotation_on_the_model(cluster: Cluster) -> None:
    await cluster.client.create("inferencemodels", model("sleepy"))
    directory = Directory()
    route = directory.add_model(NAMESPACE, "sleepy")
    metrics = GatewayMetrics()
    async with aiohttp.ClientSession() as session:
        demand = AnnotationDemand(
            KubeApi(ApiConfig.load(cluster.url), session).patch_model, 60, metrics
        )
        demand.demand(route)
        demand.demand(route)  # rate-limited: one patch
        found = await cluster.client.wait_for(
            "inferencemodels", "sleepy",
            lambda m: DEMAND_ANNOTATION in (m["metadata"].get("annotations") or {}), NAMESPACE,
        )  # fmt: skip
        await demand.close()
    assert found["metadata"]["annotations"][DEMAND_ANNOTATION].endswith("Z")
    signals = metrics.registry.get_sample_value(
        "tierwise_gateway_demand_signals_total",
        {"model_namespace": NAMESPACE, "model_name": "sleepy"},
    )
    assert signals == 1
