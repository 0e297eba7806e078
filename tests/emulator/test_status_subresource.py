"""The status subresource: `/status` writes change only status; main writes ignore status."""

from __future__ import annotations

import pytest

from tierwise_operator.emulator import Client, ClientError

from .conftest import configmap, inference_model


async def test_create_drops_status_of_kinds_with_a_status_subresource(client: Client) -> None:
    body = inference_model()
    body["status"] = {"precision": "int8"}
    created = await client.create("inferencemodels", body)
    assert "status" not in created


async def test_status_patch_changes_only_status(client: Client) -> None:
    created = await client.create("inferencemodels", inference_model())
    patch = {
        "spec": {"priority": 7},
        "metadata": {"labels": {"x": "y"}},
        "status": {"precision": "int8"},
    }
    patched = await client.patch("inferencemodels", "embedder", patch, subresource="status")
    assert patched["status"] == {"precision": "int8"}
    assert patched["spec"] == created["spec"]
    assert "labels" not in patched["metadata"]


async def test_main_resource_patch_ignores_status(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    await client.patch(
        "inferencemodels", "embedder", {"status": {"precision": "fp32"}}, subresource="status"
    )
    patched = await client.patch(
        "inferencemodels", "embedder", {"spec": {"priority": 3}, "status": {"precision": "int4"}}
    )
    assert patched["spec"]["priority"] == 3
    assert patched["status"] == {"precision": "fp32"}


async def test_replacing_the_object_keeps_status(client: Client) -> None:
    created = await client.create("inferencemodels", inference_model())
    with_status = await client.patch(
        "inferencemodels", "embedder", {"status": {"precision": "fp32"}}, subresource="status"
    )
    replacement = {**created, "metadata": with_status["metadata"], "status": {"precision": "int8"}}
    replaced = await client.replace("inferencemodels", replacement)
    assert replaced["status"] == {"precision": "fp32"}


async def test_replacing_status_keeps_the_rest(client: Client) -> None:
    created = await client.create("inferencemodels", inference_model())
    edited = {**created, "spec": {**created["spec"], "priority": 9}, "status": {"replicas": 2}}
    replaced = await client.replace("inferencemodels", edited, subresource="status")
    assert replaced["status"] == {"replicas": 2}
    assert replaced["spec"] == created["spec"]


async def test_kinds_without_a_status_subresource_reject_status_urls(client: Client) -> None:
    await client.create("configmaps", configmap("a"))
    with pytest.raises(ClientError) as info:
        await client.patch("configmaps", "a", {"data": {}}, subresource="status")
    assert info.value.status == 404
