"""Merge patch, JSON patch and strategic merge patch, as functions and through the API."""

from __future__ import annotations

from typing import Any

import pytest

from tierwise_operator.emulator import Client, ClientError
from tierwise_operator.emulator.patching import json_patch, merge_patch, strategic_merge
from tierwise_operator.emulator.shapes import BuiltinShape, ObjectShape

from .conftest import deployment, inference_model

POD_SHAPE = ObjectShape(BuiltinShape())


def _pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": list(containers)}}


def test_merge_patch_merges_maps_replaces_lists_and_deletes_nulls() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "gone": 1}
    patched = merge_patch(target, {"a": {"b": 9}, "l": [3], "gone": None})
    assert patched == {"a": {"b": 9, "c": 2}, "l": [3]}


def test_json_patch_applies_operations_and_fails_a_false_test() -> None:
    target = {"metadata": {"resourceVersion": "5"}, "spec": {"x": [1]}}
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
        {"op": "add", "path": "/spec/x/-", "value": 2},
    ]
    assert json_patch(target, ops)["spec"]["x"] == [1, 2]
    with pytest.raises(ValueError, match="rejected"):
        json_patch(target, [{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}])


def test_strategic_merge_merges_containers_by_name() -> None:
    target = _pod({"name": "app", "image": "a:1", "args": ["x"]}, {"name": "side", "image": "s"})
    patched = strategic_merge(target, _pod({"name": "app", "image": "a:2"}), POD_SHAPE)
    assert patched["spec"]["containers"] == [
        {"name": "app", "image": "a:2", "args": ["x"]},
        {"name": "side", "image": "s"},
    ]


def test_strategic_merge_merges_env_by_name_and_ports_by_container_port() -> None:
    target = _pod(
        {
            "name": "app",
            "env": [{"name": "A", "value": "1"}],
            "ports": [{"containerPort": 80, "name": "http"}],
        }
    )
    patch = _pod(
        {
            "name": "app",
            "env": [{"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
        }
    )
    container = strategic_merge(target, patch, POD_SHAPE)["spec"]["containers"][0]
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert container["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]


def test_strategic_merge_replaces_atomic_lists() -> None:
    target = _pod({"name": "app", "args": ["a", "b"]})
    patched = strategic_merge(target, _pod({"name": "app", "args": ["c"]}), POD_SHAPE)
    assert patched["spec"]["containers"][0]["args"] == ["c"]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}, ["app"]),
        ({"spec": {"containers": [{"$patch": "replace"}, {"name": "new"}]}}, ["new"]),
        (
            {
                "spec": {
                    "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                    "containers": [{"name": "app", "image": "a:2"}],
                }
            },
            ["side", "app"],
        ),
    ],
    ids=["delete-item", "replace-list", "set-element-order"],
)
def test_strategic_merge_honours_list_directives(
    patch: dict[str, Any], expected: list[str]
) -> None:
    target = _pod({"name": "app", "image": "a:1"}, {"name": "side", "image": "s"})
    patched = strategic_merge(target, patch, POD_SHAPE)
    assert [c["name"] for c in patched["spec"]["containers"]] == expected


def test_strategic_merge_retain_keys_drops_other_fields() -> None:
    target = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge(target, patch, POD_SHAPE)["spec"]["strategy"] == {"type": "Recreate"}


def test_finalizers_merge_as_a_set() -> None:
    target = {"metadata": {"finalizers": ["a"]}}
    patched = strategic_merge(target, {"metadata": {"finalizers": ["b", "a"]}}, POD_SHAPE)
    assert patched["metadata"]["finalizers"] == ["a", "b"]


async def test_strategic_merge_patch_of_a_deployment_keeps_other_containers(client: Client) -> None:
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s:1"})
    await client.create("deployments", body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
    patched = await client.patch("deployments", "web", patch, patch_type="strategic")
    images = {c["name"]: c["image"] for c in patched["spec"]["template"]["spec"]["containers"]}
    assert images == {"app": "app:2", "side": "s:1"}


async def test_strategic_merge_patch_of_a_custom_resource_is_415(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    with pytest.raises(ClientError) as info:
        await client.patch("inferencemodels", "embedder", {"spec": {}}, patch_type="strategic")
    assert info.value.status == 415


async def test_json_patch_with_a_stale_resource_version_test_is_422(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ]
    with pytest.raises(ClientError) as info:
        await client.patch("inferencemodels", "embedder", ops, patch_type="json")
    assert info.value.status == 422
    assert "finalizers" not in (await client.get("inferencemodels", "embedder"))["metadata"]
