"""Table output for kubectl: printer columns evaluated with JSONPath, including filters."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tierwise_operator.emulator import Client
from tierwise_operator.emulator.jsonpath import JsonPathError, evaluate
from tierwise_operator.emulator.tables import age, wants_table

from .conftest import inference_model

TABLE = (  # what kubectl get sends
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
OBJ = {
    "status": {
        "conditions": [
            {"type": "Progressing", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "Serving"},
        ],
        "replicas": 2,
        "list": [{"a": 1}, {"a": 2}],
    }
}


@pytest.mark.parametrize(
    ("path", "values"),
    [
        (".status.replicas", [2]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type=='Ready')].reason", ["Serving"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Progressing"]),
        (".status.list[*].a", [1, 2]),
        (".status.list[-1].a", [2]),
        ("{.status['replicas']}", [2]),
        (".status.missing.deeper", []),
        (".status.list[5]", []),
    ],
)
def test_jsonpath_subset(path: str, values: list[Any]) -> None:
    assert evaluate(path, OBJ) == values


def test_jsonpath_outside_the_subset_is_an_error() -> None:
    with pytest.raises(JsonPathError):
        evaluate(".status..replicas", OBJ)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "5s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600, "3h"), (3 * 86400, "3d")],
)
def test_ages_read_like_kubectl(seconds: int, shown: str) -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    then = (now - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert age(then, now) == shown


def test_table_is_asked_for_by_kubectls_accept_header() -> None:
    assert wants_table(TABLE)
    assert not wants_table("application/json, */*")


async def _served_model(client: Client) -> None:
    await client.create("inferencemodels", inference_model())
    status = {
        "precision": "int8",
        "tierClass": "cpu-large",
        "replicas": 2,
        "readyReplicas": 2,
        "cost": {"perHour": "0.81", "per1kInferences": "0.0040"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Serving"}],
    }
    await client.patch("inferencemodels", "embedder", {"status": status}, subresource="status")


async def test_get_as_table_shows_the_printer_columns(client: Client) -> None:
    await _served_model(client)
    path = client.resource("inferencemodels").path("default")
    table = await client.request("GET", path, headers={"Accept": TABLE})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:7] == ["Name", "Precision", "Tier", "Replicas", "Ready", "Cost/1k", "Age"]
    (row,) = table["rows"]
    cells = dict(zip(names, row["cells"], strict=True))
    assert cells["Name"] == "embedder"
    assert (cells["Precision"], cells["Tier"], cells["Replicas"]) == ("int8", "cpu-large", 2)
    assert (cells["Ready"], cells["Cost/1k"], cells["Reason"]) == ("True", "0.0040", "Serving")
    assert cells["Age"].endswith("s")
    assert cells["Variant"] is None
    assert row["object"]["kind"] == "PartialObjectMetadata"
    wide = {c["name"]: c["priority"] for c in table["columnDefinitions"]}
    assert wide["Variant"] == 1 and wide["Precision"] == 0


async def test_get_one_object_as_table(client: Client) -> None:
    await _served_model(client)
    path = client.resource("inferencemodels").path("default", "embedder")
    table = await client.request(
        "GET", path, headers={"Accept": TABLE}, params={"includeObject": "Object"}
    )
    assert table["rows"][0]["object"]["status"]["precision"] == "int8"


async def test_plain_json_is_served_without_the_table_accept(client: Client) -> None:
    await _served_model(client)
    listing = await client.request("GET", client.resource("inferencemodels").path("default"))
    assert listing["kind"] == "InferenceModelList"
    assert listing["items"][0]["status"]["precision"] == "int8"
