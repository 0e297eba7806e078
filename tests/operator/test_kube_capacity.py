"""Without Prometheus, free capacity is node allocatable minus what scheduled pods request."""

from __future__ import annotations

from tierwise_operator.metrics.kube_capacity import node_capacity


def _node(name: str, memory: str, gpus: int = 0) -> dict[str, object]:
    allocatable: dict[str, object] = {"memory": memory}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {"metadata": {"name": name}, "status": {"allocatable": allocatable}}


def _pod(node: str, memory: str, gpus: int = 0, phase: str = "Running") -> dict[str, object]:
    requests: dict[str, str] = {"memory": memory}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    return {
        "spec": {"nodeName": node, "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": phase},
    }


def test_requests_of_running_pods_are_subtracted() -> None:
    nodes = [_node("cpu-1", "64Gi"), _node("gpu-1", "512Gi", gpus=8)]
    pods = [
        _pod("cpu-1", "16Gi"),
        _pod("cpu-1", "8Gi", phase="Succeeded"),  # finished pods hold nothing
        _pod("gpu-1", "32Gi", gpus=3),
        {"spec": {"containers": []}, "status": {"phase": "Pending"}},  # unscheduled
    ]
    free = node_capacity(nodes, pods, {"gpu-1": 80 * 2**30})
    assert free["cpu-1"].host_available_bytes == 48 * 2**30
    assert free["cpu-1"].gpu_free_bytes == ()
    assert free["gpu-1"].gpu_free_bytes == (80 * 2**30,) * 5
    assert free["gpu-1"].host_available_bytes == 480 * 2**30


def test_overcommitted_nodes_report_zero_not_negative() -> None:
    free = node_capacity([_node("n", "1Gi")], [_pod("n", "2Gi")], {})
    assert free["n"].host_available_bytes == 0
