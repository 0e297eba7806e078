"""Builders for planner tests: TierClasses, InferenceModels and profiles from a few numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tierwise_operator.api import InferenceModel, ModelProfile, TierClass
from tierwise_operator.manifests import load_resources
from tierwise_operator.planner import MetricsSnapshot, Plan

from ..conftest import SAMPLES

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
GiB = 2**30


def later(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def tier(
    name: str,
    kind: str = "cpu",
    *,
    memory: str = "64Gi",
    price: str = "1.00",
    per_gib: str = "0",
    devices: int = 1,
    cpu: float | None = 16,
) -> TierClass:
    spec: dict[str, Any] = {
        "kind": kind,
        "memoryPerNode": memory,
        "devicesPerNode": devices,
        "pricing": {"perNodeHour": price, "perGiBHour": per_gib},
    }
    if cpu is not None:
        spec["cpuPerNode"] = cpu
    if kind == "offload":
        spec["offload"] = {"path": "/mnt/nvme", "readBandwidth": "3GB/s"}
    return TierClass.model_validate({"metadata": {"name": name}, "spec": spec})


def point(batch: int, p99_ms: float, throughput: float) -> dict[str, Any]:
    return {"batch": batch, "p50Ms": p99_ms * 0.8, "p99Ms": p99_ms, "throughput": throughput}


def entry(
    precision: str,
    tier_kind: str,
    weight_gib: float,
    delta: float,
    points: list[dict[str, Any]],
    *,
    variant: str = "primary",
    peak_gib: float | None = None,
    kv_per_token: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "variant": variant,
        "precision": precision,
        "tier": tier_kind,
        "weightBytes": int(weight_gib * GiB),
        "peakMemoryBytes": int((peak_gib if peak_gib is not None else weight_gib + 0.5) * GiB),
        "latency": points,
        "accuracy": {"delta": delta},
    }
    if kv_per_token is not None:
        out["kvCacheBytesPerToken"] = kv_per_token
    return out


def profile(*entries: dict[str, Any], threads: int = 4, task: str = "text-embedding") -> dict:
    arch = "bert" if task == "text-embedding" else "llama"
    return {
        "model": {"uri": "builtin://x", "task": task, "architecture": arch, "parameters": 10**8},
        "machine": {"cpu": "test", "threads": threads},
        "candidates": list(entries),
    }


def model(
    name: str = "m",
    *,
    task: str = "text-embedding",
    parameters: int | None = 100_000_000,
    budget: str = "2%",
    slo: str | None = "100ms",
    rps: float | None = 10,
    headroom: str = "0%",
    precisions: list[str] | None = None,
    tiers: list[str] | None = None,
    replicas: tuple[int, int] = (1, 8),
    priority: int = 0,
    prof: dict[str, Any] | None = None,
    variants: list[dict[str, Any]] | None = None,
    namespace: str = "default",
) -> InferenceModel:
    arch = "bert" if task == "text-embedding" else "llama"
    spec: dict[str, Any] = {
        "model": {"task": task, "architecture": arch, "source": {"uri": "builtin://x"}},
        "accuracyBudget": {"maxDegradation": budget},
        "slo": {"latencyP99": slo} if slo else {},
        "traffic": {"headroom": headroom, **({"targetRPS": rps} if rps is not None else {})},
        "replicas": {"min": replicas[0], "max": replicas[1]},
        "priority": priority,
    }
    if parameters:
        spec["model"]["parameters"] = parameters
    if variants:
        spec["model"]["variants"] = variants
    if precisions:
        spec["precisions"] = precisions
    if tiers:
        spec["tierClasses"] = tiers
    if prof:
        spec["profile"] = ModelProfile.model_validate(prof).to_wire()
    meta = {"name": name, "namespace": namespace}
    return InferenceModel.model_validate({"metadata": meta, "spec": spec})


#: A small embedder measured on every tier kind: GPU fast but dear, CPU cheap, offload slow.
EMBEDDER_PROFILE = profile(
    entry("fp32", "gpu", 0.4, 0.0, [point(1, 4, 400), point(32, 12, 4000)]),
    entry("fp16", "gpu", 0.2, 0.0002, [point(1, 3, 500), point(32, 8, 6000)]),
    entry("int8", "gpu", 0.1, 0.004, [point(1, 4, 400), point(32, 10, 4500)]),
    entry("int4", "gpu", 0.06, 0.029, [point(1, 4, 400), point(32, 10, 4500)]),
    entry("fp32", "cpu", 0.4, 0.0, [point(1, 20, 60), point(8, 60, 160), point(32, 200, 190)]),
    entry("fp16", "cpu", 0.2, 0.0002, [point(1, 60, 20), point(8, 200, 50)]),
    entry("int8", "cpu", 0.1, 0.004, [point(1, 12, 100), point(8, 40, 250), point(32, 150, 280)]),
    entry("int4", "cpu", 0.06, 0.029, [point(1, 14, 90), point(8, 45, 220)]),
    entry("int8", "offload", 0.1, 0.004, [point(1, 40, 25), point(8, 120, 70)], peak_gib=0.45),
)

#: Model keyword arguments for that embedder: the precisions it was measured at.
EMBEDDER: dict[str, Any] = {
    "prof": EMBEDDER_PROFILE,
    "precisions": ["fp32", "fp16", "int8", "int4"],
}


@pytest.fixture
def sample_tiers() -> list[TierClass]:
    """The committed sample TierClasses: H100s at 32/h for 8, m7i.4xlarge, NVMe nodes."""
    _, tiers = load_resources([Path(SAMPLES / "tierclasses.yaml")])
    return tiers


@pytest.fixture
def three_tiers() -> list[TierClass]:
    return [
        tier("gpu", "gpu", memory="80Gi", price="32.00", per_gib="0.05", devices=8, cpu=192),
        tier("cpu", "cpu", memory="64Gi", price="0.81", per_gib="0.004", cpu=16),
        tier("nvme", "offload", memory="32Gi", price="0.60", per_gib="0.002", cpu=8),
    ]


def running(m: InferenceModel, plan: Plan) -> InferenceModel:
    """The model as the operator leaves it after applying `plan`: its status written back."""
    return InferenceModel.model_validate({**m.to_wire(), "status": plan.status_fields()})


def metrics(rps: float, at: datetime = NOW, p99: str | None = None, name: str = "m") -> dict:
    """One model's metrics entry for a snapshot."""
    entry: dict[str, Any] = {"name": name, "requestRate": rps, "observedAt": at.isoformat()}
    if p99:
        entry["latencyP99"] = p99
    return entry


def snapshot(*models: dict, at: datetime = NOW, nodes: list | None = None) -> MetricsSnapshot:
    return MetricsSnapshot.model_validate(
        {"takenAt": at.isoformat(), "models": list(models), "nodes": nodes}
    )
