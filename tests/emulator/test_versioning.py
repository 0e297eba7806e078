"""Server metadata: uid, timestamps, generation on spec changes, resourceVersion and its 409s."""

from __future__ import annotations

import pytest

from tierwise_operator.emulator import Client, ClientError

from .conftest import configmap, deployment, inference_model


async def test_create_stamps_uid_timestamp_generation_and_resource_version(client: Client) -> None:
    created = await client.create("configmaps", configmap("a", k="v"))
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert len(meta["uid"]) == 36 and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert created["apiVersion"] == "v1" and created["kind"] == "ConfigMap"


async def test_every_write_gets_a_newer_resource_version(client: Client) -> None:
    first = await client.create("configmaps", configmap("a", k="1"))
    second = await client.patch("configmaps", "a", {"data": {"k": "2"}})
    third = await client.create("configmaps", configmap("b"))
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, third)]
    assert versions == sorted(set(versions))


async def test_generation_moves_on_spec_changes_only(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    labelled = await client.patch(
        "inferencemodels", "embedder", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 1
    status = {"status": {"precision": "int8"}}
    with_status = await client.patch("inferencemodels", "embedder", status, subresource="status")
    assert with_status["metadata"]["generation"] == 1
    changed = await client.patch("inferencemodels", "embedder", {"spec": {"priority": 5}})
    assert changed["metadata"]["generation"] == 2


async def test_generate_name_gets_a_random_suffix(client: Client) -> None:
    body = {"metadata": {"generateName": "job-"}, "data": {}}
    created = await client.create("configmaps", body)
    assert created["metadata"]["name"].startswith("job-")
    assert len(created["metadata"]["name"]) == len("job-") + 5


async def test_duplicate_create_is_409_already_exists(client: Client) -> None:
    await client.create("configmaps", configmap("a"))
    with pytest.raises(ClientError) as info:
        await client.create("configmaps", configmap("a"))
    assert info.value.status == 409
    assert info.value.body["reason"] == "AlreadyExists"
    assert info.value.body["message"] == 'configmaps "a" already exists'


@pytest.mark.parametrize("verb", ["replace", "merge-patch"])
async def test_stale_resource_version_is_409_conflict(client: Client, verb: str) -> None:
    stale = await client.create("configmaps", configmap("a", k="1"))
    await client.patch("configmaps", "a", {"data": {"k": "2"}})
    stale["data"] = {"k": "3"}
    with pytest.raises(ClientError) as info:
        if verb == "replace":
            await client.replace("configmaps", stale)
        else:
            await client.patch(
                "configmaps", "a", {"metadata": stale["metadata"], "data": {"k": "3"}}
            )
    assert info.value.status == 409
    assert info.value.body["reason"] == "Conflict"
    assert "the object has been modified" in info.value.body["message"]
    assert (await client.get("configmaps", "a"))["data"] == {"k": "2"}


async def test_replace_with_the_current_resource_version_succeeds(client: Client) -> None:
    current = await client.create("configmaps", configmap("a", k="1"))
    current["data"] = {"k": "2"}
    replaced = await client.replace("configmaps", current)
    assert replaced["data"] == {"k": "2"}
    assert replaced["metadata"]["uid"] == current["metadata"]["uid"]


async def test_missing_object_is_404_with_a_status_body(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        await client.get("deployments", "nope")
    body = info.value.body
    assert info.value.status == 404
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'deployments.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_create_in_a_missing_namespace_is_404(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        await client.create("configmaps", configmap("a"), namespace="nowhere")
    assert info.value.status == 404
    assert info.value.body["message"] == 'namespaces "nowhere" not found'


async def test_unknown_resource_is_404(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        await client.request("GET", "/apis/example.com/v1/namespaces/default/widgets")
    assert info.value.status == 404


async def test_server_fields_cannot_be_changed_by_clients(client: Client) -> None:
    created = await client.create("deployments", deployment("web"))
    forged = {
        "metadata": {"uid": "forged", "creationTimestamp": "2000-01-01T00:00:00Z", "generation": 99}
    }
    patched = await client.patch("deployments", "web", forged)
    for field in ("uid", "creationTimestamp", "generation"):
        assert patched["metadata"][field] == created["metadata"][field]


async def test_cluster_scoped_objects_have_no_namespace(client: Client) -> None:
    created = await client.create("namespaces", {"metadata": {"name": "team-a"}})
    assert "namespace" not in created["metadata"]
    assert created["status"] == {"phase": "Active"}
