"""The Deployment controller: pods from the template, rolling updates within limits, status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tierwise_operator.emulator import Client, Cluster
from tierwise_operator.emulator.controllers.deployments import HASH_LABEL, template_hash
from tierwise_operator.emulator.controllers.objects import pod_ready, terminating
from tierwise_operator.emulator.storage import Event

from .conftest import deployment


def _rolled_out(replicas: int) -> Any:
    def check(d: dict[str, Any]) -> bool:
        status = d.get("status", {})
        return (
            status.get("observedGeneration") == d["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas
            and status.get("readyReplicas") == replicas
            and status.get("replicas") == replicas
        )

    return check


@contextmanager
def sampling(cluster: Cluster, name: str) -> Iterator[dict[str, list[int]]]:
    """Ready and live pod counts of a Deployment after every single write to the store."""
    samples: dict[str, list[int]] = {"ready": [], "live": [], "new": []}
    pods = cluster.registry.lookup("pods")

    def sample(event: Event) -> None:
        mine = [
            p
            for p in cluster.store.items(pods, "default")
            if p["metadata"]["name"].startswith(f"{name}-")
        ]
        live = [p for p in mine if not terminating(p)]
        samples["ready"].append(sum(pod_ready(p) for p in live))
        samples["live"].append(len(live))

    cluster.store.listen(sample)
    try:
        yield samples
    finally:
        cluster.store.unlisten(sample)


async def test_pods_are_created_from_the_template_with_a_hash_label(client: Client) -> None:
    created = await client.create("deployments", deployment("web", replicas=2))
    status = (await client.wait_for("deployments", "web", _rolled_out(2)))["status"]
    pods = await client.list("pods", "default", labels="app=web")
    assert len(pods) == 2
    expected = template_hash(created["spec"]["template"])
    for pod in pods:
        assert pod["metadata"]["labels"][HASH_LABEL] == expected
        assert pod["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
        assert pod["spec"]["containers"][0]["image"] == "app:1"
        assert pod["status"]["phase"] == "Running"
    assert status["availableReplicas"] == 2
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


@pytest.mark.parametrize(
    ("limits", "least_ready", "most_live"),
    [((0, 1), 3, 4), ((0, 3), 3, 6), ((1, 0), 2, 3)],
    ids=["surge-one", "surge-all", "unavailable-one"],
)
async def test_rolling_update_stays_within_its_limits(
    cluster: Cluster, client: Client, limits: tuple[int, int], least_ready: int, most_live: int
) -> None:
    """Counted after every write: with maxUnavailable 0 the Ready pods never drop below 3."""
    max_unavailable, max_surge = limits
    body = deployment("web", replicas=3, maxUnavailable=max_unavailable, maxSurge=max_surge)
    await client.create("deployments", body)
    await client.wait_for("deployments", "web", _rolled_out(3))
    before = {p["metadata"]["name"] for p in await client.list("pods", "default")}
    with sampling(cluster, "web") as samples:
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}
        }
        await client.patch("deployments", "web", patch, patch_type="strategic")
        await client.wait_for("deployments", "web", _rolled_out(3))
        await cluster.settle()
    after = await client.list("pods", "default")
    assert before.isdisjoint(p["metadata"]["name"] for p in after)
    assert all(p["spec"]["containers"][0]["image"] == "app:2" for p in after)
    assert min(samples["ready"]) == least_ready
    assert max(samples["live"]) == most_live


async def test_recreate_deletes_every_old_pod_before_creating_new_ones(
    cluster: Cluster, client: Client
) -> None:
    body = deployment("web", replicas=2)
    body["spec"]["strategy"] = {"type": "Recreate"}
    await client.create("deployments", body)
    await client.wait_for("deployments", "web", _rolled_out(2))
    with sampling(cluster, "web") as samples:
        await client.patch(
            "deployments",
            "web",
            {"spec": {"template": {"metadata": {"labels": {"app": "web", "v": "2"}}}}},
        )
        await client.wait_for("deployments", "web", _rolled_out(2))
    assert min(samples["live"]) == 0
    assert max(samples["live"]) == 2


@pytest.mark.parametrize(("start", "end"), [(3, 1), (1, 3)])
async def test_scaling_changes_the_pod_count(client: Client, start: int, end: int) -> None:
    await client.create("deployments", deployment("web", replicas=start))
    await client.wait_for("deployments", "web", _rolled_out(start))
    await client.patch("deployments", "web", {"spec": {"replicas": end}})
    await client.wait_for("deployments", "web", _rolled_out(end))
    assert len(await client.list("pods", "default")) == end


async def test_deleting_a_deployment_removes_its_pods(client: Client) -> None:
    await client.create("deployments", deployment("web", replicas=2))
    await client.wait_for("deployments", "web", _rolled_out(2))
    await client.delete("deployments", "web")
    for pod in await client.list("pods", "default"):
        await client.wait_gone("pods", pod["metadata"]["name"])


async def test_unready_pods_leave_the_deployment_unavailable(
    cluster: Cluster, client: Client
) -> None:
    from tierwise_operator.emulator import FakeKubelet, Hang

    assert isinstance(cluster.kubelet, FakeKubelet)
    cluster.kubelet.decide = lambda pod: Hang()
    await client.create("deployments", deployment("web", replicas=2))
    stuck = await client.wait_for(
        "deployments", "web", lambda d: d.get("status", {}).get("replicas") == 2
    )
    await cluster.settle()
    status = (await client.get("deployments", "web"))["status"]
    assert "readyReplicas" not in status
    assert status["unavailableReplicas"] == 2
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert stuck["metadata"]["name"] == "web"
