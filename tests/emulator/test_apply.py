"""Server-side apply: create when absent, merge with others' fields, drop what stops being applied,
conflicts with other managers unless forced, managedFields recorded."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise_operator.emulator import Client, ClientError, Cluster

from .conftest import configmap, deployment


def _env(obj: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"][0].get("env", [])
    return env


def _with_env(body: dict[str, Any], *names: str) -> dict[str, Any]:
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": n, "value": n.lower()} for n in names
    ]
    return body


async def test_apply_creates_the_object_when_absent(client: Client) -> None:
    created = await client.apply(deployment("web"), field_manager="tierwise")
    assert created["metadata"]["generation"] == 1
    managers = {(m["manager"], m["operation"]) for m in created["metadata"]["managedFields"]}
    assert managers == {("tierwise", "Apply")}


async def test_apply_answers_201_on_create_and_200_on_update(client: Client) -> None:
    path = client.resource("configmaps").path("default", "a")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}}
    params = {"fieldManager": "me"}
    headers = {"Content-Type": "application/apply-patch+yaml"}
    async with client._session.patch(
        client.url + path, json=body, params=params, headers=headers
    ) as first:
        assert first.status == 201
    async with client._session.patch(
        client.url + path, json=body, params=params, headers=headers
    ) as second:
        assert second.status == 200


async def test_apply_keeps_fields_set_by_other_managers(client: Client) -> None:
    await client.apply(deployment("web"), field_manager="tierwise")
    await client.patch(
        "deployments",
        "web",
        {"metadata": {"annotations": {"team": "a"}}},
        field_manager="someone-else",
    )
    again = await client.apply(deployment("web", image="app:2"), field_manager="tierwise")
    assert again["metadata"]["annotations"] == {"team": "a"}
    assert again["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"


async def test_apply_removes_fields_the_manager_stops_applying(client: Client) -> None:
    await client.apply(_with_env(deployment("web"), "A", "B"), field_manager="tierwise")
    again = await client.apply(_with_env(deployment("web"), "A"), field_manager="tierwise")
    assert _env(again) == [{"name": "A", "value": "a"}]


async def test_apply_keeps_list_items_other_managers_added(client: Client) -> None:
    await client.apply(_with_env(deployment("web"), "A"), field_manager="tierwise")
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "env": [{"name": "X", "value": "x"}]}]}
            }
        }
    }
    await client.patch("deployments", "web", patch, patch_type="strategic", field_manager="other")
    again = await client.apply(_with_env(deployment("web"), "A", "B"), field_manager="tierwise")
    assert sorted(e["name"] for e in _env(again)) == ["A", "B", "X"]


async def test_apply_conflicts_with_a_field_another_manager_changed(client: Client) -> None:
    await client.apply(deployment("web", replicas=2), field_manager="tierwise")
    await client.patch("deployments", "web", {"spec": {"replicas": 5}}, field_manager="autoscaler")
    with pytest.raises(ClientError) as info:
        await client.apply(deployment("web", replicas=3), field_manager="tierwise")
    assert info.value.status == 409
    assert info.value.body["reason"] == "Conflict"
    assert 'conflict with "autoscaler": .spec.replicas' in info.value.body["message"]
    assert (await client.get("deployments", "web"))["spec"]["replicas"] == 5


async def test_forced_apply_takes_the_field_over(client: Client) -> None:
    await client.apply(deployment("web", replicas=2), field_manager="tierwise")
    await client.patch("deployments", "web", {"spec": {"replicas": 5}}, field_manager="autoscaler")
    forced = await client.apply(deployment("web", replicas=3), field_manager="tierwise", force=True)
    assert forced["spec"]["replicas"] == 3
    owners = {m["manager"]: m["fieldsV1"] for m in forced["metadata"]["managedFields"]}
    assert "f:replicas" in owners["tierwise"]["f:spec"]
    assert "f:replicas" not in owners.get("autoscaler", {}).get("f:spec", {})


async def test_applying_the_same_value_another_manager_set_is_no_conflict(client: Client) -> None:
    await client.create("deployments", deployment("web", replicas=2))
    applied = await client.apply(deployment("web", replicas=2), field_manager="tierwise")
    assert applied["spec"]["replicas"] == 2


async def test_apply_without_a_field_manager_is_400(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        await client.patch("deployments", "web", deployment("web"), patch_type="apply")
    assert info.value.status == 400


async def test_apply_to_a_custom_resource_merges_keyed_lists_by_schema(client: Client) -> None:
    def model(conditions: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "tierwise.dev/v1alpha1",
            "kind": "InferenceModel",
            "metadata": {"name": "m"},
            "status": {"conditions": conditions},
        }

    from .conftest import inference_model

    await client.create("inferencemodels", inference_model("m"))
    ready = {"type": "Ready", "status": "True", "reason": "Serving"}
    profiled = {"type": "Profiled", "status": "True", "reason": "Measured"}
    path = client.resource("inferencemodels").path("default", "m") + "/status"
    for manager, cond in (("a", ready), ("b", profiled)):
        await client.request(
            "PATCH",
            path,
            body=model([cond]),
            params={"fieldManager": manager},
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
    status = (await client.get("inferencemodels", "m"))["status"]
    assert sorted(c["type"] for c in status["conditions"]) == ["Profiled", "Ready"]


async def test_a_write_that_changes_nothing_is_not_stored(cluster: Cluster) -> None:
    """As on a real API server: same resourceVersion, no watch event, managedFields kept."""
    client = cluster.client
    first = await client.apply(configmap("a", k="1"), field_manager="tierwise")
    seen: list[str] = []
    cluster.store.listen(lambda event: seen.append(event.type))
    again = await client.apply(configmap("a", k="1"), field_manager="tierwise")
    patched = await client.patch("configmaps", "a", {"data": {"k": "1"}})
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert patched["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"] == first["metadata"]["managedFields"]
    assert seen == []
    changed = await client.apply(configmap("a", k="2"), field_manager="tierwise")
    assert int(changed["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert seen == ["MODIFIED"]
