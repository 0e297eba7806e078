"""Custom resources are pruned, defaulted and validated against their CRD schema; CRDs register."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierwise_operator.emulator import Client, ClientError

from ..conftest import INVALID_SAMPLES, SAMPLES
from .conftest import inference_model

INVALID = sorted(INVALID_SAMPLES.glob("*.yaml"))


def _doc(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def _expected(path: Path) -> str:
    match = re.search(r"^# expect: (\S+)", path.read_text(), re.MULTILINE)
    assert match
    return match[1]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
async def test_invalid_sample_is_refused_with_422_naming_the_field(
    client: Client, path: Path
) -> None:
    doc = _doc(path)
    resource = "inferencemodels" if doc["kind"] == "InferenceModel" else "tierclasses"
    with pytest.raises(ClientError) as info:
        await client.create(resource, doc)
    body = info.value.body
    assert info.value.status == 422
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        f'{doc["kind"]}.tierwise.dev "{doc["metadata"]["name"]}" is invalid: '
    )
    fields = [cause["field"] for cause in body["details"]["causes"]]
    assert any(f.startswith(_expected(path)) for f in fields), body["details"]["causes"]
    assert all(
        cause["message"] and "\n" not in cause["message"] for cause in body["details"]["causes"]
    )


async def test_invalid_update_is_refused_and_loses_nothing(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    with pytest.raises(ClientError) as info:
        await client.patch("inferencemodels", "embedder", {"spec": {"precisions": ["fp64"]}})
    assert info.value.status == 422
    assert "spec.precisions[0]: Unsupported value" in info.value.body["message"]
    assert (await client.get("inferencemodels", "embedder"))["spec"]["precisions"] == [
        "fp32",
        "int8",
    ]


async def test_samples_are_accepted(client: Client) -> None:
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith("tierwise.dev/"):
                resource = "inferencemodels" if doc["kind"] == "InferenceModel" else "tierclasses"
                await client.create(resource, doc)
    assert len(await client.list("tierclasses")) >= 3


async def test_schema_defaults_fill_absent_fields(client: Client) -> None:
    body = inference_model()
    body["spec"]["traffic"] = {"targetRPS": 5}
    created = await client.create("inferencemodels", body)
    assert created["spec"]["priority"] == 0
    assert created["spec"]["traffic"] == {"targetRPS": 5, "headroom": "20%"}
    assert "replicas" not in created["spec"]  # no default for a map that is absent


async def test_unknown_fields_are_pruned(client: Client) -> None:
    body = inference_model()
    body["spec"]["notAField"] = 1
    body["spec"]["model"]["extra"] = {"x": 1}
    created = await client.create("inferencemodels", body)
    assert "notAField" not in created["spec"]
    assert "extra" not in created["spec"]["model"]


async def test_unknown_fields_are_refused_with_strict_field_validation(client: Client) -> None:
    body = inference_model()
    body["spec"]["notAField"] = 1
    path = client.resource("inferencemodels").path("default")
    with pytest.raises(ClientError) as info:
        await client.request("POST", path, body=body, params={"fieldValidation": "Strict"})
    assert info.value.status == 422
    assert 'unknown field "spec.notAField"' in info.value.body["message"]


async def test_status_is_validated_too(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    with pytest.raises(ClientError) as info:
        await client.patch(
            "inferencemodels", "embedder", {"status": {"precision": "fp64"}}, subresource="status"
        )
    assert info.value.status == 422


def _widget_crd(scope: str = "Namespaced") -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {
                "kind": "Widget",
                "plural": "widgets",
                "singular": "widget",
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(schema)},
                }
            ],
        },
    }


async def test_a_crd_created_through_the_api_is_served_and_established(client: Client) -> None:
    crd = await client.create("customresourcedefinitions", _widget_crd())
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    discovery = await client.request("GET", "/apis/example.com/v1")
    assert [r["name"] for r in discovery["resources"]] == ["widgets"]
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 2},
    }
    await client.request("POST", "/apis/example.com/v1/namespaces/default/widgets", body=widget)
    with pytest.raises(ClientError) as info:
        await client.request(
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets",
            body={**widget, "metadata": {"name": "v"}, "spec": {"size": 0}},
        )
    assert info.value.status == 422


async def test_deleting_a_crd_removes_its_objects_and_its_api(client: Client) -> None:
    await client.create("customresourcedefinitions", _widget_crd())
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    await client.request("POST", "/apis/example.com/v1/namespaces/default/widgets", body=widget)
    await client.delete("customresourcedefinitions", "widgets.example.com", None)
    with pytest.raises(ClientError) as info:
        await client.request("GET", "/apis/example.com/v1/namespaces/default/widgets")
    assert info.value.status == 404
    await client.create("customresourcedefinitions", _widget_crd())
    listing = await client.request("GET", "/apis/example.com/v1/namespaces/default/widgets")
    assert listing["items"] == []
