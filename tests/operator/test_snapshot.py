"""The planner sees free capacity per node and device, who holds what, and observed traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tierwise_operator.api import TierClass
from tierwise_operator.metrics.observation import ModelTraffic, NodeMemory, Observation
from tierwise_operator.metrics.snapshot import build_snapshot, tier_of

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GIB = 2**30


def _node(
    name: str, labels: dict[str, str], memory: str, cpu: str = "16", gpus: int = 0
) -> dict[str, Any]:
    allocatable: dict[str, str] = {"memory": memory, "cpu": cpu}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": allocatable}}


def _pod(node: str, memory: str, cpu: str = "1", gpus: int = 0, model: str | None = None,
         component: str = "serving", namespace: str = "support") -> dict[str, Any]:  # fmt: skip
    requests = {"memory": memory, "cpu": cpu}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    labels = (
        {"tierwise.dev/model": model, "app.kubernetes.io/component": component} if model else {}
    )
    return {
        "metadata": {"namespace": namespace, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": "Running"},
    }


CPU_LABELS = {"node.kubernetes.io/instance-type": "m7i.4xlarge"}
GPU_LABELS = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def _observation(available: bool, **kw: Any) -> Observation:
    return Observation(at=NOW, source="prometheus", available=available,
                       reason="PrometheusReachable" if available else "PrometheusUnreachable",
                       message="", **kw)  # fmt: skip


def test_nodes_map_to_the_tierclass_whose_selector_they_match(
    sample_tiers: dict[str, TierClass],
) -> None:
    tiers = list(sample_tiers.values())
    assert tier_of(_node("c", CPU_LABELS, "64Gi"), tiers).name == "cpu-large"  # type: ignore[union-attr]
    assert tier_of(_node("g", GPU_LABELS, "512Gi"), tiers).name == "gpu-h100"  # type: ignore[union-attr]
    assert tier_of(_node("x", {"other": "1"}, "8Gi"), tiers) is None


def test_capacity_without_prometheus_comes_from_requests(
    sample_tiers: dict[str, TierClass],
) -> None:
    nodes = [_node("cpu-1", CPU_LABELS, "64Gi"), _node("gpu-1", GPU_LABELS, "512Gi", gpus=8)]
    pods = [_pod("cpu-1", "16Gi", cpu="4", model="embedder"),
            _pod("gpu-1", "8Gi", gpus=2, model="summarizer"),
            _pod("cpu-1", "1Gi", model="embedder", component="profile")]  # fmt: skip
    snap = build_snapshot(tiers=list(sample_tiers.values()), nodes=nodes, pods=pods,
                          observation=_observation(False), metrics_at=None)  # fmt: skip
    cpu, gpu = (next(n for n in snap.nodes or [] if n.name == name) for name in ("cpu-1", "gpu-1"))
    assert int(cpu.free_memory) == 47 * GIB and cpu.free_cpu == 11.0
    assert [d.allocated for d in gpu.devices] == [True, True] + [False] * 6
    assert {int(d.free) for d in gpu.devices if not d.allocated} == {80 * GIB}
    holders = sorted((p.model, p.node) for p in snap.placements)
    assert holders == [("support/embedder", "cpu-1"), ("support/summarizer", "gpu-1")]
    assert snap.models == []


def test_prometheus_lowers_free_memory_and_gives_device_memory_and_traffic(
    sample_tiers: dict[str, TierClass],
) -> None:
    nodes = [_node("cpu-1", CPU_LABELS, "64Gi"), _node("gpu-1", GPU_LABELS, "512Gi", gpus=2)]
    pods = [_pod("gpu-1", "8Gi", gpus=1, model="summarizer")]
    observation = _observation(
        True,
        nodes={"cpu-1": NodeMemory(host_available_bytes=20 * GIB),
               "gpu-1": NodeMemory(gpu_free_bytes=(70 * GIB, 3 * GIB))},
        traffic={("support", "embedder"): ModelTraffic(40.0, 0.021)},
    )  # fmt: skip
    snap = build_snapshot(tiers=list(sample_tiers.values()), nodes=nodes, pods=pods,
                          observation=observation, metrics_at=NOW)  # fmt: skip
    cpu, gpu = (next(n for n in snap.nodes or [] if n.name == name) for name in ("cpu-1", "gpu-1"))
    assert int(cpu.free_memory) == 20 * GIB
    assert [(int(d.free), d.allocated) for d in gpu.devices] == [(70 * GIB, False), (3 * GIB, True)]
    (traffic,) = snap.models
    assert (traffic.key, traffic.request_rate) == ("support/embedder", 40.0)
    assert float(traffic.latency_p99) == 0.021  # type: ignore[arg-type]


def test_the_snapshot_is_as_old_as_the_last_fresh_metrics(
    sample_tiers: dict[str, TierClass],
) -> None:
    stale = NOW - timedelta(minutes=20)
    snap = build_snapshot(tiers=list(sample_tiers.values()), nodes=[], pods=[],
                          observation=_observation(False), metrics_at=stale)  # fmt: skip
    assert snap.taken_at == stale


def test_a_node_under_memory_pressure_offers_no_room_even_to_its_own_replicas(
    sample_tiers: dict[str, TierClass],
) -> None:
    nodes = [_node("cpu-1", CPU_LABELS, "64Gi"), _node("cpu-2", CPU_LABELS, "64Gi")]
    pods = [_pod("cpu-1", "1Gi", model="embedder"), _pod("cpu-2", "1Gi", model="embedder")]
    observation = _observation(True, nodes={
        "cpu-1": NodeMemory(host_available_bytes=GIB),        # 1.6% of 64Gi: pressure
        "cpu-2": NodeMemory(host_available_bytes=10 * GIB),   # fine
    })  # fmt: skip
    snap = build_snapshot(tiers=list(sample_tiers.values()), nodes=nodes, pods=pods,
                          observation=observation, metrics_at=NOW)  # fmt: skip
    free = {n.name: int(n.free_memory) for n in snap.nodes or []}
    assert free == {"cpu-1": 0, "cpu-2": 10 * GIB}
    assert [p.node for p in snap.placements] == ["cpu-2"]
    flagged = _node("cpu-3", CPU_LABELS, "64Gi")
    flagged["status"]["conditions"] = [{"type": "MemoryPressure", "status": "True"}]
    snap = build_snapshot(tiers=list(sample_tiers.values()), nodes=[flagged], pods=[],
                          observation=_observation(False), metrics_at=NOW)  # fmt: skip
    assert int(snap.nodes[0].free_memory) == 0  # type: ignore[index]
