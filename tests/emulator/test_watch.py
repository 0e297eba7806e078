"""Watch streams: initial events, resuming from a resourceVersion, 410 Gone, selectors, timeouts."""

from __future__ import annotations

import asyncio
import time

from tierwise_operator.emulator import Client, Cluster

from .conftest import configmap, watch


def _summary(events: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]  # type: ignore[index]


async def test_watch_without_a_version_starts_with_the_current_objects(client: Client) -> None:
    await client.create("configmaps", configmap("a"))
    await client.create("configmaps", configmap("b"))
    events = await watch(client, "configmaps", {}, count=2)
    assert _summary(events) == [("ADDED", "a"), ("ADDED", "b")]


async def test_watch_from_a_list_version_sees_only_later_changes(client: Client) -> None:
    await client.create("configmaps", configmap("a"))
    listing = await client.request("GET", client.resource("configmaps").path("default"))
    since = listing["metadata"]["resourceVersion"]
    await client.patch("configmaps", "a", {"data": {"k": "v"}})
    await client.create("configmaps", configmap("b"))
    await client.delete("configmaps", "a")
    events = await watch(client, "configmaps", {"resourceVersion": since}, count=3)
    assert _summary(events) == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(since)


async def test_watch_delivers_changes_made_while_it_runs(client: Client) -> None:
    listing = await client.request("GET", client.resource("configmaps").path("default"))
    task = asyncio.create_task(
        watch(client, "configmaps", {"resourceVersion": listing["metadata"]["resourceVersion"]}, 2)
    )
    await asyncio.sleep(0.1)
    await client.create("configmaps", configmap("live"))
    await client.patch("configmaps", "live", {"data": {"k": "v"}})
    assert _summary(await task) == [("ADDED", "live"), ("MODIFIED", "live")]


async def test_watch_from_a_forgotten_version_is_410_gone() -> None:
    async with Cluster.start() as cluster:
        cluster.store._log = type(cluster.store._log)(maxlen=2)
        for name in "abcd":
            await cluster.client.create("configmaps", configmap(name))
        events = await watch(cluster.client, "configmaps", {"resourceVersion": "1"}, count=1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410


async def test_objects_leaving_a_label_selector_arrive_as_deleted(client: Client) -> None:
    body = configmap("a")
    body["metadata"]["labels"] = {"app": "web"}
    created = await client.create("configmaps", body)
    since = created["metadata"]["resourceVersion"]
    await client.patch("configmaps", "a", {"metadata": {"labels": {"app": "db"}}})
    await client.patch("configmaps", "a", {"metadata": {"labels": {"app": "web"}}})
    events = await watch(
        client, "configmaps", {"resourceVersion": since, "labelSelector": "app=web"}, count=2
    )
    assert _summary(events) == [("DELETED", "a"), ("ADDED", "a")]


async def test_send_initial_events_ends_with_a_bookmark(client: Client) -> None:
    await client.create("configmaps", configmap("a"))
    params = {
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
    }
    events = await watch(client, "configmaps", params, count=2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    annotations = events[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


async def test_timeout_seconds_ends_the_stream(client: Client) -> None:
    started = time.monotonic()
    events = await watch(
        client, "configmaps", {"timeoutSeconds": "1", "resourceVersion": "1"}, count=99, timeout=5
    )
    assert events == []
    assert 0.9 < time.monotonic() - started < 3


async def test_namespaced_watch_sees_only_its_namespace(client: Client) -> None:
    await client.create("namespaces", {"metadata": {"name": "other"}})
    await client.create("configmaps", configmap("elsewhere"), namespace="other")
    await client.create("configmaps", configmap("here"))
    events = await watch(client, "configmaps", {}, count=2, timeout=1)
    assert _summary(events) == [("ADDED", "here")]
