"""Jobs run to completion or failure; the fake kubelet's hooks: termination messages, OOMKills;
the scheduler's node fit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tierwise_operator.emulator import (
    Client,
    Cluster,
    Exit,
    FakeKubelet,
    NodeSpec,
    OOMKill,
    PodHandle,
)

from .conftest import deployment, job


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def _has(kind: str) -> Any:
    return lambda obj: (_condition(obj, kind) or {}).get("status") == "True"


async def test_job_completes_with_the_termination_message_from_the_hook(
    client: Client, kubelet: FakeKubelet
) -> None:
    result = json.dumps({"weights": 123})
    kubelet.decide = lambda pod: (
        Exit(message=result) if "job-name" in pod["metadata"]["labels"] else None
    )
    await client.create("jobs", job("profile"))
    done = await client.wait_for("jobs", "profile", _has("Complete"))
    assert done["status"]["succeeded"] == 1
    assert "active" not in done["status"] and done["status"]["completionTime"]
    assert _condition(done, "SuccessCriteriaMet") is not None
    (pod,) = await client.list("pods", "default", labels="job-name=profile")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
        0,
        "Completed",
        result,
    )
    assert pod["status"]["phase"] == "Succeeded"


async def test_job_fails_after_its_backoff_limit(client: Client, kubelet: FakeKubelet) -> None:
    kubelet.decide = lambda pod: Exit(code=2, message="boom")
    await client.create("jobs", job("profile", backoffLimit=1))
    failed = await client.wait_for("jobs", "profile", _has("Failed"))
    assert failed["status"]["failed"] == 2
    assert _condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]
    pods = await client.list("pods", "default", labels="job-name=profile")
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed"]


async def test_a_pod_that_ooms_at_start_crash_loops(client: Client, kubelet: FakeKubelet) -> None:
    kubelet.decide = lambda pod: OOMKill(message="out of memory")
    await client.create("deployments", deployment("web", replicas=1))
    (pod,) = await client.list("pods", "default", labels="app=web")
    name = pod["metadata"]["name"]
    crashed = await client.wait_for(
        "pods",
        name,
        lambda p: p.get("status", {}).get("containerStatuses", [{}])[0].get("restartCount", 0) >= 2,
    )
    status = crashed["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["ready"] is False
    assert "readyReplicas" not in (await client.get("deployments", "web"))["status"]


async def test_oom_kill_hook_kills_a_running_pod(client: Client, kubelet: FakeKubelet) -> None:
    await client.create("deployments", deployment("web", replicas=1))
    await client.wait_for(
        "deployments", "web", lambda d: d.get("status", {}).get("readyReplicas") == 1
    )
    (pod,) = await client.list("pods", "default", labels="app=web")
    kubelet.oom_kill("default", pod["metadata"]["name"])
    after = await client.get("pods", pod["metadata"]["name"])
    status = after["status"]["containerStatuses"][0]
    assert (status["restartCount"], status["lastState"]["terminated"]["reason"]) == (1, "OOMKilled")
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    await client.wait_for("deployments", "web", lambda d: "readyReplicas" not in d["status"])


async def test_a_pod_no_node_fits_stays_pending_as_unschedulable(client: Client) -> None:
    body = deployment("web", replicas=1)
    body["spec"]["template"]["spec"]["nodeSelector"] = {"gpu": "h100"}
    await client.create("deployments", body)
    (pod,) = await client.list("pods", "default", labels="app=web")
    pending = await client.wait_for(
        "pods", pod["metadata"]["name"], lambda p: _condition(p, "PodScheduled") is not None
    )
    scheduled = _condition(pending, "PodScheduled")
    assert scheduled is not None
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert "node affinity/selector" in scheduled["message"]
    assert pending["status"]["phase"] == "Pending" and "nodeName" not in pending["spec"]


@pytest.mark.parametrize(
    ("request_memory", "expected_node"),
    [("2Gi", "b-big"), ("512Mi", "a-small")],
)
async def test_pods_go_to_a_node_with_room_and_matching_labels(
    request_memory: str, expected_node: str
) -> None:
    """The first node by name that fits wins (the real scheduler scores them)."""
    nodes = [
        NodeSpec(
            "a-small", labels={"pool": "a"}, allocatable={"cpu": "2", "memory": "1Gi", "pods": "9"}
        ),
        NodeSpec(
            "b-big", labels={"pool": "a"}, allocatable={"cpu": "8", "memory": "8Gi", "pods": "9"}
        ),
        NodeSpec(
            "c-other", labels={"pool": "b"}, allocatable={"cpu": "8", "memory": "8Gi", "pods": "9"}
        ),
    ]
    async with Cluster.start(nodes=nodes) as cluster:
        body = deployment("web", replicas=1)
        spec = body["spec"]["template"]["spec"]
        spec["nodeSelector"] = {"pool": "a"}
        spec["containers"][0]["resources"] = {"requests": {"memory": request_memory, "cpu": "500m"}}
        await cluster.client.create("deployments", body)
        await cluster.client.wait_for(
            "deployments", "web", lambda d: d.get("status", {}).get("readyReplicas") == 1
        )
        (pod,) = await cluster.client.list("pods", "default")
    assert pod["spec"]["nodeName"] == expected_node


async def test_nodes_report_allocatable_resources(client: Client) -> None:
    (node,) = await client.list("nodes")
    assert node["status"]["allocatable"]["memory"] == "128Gi"
    assert node["status"]["conditions"][0] == {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
    }


class RecordingKubelet:
    """A kubelet as local mode writes one: it starts and stops things, and reports status."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.stopped: list[str] = []

    async def start(self, pod: PodHandle) -> None:
        self.started.append(pod.name)
        current = pod.pod
        assert current is not None and current["spec"]["nodeName"] == "emulator"
        pod.running(ready=True)

    async def stop(self, pod: PodHandle) -> None:
        self.stopped.append(pod.name)


async def test_a_custom_kubelet_starts_new_pods_and_stops_old_ones_on_a_rollout() -> None:
    kubelet = RecordingKubelet()
    async with Cluster.start(kubelet=kubelet) as cluster:
        client = cluster.client
        await client.create("deployments", deployment("web", replicas=2, maxUnavailable=0))
        await client.wait_for("deployments", "web", lambda d: d["status"].get("readyReplicas") == 2)
        first = list(kubelet.started)
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}
        }
        await client.patch("deployments", "web", patch, patch_type="strategic")
        await client.wait_for(
            "deployments",
            "web",
            lambda d: d["status"].get("updatedReplicas") == 2 == len(kubelet.stopped),
        )
        await cluster.settle()
        names = {p["metadata"]["name"] for p in await client.list("pods", "default")}
        stopped = list(kubelet.stopped)
    assert len(first) == 2 and sorted(stopped) == sorted(first)
    assert names == set(kubelet.started) - set(first)
    assert sorted(kubelet.stopped[2:]) == sorted(names)  # the cluster stops what runs when it ends
