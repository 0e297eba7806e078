"""Turn what the cluster reports (nodes, pods, an Observation) into the planner's snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..api import Duration, Memory, TierClass, TierKind
from ..children.common import CANDIDATE_ANNOTATION, COMPONENT_LABEL, MODEL_LABEL
from ..children.serving import COMPONENT as SERVING
from ..planner import Device, MetricsSnapshot, ModelMetrics, NodeCapacity, Placement
from .kube_capacity import GPU_RESOURCE, node_capacity
from .observation import NodeMemory, Observation

Manifest = dict[str, Any]


def tier_of(node: Manifest, tiers: Sequence[TierClass]) -> TierClass | None:
    """The first TierClass (by name) whose nodeSelector the node's labels satisfy."""
    labels = node["metadata"].get("labels") or {}
    for tier in sorted(tiers, key=lambda t: t.name):
        selector = tier.spec.node_selector
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            return tier
    return None


def _cpu(value: Any) -> float:
    if value is None:
        return 0.0
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _requests(pod: Manifest) -> tuple[int, float, int]:
    memory, cpu, gpus = 0, 0.0, 0
    for container in pod["spec"].get("containers", []):
        reqs = (container.get("resources") or {}).get("requests") or {}
        memory += int(Memory.parse(reqs["memory"])) if "memory" in reqs else 0
        cpu += _cpu(reqs.get("cpu"))
        gpus += int(reqs.get(GPU_RESOURCE, 0))
    return memory, cpu, gpus


def _running(pods: Iterable[Manifest]) -> list[Manifest]:
    return [
        p
        for p in pods
        if (p.get("spec") or {}).get("nodeName")
        and (p.get("status") or {}).get("phase") not in {"Succeeded", "Failed"}
    ]


PRESSURE_FRACTION = 0.05
"""A node whose measured available memory is below this share of its allocatable memory is
under memory pressure, as is one whose MemoryPressure condition is True."""


def under_pressure(node: Manifest, measured: NodeMemory | None) -> bool:
    """Whether the kubelet is (or soon will be) evicting from this node for memory."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "MemoryPressure" and cond.get("status") == "True":
            return True
    if measured is None or measured.host_available_bytes is None:
        return False
    allocatable = ((node.get("status") or {}).get("allocatable") or {}).get("memory")
    if allocatable is None:
        return False
    return measured.host_available_bytes < PRESSURE_FRACTION * int(Memory.parse(allocatable))


def traffic_metrics(observation: Observation) -> list[ModelMetrics]:
    """Each observed model's request rate and p99, as the planner reads them."""
    return [
        ModelMetrics(
            namespace=namespace,
            name=name,
            request_rate=traffic.requests_per_second,
            latency_p99=None
            if traffic.latency_p99_seconds is None
            else Duration.of(traffic.latency_p99_seconds),
            observed_at=observation.at,
        )
        for (namespace, name), traffic in sorted(observation.traffic.items())
    ]


def build_snapshot(
    *,
    tiers: Sequence[TierClass],
    nodes: Sequence[Manifest],
    pods: Sequence[Manifest],
    observation: Observation,
    metrics_at: datetime | None,
) -> MetricsSnapshot:
    """The planner's view of free capacity, who holds what, and observed traffic.

    Free host memory is what the scheduler would grant (allocatable minus
    requests), lowered to what node_exporter measures as available when that
    is known. A node under memory pressure offers no room at all, not even
    back to the replicas already on it, so the planner moves them away. GPU
    devices are the free memory DCGM reports when known, else the
    TierClass's device size for each unrequested GPU. `metrics_at` is when
    traffic metrics were last fresh: the planner makes no tier change on data
    older than its limit, so an unavailable Prometheus freezes tiers.
    """
    running = _running(pods)
    by_tier_memory = {
        n["metadata"]["name"]: int(t.spec.memory_per_node)
        for n in nodes
        if (t := tier_of(n, tiers)) is not None and t.spec.kind is TierKind.GPU
    }
    scheduled = node_capacity(nodes, running, by_tier_memory)
    measured = observation.nodes if observation.available else {}
    capacity = []
    pressured = set()
    for node in nodes:
        tier = tier_of(node, tiers)
        if tier is None:
            continue
        name = node["metadata"]["name"]
        entry = _node(node, tier, scheduled[name], measured.get(name), running)
        if under_pressure(node, measured.get(name)):
            pressured.add(name)
            entry = entry.model_copy(update={"free_memory": Memory(0)})
        capacity.append(entry)
    models = traffic_metrics(observation) if observation.available else []
    return MetricsSnapshot(
        taken_at=metrics_at or observation.at,
        nodes=capacity,
        models=models,
        placements=_placements(
            [p for p in running if p["spec"]["nodeName"] not in pressured], tiers, nodes,
            allocated={n.name: [i for i, d in enumerate(n.devices) if d.allocated]
                       for n in capacity},
        ),
    )  # fmt: skip


