"""Garbage collection by ownerReferences: cascades, orphaning, absent owners, namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise_operator.emulator import Client, ClientError, Cluster

from .conftest import configmap, inference_model


def _owned(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    body = configmap(name)
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return body


async def test_deleting_an_owner_deletes_its_dependents(client: Client) -> None:
    owner = await client.create("inferencemodels", inference_model())
    await client.create("configmaps", _owned("child", owner))
    grandchild_owner = await client.get("configmaps", "child")
    await client.create("configmaps", _owned("grandchild", grandchild_owner))
    await client.delete("inferencemodels", "embedder")
    await client.wait_gone("configmaps", "child")
    await client.wait_gone("configmaps", "grandchild")


async def test_orphan_propagation_keeps_dependents_without_the_reference(client: Client) -> None:
    owner = await client.create("inferencemodels", inference_model())
    await client.create("configmaps", _owned("child", owner))
    await client.delete("inferencemodels", "embedder", propagation="Orphan")
    child = await client.wait_for(
        "configmaps", "child", lambda o: not o["metadata"].get("ownerReferences")
    )
    assert child["metadata"]["name"] == "child"


async def test_a_dependent_of_an_absent_owner_is_collected(client: Client) -> None:
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"},
    }
    await client.create("configmaps", _owned("stray", ghost))
    await client.wait_gone("configmaps", "stray")


async def test_a_dependent_with_another_live_owner_survives(
    cluster: Cluster, client: Client
) -> None:
    first = await client.create("inferencemodels", inference_model("first"))
    second = await client.create("inferencemodels", inference_model("second"))
    body = _owned("shared", first)
    body["metadata"]["ownerReferences"] += _owned("x", second)["metadata"]["ownerReferences"]
    body["metadata"]["ownerReferences"][1]["controller"] = False
    await client.create("configmaps", body)
    await client.delete("inferencemodels", "first")
    await cluster.settle()
    assert (await client.get("configmaps", "shared"))["metadata"]["name"] == "shared"


async def test_finalizers_hold_deletion_until_removed(client: Client) -> None:
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create("configmaps", body)
    marked = await client.delete("configmaps", "held")
    assert marked["metadata"]["deletionTimestamp"]
    assert (await client.get("configmaps", "held"))["metadata"]["deletionTimestamp"]
    await client.patch("configmaps", "held", {"metadata": {"finalizers": None}})
    with pytest.raises(ClientError) as info:
        await client.get("configmaps", "held")
    assert info.value.status == 404


async def test_deleting_a_namespace_deletes_its_objects(client: Client) -> None:
    await client.create("namespaces", {"metadata": {"name": "team"}})
    await client.create("configmaps", configmap("a"), namespace="team")
    await client.delete("namespaces", "team", None)
    await client.wait_gone("namespaces", "team", None)
    assert await client.list("configmaps", "team") == []


async def test_a_namespace_stays_terminating_until_finalizers_let_its_objects_go(
    client: Client,
) -> None:
    await client.create("namespaces", {"metadata": {"name": "team"}})
    held = {**configmap("held"), "metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    await client.create("configmaps", held, namespace="team")
    await client.create("configmaps", configmap("free"), namespace="team")
    await client.delete("namespaces", "team", None)
    namespace = await client.get("namespaces", "team", None)
    assert namespace["status"]["phase"] == "Terminating"
    assert namespace["metadata"]["deletionTimestamp"]
    left = await client.list("configmaps", "team")
    assert [c["metadata"]["name"] for c in left] == ["held"]
    assert left[0]["metadata"]["deletionTimestamp"]
    await client.patch("configmaps", "held", {"metadata": {"finalizers": None}}, "team")
    await client.wait_gone("namespaces", "team", None)


async def test_nothing_can_be_created_in_a_terminating_namespace(client: Client) -> None:
    await client.create("namespaces", {"metadata": {"name": "team"}})
    held = {**configmap("held"), "metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    await client.create("configmaps", held, namespace="team")
    await client.delete("namespaces", "team", None)
    with pytest.raises(ClientError) as info:
        await client.create("configmaps", configmap("late"), namespace="team")
    assert info.value.status == 403
    assert "because it is being terminated" in info.value.body["message"]
