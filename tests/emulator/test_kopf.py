"""The real kopf operator runs against the emulator: handlers fire, status patches land, progress
annotations carry retries, a restart re-runs nothing finished, deleting the owner cascades."""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any

import kopf
import pytest

from tierwise_operator.emulator import Client, ClientError, Cluster
from tierwise_operator.emulator.kopfrun import run_operator
from tierwise_operator.emulator.storage import Event

from .conftest import inference_model

RESOURCE = ("tierwise.dev", "v1alpha1", "inferencemodels")
PROGRESS = "kopf.zalando.org/created"


@pytest.fixture
def calls() -> collections.Counter[str]:
    return collections.Counter()


@pytest.fixture
def registry(client: Client, calls: collections.Counter[str]) -> kopf.OperatorRegistry:
    """A tiny operator: a create handler that fails once, an update handler and a timer."""
    registry = kopf.OperatorRegistry()

    @kopf.on.create(*RESOURCE, id="created", registry=registry)
    async def created(
        body: Any, name: str, namespace: str, patch: Any, retry: int, **_: Any
    ) -> None:
        calls["create"] += 1
        if retry == 0:
            raise kopf.TemporaryError("not yet", delay=0.3)
        child = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config"},
            "data": {"model": name},
        }
        kopf.adopt(child, owner=body)
        await client.create("configmaps", child, namespace)
        kopf.info(body, reason="Created", message=f"created {name}-config")
        patch.status["precision"] = "int8"

    @kopf.on.update(*RESOURCE, id="reprioritised", field="spec.priority", registry=registry)
    async def reprioritised(meta: Any, patch: Any, **_: Any) -> None:
        calls["update"] += 1
        patch.status["observedGeneration"] = meta["generation"]

    @kopf.timer(*RESOURCE, id="tick", interval=0.1, registry=registry)
    async def tick(status: Any, patch: Any, **_: Any) -> None:
        calls["tick"] += 1
        patch.status["readyReplicas"] = (status.get("readyReplicas") or 0) + 1

    return registry


def _progress_seen(cluster: Cluster) -> list[dict[str, Any]]:
    """Every value kopf's progress annotation of the create handler took."""
    seen: list[dict[str, Any]] = []

    def record(event: Event) -> None:
        value = event.object["metadata"].get("annotations", {}).get(PROGRESS)
        if event.rtype.plural == "inferencemodels" and value:
            seen.append(json.loads(value))

    cluster.store.listen(record)
    return seen


async def _events_of(client: Client, obj: dict[str, Any], message: str) -> list[dict[str, Any]]:
    """Events kopf posted about an object with a message, once there is one."""
    selector = f"involvedObject.uid={obj['metadata']['uid']}"
    for _ in range(200):
        events = await client.list("events", "default", fields=selector)
        if any(e["message"] == message for e in events):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"no event {message!r}; saw {[e['message'] for e in events]}")


def _is_done(obj: dict[str, Any]) -> bool:
    return obj.get("status", {}).get("precision") == "int8"


async def test_kopf_handlers_fire_and_their_patches_land(
    cluster: Cluster,
    client: Client,
    registry: kopf.OperatorRegistry,
    calls: collections.Counter[str],
) -> None:
    progress = _progress_seen(cluster)
    async with run_operator(cluster.url, registry=registry):
        created = await client.create("inferencemodels", inference_model())
        done = await client.wait_for("inferencemodels", "embedder", _is_done)
        child = await client.get("configmaps", "embedder-config")
        assert child["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        assert calls["create"] == 2
        assert any(p.get("retries") == 1 for p in progress), progress
        annotations = done["metadata"]["annotations"]
        assert PROGRESS not in annotations  # kopf cleans its progress up once the handler is done
        assert "kopf.zalando.org/last-handled-configuration" in annotations
        await client.patch("inferencemodels", "embedder", {"spec": {"priority": 5}})
        await client.wait_for(
            "inferencemodels", "embedder", lambda o: o["status"].get("observedGeneration") == 2
        )
        assert calls["update"] == 1
        await client.wait_for(
            "inferencemodels", "embedder", lambda o: o["status"].get("readyReplicas", 0) >= 3
        )
        events = await _events_of(client, created, "created embedder-config")
    assert (events[0]["reason"], events[0]["involvedObject"]["kind"]) == (
        "Created",
        "InferenceModel",
    )


async def test_restarting_the_operator_reruns_no_finished_create_handler(
    cluster: Cluster,
    client: Client,
    registry: kopf.OperatorRegistry,
    calls: collections.Counter[str],
) -> None:
    async with run_operator(cluster.url, registry=registry):
        await client.create("inferencemodels", inference_model())
        await client.wait_for("inferencemodels", "embedder", _is_done)
    ticks = (await client.get("inferencemodels", "embedder"))["status"].get("readyReplicas", 0)
    async with run_operator(cluster.url, registry=registry):
        await client.wait_for(
            "inferencemodels",
            "embedder",
            lambda o: o["status"].get("readyReplicas", 0) >= ticks + 2,
        )
    assert calls["create"] == 2
    assert (
        len(await client.list("configmaps", "default", fields="metadata.name=embedder-config")) == 1
    )


async def test_deleting_the_owner_cascades_to_what_the_operator_created(
    cluster: Cluster, client: Client, registry: kopf.OperatorRegistry
) -> None:
    async with run_operator(cluster.url, registry=registry):
        await client.create("inferencemodels", inference_model())
        done = await client.wait_for("inferencemodels", "embedder", _is_done)
        assert done["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        await client.delete("inferencemodels", "embedder")
        await client.wait_gone("inferencemodels", "embedder")
        await client.wait_gone("configmaps", "embedder-config")
    with pytest.raises(ClientError):
        await client.get("configmaps", "embedder-config")
