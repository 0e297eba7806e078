"""The operator benchmark's core: an emulated cluster, `tierwise run` in its own process, a
fleet of InferenceModels (a few one at a time, then a burst), when each got its Deployment,
and the operator's RSS and CPU.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from operator_process import OperatorProcess, Reconciles, RssSampler
from tierwise_operator.emulator import Cluster, FakeKubelet, NodeSpec
from tierwise_operator.emulator.storage import Event

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "deploy" / "samples"
NAMESPACE = "bench"
MODEL_LABEL = "tierwise.dev/model"
MIB = 2**20

# Nodes matching the sample TierClasses (deploy/samples/tierclasses.yaml).
CPU = {"node.kubernetes.io/instance-type": "m7i.4xlarge"}
NVME = {"tierwise.dev/nvme": "true"}
GPU = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}

# all-MiniLM-L6-v2 as measured on a CPU node and an H100 (ms per batch of 1 / 32), the
# figures of tests/operator/profiles.py: every model gets this profile inline, so the
# operator plans at once and launches no profile Job.
_CPU_MS = {"fp32": (4.0, 84.0), "bf16": (3.0, 26.0), "fp16": (12.0, 330.0),
           "int8": (3.5, 63.0), "int4": (3.2, 54.0)}  # fmt: skip
_WEIGHTS_MIB = {"fp32": 90, "bf16": 45, "fp16": 45, "int8": 24, "int4": 14}
_DELTA = {"fp32": 0.0, "bf16": 0.0002, "fp16": 0.0001, "int8": 0.0004, "int4": 0.029}


def profile() -> dict[str, Any]:
    """A measured-looking profile of the sample embedder, in its wire form."""
    candidates = []
    for precision, mib in _WEIGHTS_MIB.items():
        for tier in ("gpu", "cpu", "offload"):
            ms1, ms32 = (1.0, 2.0) if tier == "gpu" else _CPU_MS[precision]
            factor = 1.3 if tier == "offload" else 1.0
            latency = [
                {"batch": batch, "p50Ms": ms * factor * 0.9, "p99Ms": ms * factor,
                 "throughput": batch * 1000 / (ms * factor)}
                for batch, ms in ((1, ms1), (32, ms32))
            ]  # fmt: skip
            candidates.append({
                "precision": precision, "tier": tier, "weightBytes": mib * MIB,
                "loadSeconds": 1.0, "peakMemoryBytes": (mib + 300) * MIB,
                "latency": latency, "accuracy": {"delta": _DELTA[precision]},
            })  # fmt: skip
    model = {"uri": "builtin://all-minilm-l6-v2", "task": "text-embedding",
             "architecture": "bert", "parameters": 22_713_216, "maxTokens": 256}  # fmt: skip
    return {"model": model, "candidates": candidates}


@functools.cache
def _sample() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SAMPLES / "ticket-embedder.yaml").read_text())
    return doc


def model_manifest(index: int, inline_profile: dict[str, Any]) -> dict[str, Any]:
    """The sample ticket-embedder, renamed, with the profile inline."""
    doc = copy.deepcopy(_sample())
    doc["metadata"] = {"name": f"embedder-{index:04d}", "namespace": NAMESPACE}
    doc["spec"]["profile"] = inline_profile
    return doc


def nodes_for(models: int, pods_per_node: int) -> list[NodeSpec]:
    """cpu-large nodes with room for every model's replica (4 cores, under 1 GiB each) and a
    quarter to spare, plus one NVMe and one GPU node so every sample TierClass has nodes."""
    count = max(1, math.ceil(models * 1.25 / pods_per_node))
    cpu = {"cpu": str(4 * pods_per_node), "memory": f"{pods_per_node}Gi",
           "pods": str(pods_per_node)}  # fmt: skip
    gpu = {"cpu": "192", "memory": "1024Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return [
        *(NodeSpec(f"cpu-{i:03d}", CPU, allocatable=cpu) for i in range(count)),
        NodeSpec("nvme-0", NVME, allocatable={"cpu": "8", "memory": "32Gi", "pods": "110"}),
        NodeSpec("gpu-0", GPU, taints=(GPU_TAINT,), allocatable=gpu),
    ]


def _condition(obj: dict[str, Any], type_: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return str(cond.get("status"))
    return None


@dataclass
class Timeline:
    """When each model was stored, got its Deployment, its first status and became Ready.

    A listener on the emulator's store: it sees every write as it happens, so the times
    are the API server's, with no polling in between. It also counts writes by kind.
    """

    namespace: str
    created: dict[str, float] = field(default_factory=dict)
    deployed: dict[str, float] = field(default_factory=dict)
    status: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)
    """Models now Ready and not Progressing."""
    writes: Counter[str] = field(default_factory=Counter)

    def __call__(self, event: Event) -> None:
        if event.namespace != self.namespace:
            return
        now = time.perf_counter()
        kind, obj = event.rtype.plural, event.object
        name = obj["metadata"]["name"]
        self.writes[kind] += 1
        if kind == "inferencemodels":
            self._model(event.type, name, obj, now)
        elif kind == "deployments" and event.type == "ADDED":
            owner = (obj["metadata"].get("labels") or {}).get(MODEL_LABEL)
            if owner is not None:
                self.deployed.setdefault(owner, now)

    def _model(self, type_: str, name: str, obj: dict[str, Any], now: float) -> None:
        if type_ == "ADDED":
            self.created.setdefault(name, now)
            return
        if (obj.get("status") or {}).get("observedGeneration") is not None:
            self.status.setdefault(name, now)
        ready = _condition(obj, "Ready") == "True"
        if ready:
            self.ready.setdefault(name, now)
        if ready and _condition(obj, "Progressing") == "False":
            self.settled.add(name)
        else:
            self.settled.discard(name)

    def latencies(self, reached: dict[str, float], names: list[str]) -> list[float]:
        """Seconds from create to `reached` of each of `names` that got there."""
        return sorted(reached[n] - self.created[n] for n in names if n in reached)


@dataclass(frozen=True)
class LoadConfig:
    models: int = 500
    probe: int = 20
    """Of the models, how many are created one at a time before the others come in a burst."""
    replan_s: float = 30.0
    window_s: float = 60.0
    """The steady window after every model settled; at least one re-plan interval."""
    deadline_s: float = 300.0
    """From the first create: models without a Deployment by then count as missing."""
    pods_per_node: int = 100
    idle_s: float = 2.0
    """Watching before the first create (the first collection, the initial lists)."""
    sample_s: float = 0.2
    log_level: str = "INFO"
    log: Path | None = None
    """Where the operator's log goes (a temporary file when None)."""