def _node(
    node: Manifest,
    tier: TierClass,
    scheduled: NodeMemory,
    measured: NodeMemory | None,
    running: Sequence[Manifest],
) -> NodeCapacity:
    name = node["metadata"]["name"]
    free = scheduled.host_available_bytes or 0
    if measured is not None and measured.host_available_bytes is not None:
        free = min(free, measured.host_available_bytes)
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    cpu_free = None
    if "cpu" in allocatable:
        used = sum(_requests(p)[1] for p in running if p["spec"].get("nodeName") == name)
        cpu_free = max(0.0, _cpu(allocatable["cpu"]) - used)
    devices: list[Device] = []
    if tier.spec.kind is TierKind.GPU:
        devices = _devices(node, tier, measured, running)
    return NodeCapacity(
        name=name, tier_class=tier.name, free_memory=Memory(free), free_cpu=cpu_free,
        devices=devices,
    )  # fmt: skip


def _devices(
    node: Manifest, tier: TierClass, measured: NodeMemory | None, running: Sequence[Manifest]
) -> list[Device]:
    name = node["metadata"]["name"]
    total = int(((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, 0))
    held = sum(_requests(p)[2] for p in running if p["spec"].get("nodeName") == name)
    if measured is not None and measured.gpu_free_bytes:
        # The devices with the least free memory are the ones pods hold.
        order = sorted(
            range(len(measured.gpu_free_bytes)), key=lambda i: measured.gpu_free_bytes[i]
        )
        taken = set(order[:held])
        return [
            Device(free=Memory(free), allocated=i in taken)
            for i, free in enumerate(measured.gpu_free_bytes)
        ]
    size = int(tier.spec.memory_per_node)
    count = total or tier.spec.devices_per_node
    return [Device(free=Memory(0 if i < held else size), allocated=i < held) for i in range(count)]


def _placements(
    running: Sequence[Manifest],
    tiers: Sequence[TierClass],
    nodes: Sequence[Manifest],
    allocated: dict[str, list[int]],
) -> list[Placement]:
    """What the replicas of tierwise models hold now, so a re-plan can count it as free.

    The API does not say which device a pod holds, only how many are allocated; since a
    replica holds a whole device, each GPU replica is given one of its node's allocated
    devices (in pod-name order), which is all a re-plan needs to count that device as its own.
    """
    node_tiers = {n["metadata"]["name"]: tier_of(n, tiers) for n in nodes}
    devices = {name: list(indices) for name, indices in allocated.items()}
    out = []
    for pod in sorted(running, key=lambda p: p["metadata"].get("name", "")):
        labels = pod["metadata"].get("labels") or {}
        model = labels.get(MODEL_LABEL)
        node = pod["spec"]["nodeName"]
        tier = node_tiers.get(node)
        if not model or labels.get(COMPONENT_LABEL) != SERVING or tier is None:
            continue  # profile Jobs come and go; only serving replicas hold room
        memory, cpu, gpus = _requests(pod)
        device = None
        if tier.spec.kind is TierKind.GPU and gpus:
            memory = int(tier.spec.memory_per_node)  # a replica holds its whole device
            free = devices.get(node) or []
            device = free.pop(0) if free else None
        key = f"{pod['metadata'].get('namespace') or 'default'}/{model}"
        candidate = (pod["metadata"].get("annotations") or {}).get(CANDIDATE_ANNOTATION)
        out.append(
            Placement(model=key, node=node, memory=Memory(memory), cpu=cpu, device=device,
                      candidate=candidate)
        )  # fmt: skip
    return out
