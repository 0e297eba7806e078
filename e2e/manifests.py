"""The objects the e2e tests create: the samples, adapted to whatever nodes the cluster has.

Real clusters have no m7i or H100 nodes, so the test TierClass is the sample
`cpu-large` selecting a node the suite labels, sized from that node's
allocatable resources. Models carry an inline `spec.profile` (cpu candidates
only), so the operator plans at once and no profile Job needs the runtime image.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tierwise_operator.api import (
    AccuracyMeasure,
    Architecture,
    CandidateProfile,
    LatencyPoint,
    MachineInfo,
    ModelProfile,
    Precision,
    ProfiledModel,
    Task,
    TierKind,
)

Manifest = dict[str, Any]

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "deploy" / "samples"
INVALID_SAMPLES = SAMPLES / "invalid"
CRDS = REPO / "crds"
TIER_LABEL = "tierwise.dev/e2e-tier"
MODEL_LABEL = "tierwise.dev/model"
PART_OF = {"app.kubernetes.io/part-of": "tierwise-e2e"}
"""Marks what a run creates, so a killed run's leftovers can be found by label."""
MIB = 2**20

# all-MiniLM-L6-v2 on CPU: (p99 ms at batch 1, at batch 32, accuracy delta vs fp32).
# Peak memory is generous: with the runtime image present these pods really run,
# and the memory limit equals the planned request. Measured on one thread, so each
# replica requests one core (without a machine the planner assumes four, more than
# a laptop's kind node has free).
_CPU_FIGURES = {
    Precision.FP32: (4.0, 84.0, 0.0),
    Precision.BF16: (3.0, 26.0, 0.0002),
    Precision.INT8: (3.5, 63.0, 0.0004),
}
_WEIGHTS_MIB = {Precision.FP32: 90, Precision.BF16: 45, Precision.INT8: 24}
_PEAK_MIB = 900


def sample(path: Path, kind: str, name: str) -> Manifest:
    """One document of a sample file, by kind and name."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return dict(doc)
    raise LookupError(f"{path} has no {kind} {name}")


def yaml_documents(path: Path) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def tier_class(name: str, label_value: str, node: Manifest) -> Manifest:
    """The sample cpu-large TierClass, selecting the labelled node and sized like it."""
    doc = copy.deepcopy(sample(SAMPLES / "tierclasses.yaml", "TierClass", "cpu-large"))
    allocatable = node["status"]["allocatable"]
    doc["metadata"] = {"name": name, "labels": dict(PART_OF)}
    doc["spec"]["nodeSelector"] = {TIER_LABEL: label_value}
    doc["spec"]["memoryPerNode"] = allocatable["memory"]
    doc["spec"]["cpuPerNode"] = cores(allocatable.get("cpu", "1"))
    return doc


def cores(quantity: str) -> float:
    """A CPU quantity ("8", "7800m") in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def cpu_profile() -> Manifest:
    """A measured-looking profile of all-MiniLM-L6-v2 on CPU, in its manifest form."""
    candidates = [
        CandidateProfile(
            precision=precision,
            tier=TierKind.CPU,
            weight_bytes=_WEIGHTS_MIB[precision] * MIB,
            load_seconds=2.0,
            peak_memory_bytes=_PEAK_MIB * MIB,
            latency=[
                LatencyPoint(batch=1, p50_ms=ms1 * 0.9, p99_ms=ms1, throughput=1000 / ms1),
                LatencyPoint(batch=32, p50_ms=ms32 * 0.9, p99_ms=ms32, throughput=32000 / ms32),
            ],
            accuracy=AccuracyMeasure(delta=delta),
        )
        for precision, (ms1, ms32, delta) in _CPU_FIGURES.items()
    ]
    profile = ModelProfile(
        machine=MachineInfo(cpu="e2e reference", threads=1),
        model=ProfiledModel(
            uri="builtin://all-minilm-l6-v2",
            task=Task.TEXT_EMBEDDING,
            architecture=Architecture.BERT,
            parameters=22_713_216,
            max_tokens=256,
        ),
        candidates=candidates,
    )
    return profile.to_wire()


def inference_model(
    name: str, namespace: str, tier: str, *, replicas: int | None = None, profile: bool = True
) -> Manifest:
    """The sample ticket-embedder, limited to the test tier, with an inline profile."""
    doc = copy.deepcopy(
        sample(SAMPLES / "ticket-embedder.yaml", "InferenceModel", "ticket-embedder")
    )
    doc["metadata"] = {"name": name, "namespace": namespace}
    spec = doc["spec"]
    spec["tierClasses"] = [tier]
    spec["precisions"] = [str(p) for p in _CPU_FIGURES]
    if replicas is not None:
        spec["replicas"] = {"min": replicas, "max": replicas}
    if profile:
        spec["profile"] = cpu_profile()
    return doc


def with_reserved_variant_name(model: Manifest) -> Manifest:
    """A spec the CRD schema accepts but the operator's models refuse: `primary` is reserved."""
    doc = copy.deepcopy(model)
    doc["spec"]["model"]["variants"] = [
        {"name": "primary", "source": {"uri": "builtin://all-minilm-l6-v2"}}
    ]
    doc["spec"].pop("profile", None)
    return doc