@dataclass
class Mark:
    """The operator's RSS and CPU, and the benchmark process's CPU, at one moment."""

    at: float
    rss: int
    cpu_s: float
    bench_cpu_s: float
    requests: dict[str, int] = field(default_factory=dict)
    """Resource requests the emulator had served by then, by "METHOD resource"."""


@dataclass
class Figures:
    """What one run measured; times in seconds, memory in bytes."""

    config: LoadConfig
    nodes: int
    command: str
    startup_s: float
    create_s: float
    """The burst's creates, client side."""
    probe_latencies: list[float]
    """create -> Deployment of the models created one at a time before the burst."""
    deploy_latencies: list[float]
    status_latencies: list[float]
    ready_latencies: list[float]
    missing: list[str]
    all_deployed_s: float | None
    marks: dict[str, Mark]
    """idle (before creates), reconciled (every status written), settled, end (of the window)."""
    writes: dict[str, int]
    """Writes the API server stored, by resource (it stores none that change nothing)."""
    rss_peak_sampled: int = 0
    rss_hwm: int | None = None
    reconciles: Reconciles = field(default_factory=Reconciles)
    """The operator's reconcile histogram at the end, by trigger."""
    window_reconciles: dict[str, int] = field(default_factory=dict)

    @property
    def models(self) -> int:
        return self.config.models


