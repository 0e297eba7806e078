"""Fixtures for the emulator's tests: a started cluster with the tierwise CRDs, its client."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tierwise_operator.emulator import Client, Cluster, FakeKubelet

from ..conftest import REPO

CRDS = REPO / "crds"


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster.start(crds=[CRDS]) as started:
        yield started


@pytest.fixture
def client(cluster: Cluster) -> Client:
    return cluster.client


@pytest.fixture
def kubelet(cluster: Cluster) -> FakeKubelet:
    assert isinstance(cluster.kubelet, FakeKubelet)
    return cluster.kubelet


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(
    name: str, replicas: int = 2, image: str = "app:1", **strategy: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    }
    if strategy:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def job(name: str, **spec: Any) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "x"}]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": template, **spec},
    }


def inference_model(name: str = "embedder") -> dict[str, Any]:
    return {
        "apiVersion": "tierwise.dev/v1alpha1",
        "kind": "InferenceModel",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "task": "text-embedding",
                "architecture": "bert",
                "source": {"uri": "builtin://all-minilm-l6-v2"},
            },
            "accuracyBudget": {"maxDegradation": "2%"},
            "precisions": ["fp32", "int8"],
            "tierClasses": ["cpu-large"],
        },
    }


async def watch(
    client: Client, resource: str, params: dict[str, str], count: int, timeout: float = 3.0
) -> list[dict[str, Any]]:
    """The first `count` events of a watch (fewer if the stream ends or `timeout` passes)."""
    path = client.resource(resource).path("default")
    events: list[dict[str, Any]] = []

    async def read() -> None:
        url = client.url + path
        async with client._session.get(url, params={"watch": "true", **params}) as response:
            assert response.status == 200, await response.text()
            async for line in response.content:
                if line.strip():
                    events.append(json.loads(line))
                if len(events) >= count:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), timeout)
    return events
