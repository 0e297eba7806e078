"""Seeded random fleets for the planner benchmark: TierClasses, nodes, models with profiles."""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any

from tierwise_operator.api import InferenceModel, Precision, Task, TierClass, TierKind
from tierwise_operator.planner import MetricsSnapshot
from tierwise_operator.planner.estimate import (
    ACCURACY_PRIOR,
    kv_bytes_per_token,
    resident_bytes,
    roofline_curve,
    weight_bytes,
)

#: Four tiers at list prices: 8xH100 nodes, single-L4 nodes, 64-core CPU nodes, NVMe nodes.
TIERS: dict[str, dict[str, Any]] = {
    "gpu-h100": {"kind": "gpu", "memoryPerNode": "80Gi", "devicesPerNode": 8, "cpuPerNode": 192,
                 "pricing": {"perNodeHour": "32.00", "perGiBHour": "0.05"}},
    "gpu-l4": {"kind": "gpu", "memoryPerNode": "24Gi", "devicesPerNode": 1, "cpuPerNode": 8,
               "pricing": {"perNodeHour": "0.80", "perGiBHour": "0.05"}},
    "cpu-large": {"kind": "cpu", "memoryPerNode": "256Gi", "cpuPerNode": 64,
                  "pricing": {"perNodeHour": "3.23", "perGiBHour": "0.004"}},
    "nvme-offload": {"kind": "offload", "memoryPerNode": "128Gi", "cpuPerNode": 32,
                     "offload": {"path": "/mnt/nvme", "readBandwidth": "3GB/s"},
                     "pricing": {"perNodeHour": "2.40", "perGiBHour": "0.002"}},
}  # fmt: skip
#: Share of the nodes each tier gets.
NODE_SHARES = {"gpu-h100": 0.15, "gpu-l4": 0.15, "cpu-large": 0.5, "nvme-offload": 0.2}


#: The node label each tier's nodeSelector names (the live-round benchmark builds Nodes).
TIER_LABEL = "bench.tierwise.dev/tier"


def tiers() -> list[TierClass]:
    return [
        TierClass.model_validate(
            {"metadata": {"name": name}, "spec": spec | {"nodeSelector": {TIER_LABEL: name}}}
        )
        for name, spec in TIERS.items()
    ]


def snapshot(
    rng: random.Random, node_count: int, now: datetime, busy: float = 0.3
) -> MetricsSnapshot:
    """`node_count` nodes over the tiers, each with up to `busy` of its room already taken."""
    nodes = [
        _node(rng, f"{name}-{i}", name, busy)
        for name, share in NODE_SHARES.items()
        for i in range(max(1, round(node_count * share)))
    ]
    return MetricsSnapshot.model_validate({"takenAt": now.isoformat(), "nodes": nodes})


def _node(rng: random.Random, name: str, tier: str, busy: float) -> dict[str, Any]:
    spec = TIERS[tier]
    memory = int(spec["memoryPerNode"].removesuffix("Gi"))
    node: dict[str, Any] = {"name": name, "tierClass": tier}
    if spec["kind"] == "gpu":
        taken = {"free": "1Gi", "allocated": True}
        devices = [
            {"free": f"{memory}Gi"} if rng.random() > busy else taken
            for _ in range(spec["devicesPerNode"])
        ]
        return node | {"freeMemory": "512Gi", "freeCpu": spec["cpuPerNode"], "devices": devices}
    return node | {
        "freeMemory": f"{int(memory * (1 - busy * rng.random()))}Gi",
        "freeCpu": int(spec["cpuPerNode"] * (1 - busy * rng.random())),
    }


def model(
    rng: random.Random, index: int, priorities: tuple[int, ...] = (0, 50, 100)
) -> InferenceModel:
    """Mostly embedders and small decoders (1,000 of them share 200 nodes), with a
    measured-looking profile: roofline figures with +-30% noise."""
    task = Task.TEXT_GENERATION if rng.random() < 0.3 else Task.TEXT_EMBEDDING
    top = 1.5e9 if task is Task.TEXT_GENERATION else 4e8
    params = int(math.exp(rng.uniform(math.log(2e7), math.log(top))))
    slos = ["100ms", "500ms", "2s"] if task is Task.TEXT_EMBEDDING else ["5s", "30s", "2m"]
    arch = "bert" if task is Task.TEXT_EMBEDDING else "llama"
    spec = {
        "model": {"task": task.value, "architecture": arch,
                  "source": {"uri": f"builtin://m{index}"}, "parameters": params},
        "accuracyBudget": {"maxDegradation": rng.choice(["0.5%", "2%", "5%"])},
        "slo": {"latencyP99": rng.choice(slos)},
        "traffic": {"targetRPS": round(math.exp(rng.uniform(math.log(0.01), math.log(20))), 3)},
        "replicas": {"min": rng.choice([0, 1, 1, 2]), "max": 32},
        "priority": rng.choice(priorities),
        "profile": _profile(rng, task, arch, params),
    }  # fmt: skip
    meta = {"name": f"m{index}", "namespace": "bench"}
    return InferenceModel.model_validate({"metadata": meta, "spec": spec})


def _profile(rng: random.Random, task: Task, arch: str, params: int) -> dict[str, Any]:
    entries = []
    for precision in Precision:
        delta = ACCURACY_PRIOR[task][precision] * rng.uniform(0.5, 1.5)
        for kind in TierKind:
            curve = roofline_curve(task, params, precision, kind, cpu_cores=4, read_bandwidth=3e9)
            noise = rng.uniform(0.7, 1.3)
            weights = weight_bytes(params, precision)
            points = [
                {"batch": int(p.batch), "p50Ms": p.p99_s * 800 * noise,
                 "p99Ms": p.p99_s * 1000 * noise, "throughput": p.throughput / noise}
                for p in curve.grid
                if p.batch in (1, 8, 32)
            ]  # fmt: skip
            entries.append({
                "precision": precision.value, "tier": kind.value, "weightBytes": weights,
                "peakMemoryBytes": resident_bytes(weights, kind),
                "kvCacheBytesPerToken": kv_bytes_per_token(task, params),
                "accuracy": {"delta": delta}, "latency": points,
            })  # fmt: skip
    profiled = {
        "uri": "builtin://x",
        "task": task.value,
        "architecture": arch,
        "parameters": params,
    }
    return {"model": profiled, "machine": {"cpu": "bench", "threads": 4}, "candidates": entries}