class Run:
    """One benchmark run: the cluster, the operator process and what the timeline saw."""

    def __init__(self, config: LoadConfig, cluster: Cluster, proc: OperatorProcess,
                 timeline: Timeline) -> None:  # fmt: skip
        self.config = config
        self.cluster = cluster
        self.proc = proc
        self.timeline = timeline
        self.marks: dict[str, Mark] = {}
        self._me = psutil.Process()

    def mark(self, name: str, rss: RssSampler) -> None:
        me = self._me.cpu_times()
        served = {f"{m} {r}": n for (m, r), n in self.cluster.emulator.served.items()}
        self.marks[name] = Mark(time.perf_counter(), rss.sample(), self.proc.cpu_seconds(),
                                me.user + me.system, served)  # fmt: skip

    async def until(self, check: Callable[[], bool], deadline: float) -> bool:
        while time.perf_counter() < deadline:
            if check():
                return True
            self.proc.check_alive()
            await asyncio.sleep(0.05)
        return check()

    async def probe(self, manifests: list[dict[str, Any]], deadline: float) -> None:
        """Create models one at a time, each once the previous one has its Deployment:
        the operator's reaction time with nothing queued."""
        for manifest in manifests:
            name = manifest["metadata"]["name"]
            await self.cluster.client.create("inferencemodels", manifest, NAMESPACE)
            await self.until(lambda n=name: n in self.timeline.deployed, deadline)

    async def burst(self, manifests: list[dict[str, Any]]) -> float:
        """Create models back to back, as fast as the API server takes them."""
        start = time.perf_counter()
        for manifest in manifests:
            await self.cluster.client.create("inferencemodels", manifest, NAMESPACE)
        return time.perf_counter() - start

    async def window(self) -> dict[str, int]:
        """Watch for the steady window; reconciles in it by trigger. It spans at least two
        re-plan intervals, so whole rounds dominate it wherever they fall."""
        before = await self.proc.reconciles()
        end = time.perf_counter() + max(self.config.window_s, 2 * self.config.replan_s)
        while time.perf_counter() < end:
            self.proc.check_alive()
            await asyncio.sleep(min(1.0, max(0.0, end - time.perf_counter())))
        after = await self.proc.reconciles()
        return {k: v - before.count.get(k, 0) for k, v in after.count.items()}

    async def measure(self) -> Figures:
        config, timeline, n = self.config, self.timeline, self.config.models
        begin = time.perf_counter()
        async with self.proc.running() as proc, RssSampler(proc, config.sample_s).running() as rss:
            startup = time.perf_counter() - begin
            await asyncio.sleep(config.idle_s)
            self.mark("idle", rss)
            inline = profile()
            manifests = [model_manifest(i, inline) for i in range(n)]
            probes, fleet = manifests[: config.probe], manifests[config.probe :]
            deadline = time.perf_counter() + config.deadline_s
            await self.probe(probes, deadline)
            first = time.perf_counter()
            create_s = await self.burst(fleet)
            reconciled = await self.until(lambda: len(timeline.status) >= n, deadline)
            self.mark("reconciled", rss)
            window: dict[str, int] = {}
            if reconciled:
                await self.until(lambda: len(timeline.settled) >= n, deadline)
                self.mark("settled", rss)
                window = await self.window()
                self.mark("end", rss)
            burst = [m["metadata"]["name"] for m in fleet]
            probed = [m["metadata"]["name"] for m in probes]
            figures = self._figures(startup, create_s, first, burst, probed)
            figures.reconciles = await proc.reconciles()
            figures.window_reconciles = window
            figures.rss_peak_sampled, figures.rss_hwm = rss.peak, proc.peak_rss()
        return figures

    def _figures(self, startup: float, create_s: float, first: float, burst: list[str],
                 probed: list[str]) -> Figures:  # fmt: skip
        timeline = self.timeline
        deployed = timeline.deployed
        missing = sorted(set(timeline.created) - set(deployed))
        last = max((deployed[b] for b in burst), default=first)
        return Figures(
            config=self.config,
            nodes=len(self.cluster.nodes),
            command=self.proc.shown(),
            startup_s=startup,
            create_s=create_s,
            probe_latencies=timeline.latencies(deployed, probed),
            deploy_latencies=timeline.latencies(deployed, burst),
            status_latencies=timeline.latencies(timeline.status, burst),
            ready_latencies=timeline.latencies(timeline.ready, burst),
            missing=missing,
            all_deployed_s=None if missing else last - first,
            marks=self.marks,
            writes=dict(timeline.writes),
        )


async def run_load(config: LoadConfig) -> Figures:
    """Start the cluster and the operator, create the fleet, watch, and return the figures."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    timeline = Timeline(NAMESPACE)
    with tempfile.TemporaryDirectory(prefix="tierwise-opbench-") as tmp:
        async with Cluster.start(
            crds=[REPO / "crds"],
            objects=[namespace, SAMPLES / "tierclasses.yaml"],
            nodes=nodes_for(config.models, config.pods_per_node),
            kubelet=FakeKubelet(delay=0.05),
        ) as cluster:
            cluster.store.listen(timeline)
            kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
            env = {"TIERWISE_REPLAN_INTERVAL": f"{config.replan_s:g}s"}
            log = config.log or Path(tmp) / "operator.log"
            proc = OperatorProcess(kubeconfig, NAMESPACE, env, log)
            proc.command += ["--log-level", config.log_level]
            return await Run(config, cluster, proc, timeline).measure()
