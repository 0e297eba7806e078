"""`dryRun=All` validates a write like a real one and stores nothing (--dry-run=server)."""

from __future__ import annotations

import pytest

from tierwise_operator.emulator import Client, ClientError

from .conftest import inference_model

DRY = {"dryRun": "All"}
MODELS = "/apis/tierwise.dev/v1alpha1/namespaces/default/inferencemodels"


async def test_dry_run_create_answers_the_object_and_stores_nothing(client: Client) -> None:
    answered = await client.request("POST", MODELS, body=inference_model(), params=DRY)
    assert answered["metadata"]["name"] == "embedder" and answered["metadata"]["uid"]
    assert await client.list("inferencemodels", "default") == []


async def test_dry_run_create_is_validated_like_a_real_one(client: Client) -> None:
    model = inference_model()
    del model["spec"]["accuracyBudget"]
    with pytest.raises(ClientError) as info:
        await client.request("POST", MODELS, body=model, params=DRY)
    assert info.value.status == 422
    assert "spec.accuracyBudget" in info.value.body["message"]


async def test_dry_run_create_of_an_existing_name_conflicts(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    with pytest.raises(ClientError) as info:
        await client.request("POST", MODELS, body=inference_model(), params=DRY)
    assert info.value.status == 409


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_dry_run_update_changes_nothing(client: Client, method: str) -> None:
    created = await client.create("inferencemodels", inference_model())
    body: dict[str, object] = {"spec": {"priority": 7}}
    headers = {"Content-Type": "application/merge-patch+json"}
    if method == "PUT":
        body = {**created, "spec": {**created["spec"], "priority": 7}}
        headers = {}
    answered = await client.request(
        method, f"{MODELS}/embedder", body=body, params=DRY, headers=headers
    )
    assert answered["spec"]["priority"] == 7
    stored = await client.get("inferencemodels", "embedder")
    assert stored["spec"] == created["spec"]
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_dry_run_server_side_apply_creates_nothing(client: Client) -> None:
    answered = await client.request(
        "PATCH",
        f"{MODELS}/embedder",
        body=inference_model(),
        params={**DRY, "fieldManager": "kubectl"},
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert answered["metadata"]["name"] == "embedder"
    assert await client.list("inferencemodels", "default") == []


@pytest.mark.parametrize("value", ["Some", "true"])
async def test_an_unknown_dry_run_value_is_a_bad_request(client: Client, value: str) -> None:
    with pytest.raises(ClientError) as info:
        await client.request("POST", MODELS, body=inference_model(), params={"dryRun": value})
    assert info.value.status == 400
