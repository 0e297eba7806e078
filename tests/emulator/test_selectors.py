"""Label selectors (equality and set-based) and field selectors on list."""

from __future__ import annotations

import pytest

from tierwise_operator.emulator import Client, ClientError
from tierwise_operator.emulator.selectors import (
    SelectorError,
    field_predicate,
    label_predicate,
    selector_from_match,
)

from .conftest import configmap

OBJ = {
    "metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "gpu"}},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app=api", False),
        ("missing!=x", True),
        ("tier in (gpu,cpu)", True),
        ("tier notin (gpu)", False),
        ("missing notin (x)", True),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("app=web,tier in (cpu)", False),
        ("app=web, tier in (gpu, cpu), !missing", True),
        ("", True),
    ],
)
def test_label_selector(selector: str, matches: bool) -> None:
    assert label_predicate(selector)(OBJ) is matches


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=a", True),
        ("metadata.name!=a", False),
        ("metadata.namespace==ns,status.phase=Running", True),
        ("status.phase=Pending", False),
        ("spec.nodeName=", True),
    ],
)
def test_field_selector(selector: str, matches: bool) -> None:
    assert field_predicate(selector)(OBJ) is matches


@pytest.mark.parametrize("bad", ["app in gpu", "a=b=c", "=x"])
def test_unparseable_selectors_raise(bad: str) -> None:
    with pytest.raises(SelectorError):
        label_predicate(bad)


def test_label_selector_objects_with_match_expressions() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu"]}],
    }
    assert selector_from_match(selector)(OBJ)
    assert not selector_from_match(
        {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}
    )(OBJ)


async def _labelled(client: Client) -> None:
    for name, labels in (
        ("a", {"app": "web", "tier": "gpu"}),
        ("b", {"app": "web"}),
        ("c", {"app": "db"}),
    ):
        body = configmap(name)
        body["metadata"]["labels"] = labels
        await client.create("configmaps", body)


@pytest.mark.parametrize(
    ("labels", "fields", "names"),
    [
        ("app=web", None, ["a", "b"]),
        ("app in (web,db),!tier", None, ["b", "c"]),
        (None, "metadata.name=c", ["c"]),
        ("app=web", "metadata.name!=a", ["b"]),
        (None, "metadata.namespace=default", ["a", "b", "c"]),
    ],
)
async def test_list_filters_by_selectors(
    client: Client, labels: str | None, fields: str | None, names: list[str]
) -> None:
    await _labelled(client)
    found = await client.list("configmaps", "default", labels=labels, fields=fields)
    assert [o["metadata"]["name"] for o in found] == names


async def test_a_bad_selector_is_400(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        await client.list("configmaps", labels="a in b")
    assert info.value.status == 400
