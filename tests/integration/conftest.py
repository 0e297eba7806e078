"""The real operator (kopf) against the API emulator and a real Prometheus on 127.0.0.1.

A fleet of four nodes — two cpu-large, one nvme-offload, one 8-GPU node —
whose memory the test sets through node_exporter and DCGM series that
Prometheus scrapes from an endpoint the test controls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest
import yaml
from prometheus_api_client import PrometheusConnect

from tierwise_operator.api import ModelProfile, Precision, TierKind
from tierwise_operator.api.profile_codec import encode
from tierwise_operator.emulator import Cluster, FakeKubelet
from tierwise_operator.emulator.controllers.nodes import NodeSpec
from tierwise_operator.emulator.kopfrun import run_operator
from tierwise_operator.emulator.kubelet import Behaviour, Exit, OOMKill
from tierwise_operator.local.prometheus_server import PrometheusServer, ScrapeTarget
from tierwise_operator.observability import OperatorMetrics
from tierwise_operator.runner import registry_for
from tierwise_operator.settings import Settings

from ..conftest import REPO, SAMPLES
from ..operator.metrics_endpoint import MetricsEndpoint
from ..operator.profiles import embedder_profile

GIB = 2**30
NAMESPACE = "support"
PEERING = REPO / "deploy" / "components" / "peering"
CPU = {"node.kubernetes.io/instance-type": "m7i.4xlarge"}
NVME = {"tierwise.dev/nvme": "true"}
GPU = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}

NODES = (
    NodeSpec("cpu-1", CPU, allocatable={"cpu": "16", "memory": "64Gi", "pods": "110"}),
    NodeSpec("cpu-2", CPU, allocatable={"cpu": "16", "memory": "64Gi", "pods": "110"}),
    NodeSpec("nvme-1", NVME, allocatable={"cpu": "8", "memory": "32Gi", "pods": "110"}),
    NodeSpec("gpu-1", GPU, taints=(GPU_TAINT,),
             allocatable={"cpu": "192", "memory": "1024Gi", "pods": "110", "nvidia.com/gpu": "8"}),
)  # fmt: skip


def profile_for(device: str) -> ModelProfile:
    """What the profile Job on `device` measures: gpu candidates on cuda, the rest on cpu."""
    profile = embedder_profile()
    tiers = {TierKind.GPU} if device == "cuda" else {TierKind.CPU, TierKind.OFFLOAD}
    return profile.model_copy(update={"candidates": [c for c in profile.candidates
                                                     if c.tier in tiers]})  # fmt: skip


@dataclass
class Fleet:
    """What the node exporters report; `exposition()` renders it for Prometheus."""

    host_available: dict[str, int] = field(
        default_factory=lambda: {"cpu-1": 60 * GIB, "cpu-2": 60 * GIB, "nvme-1": 30 * GIB}
    )
    gpu_free_mib: list[int] = field(default_factory=lambda: [81_000] * 8)

    def exposition(self) -> str:
        lines = ["# TYPE node_memory_MemAvailable_bytes gauge"]
        lines += [f'node_memory_MemAvailable_bytes{{node="{n}"}} {v}'
                  for n, v in self.host_available.items()]  # fmt: skip
        lines += ["# TYPE DCGM_FI_DEV_FB_FREE gauge"]
        lines += [f'DCGM_FI_DEV_FB_FREE{{gpu="{i}",Hostname="gpu-1"}} {v}'
                  for i, v in enumerate(self.gpu_free_mib)]  # fmt: skip
        lines += ["# TYPE DCGM_FI_DEV_FB_USED gauge"]
        lines += [f'DCGM_FI_DEV_FB_USED{{gpu="{i}",Hostname="gpu-1"}} {81_920 - v}'
                  for i, v in enumerate(self.gpu_free_mib)]  # fmt: skip
        return "\n".join(lines) + "\n"


@dataclass
class Behaviours:
    """What the fake kubelet makes of each pod; tests change it while the operator runs."""

    oom_candidates: set[str] = field(default_factory=set)
    oom_first_served: bool = False
    """OOM-kill whichever candidate the model is first served on (and only that one)."""
    profile_failure: str | None = None

    def __call__(self, pod: dict[str, Any]) -> Behaviour | None:
        labels = pod["metadata"].get("labels") or {}
        device = labels.get("tierwise.dev/profile-device")
        if device is not None:
            if self.profile_failure:
                return Exit(code=1, message=self.profile_failure, after=0.1)
            return Exit(message=encode(profile_for(device)), after=0.2)
        candidate = (pod["metadata"].get("annotations") or {}).get("tierwise.dev/candidate")
        if candidate is not None and self.oom_first_served and not self.oom_candidates:
            self.oom_candidates.add(candidate)
        if candidate in self.oom_candidates:
            return OOMKill(after=0.2, message="memory limit exceeded")
        return None


@dataclass
class Env:
    cluster: Cluster
    fleet: Fleet
    endpoint: MetricsEndpoint
    prometheus: PrometheusServer
    behaviours: Behaviours
    settings: Settings
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    """The metrics of the operator last started with `operator()`."""

    async def publish(self) -> None:
        """Serve the fleet's figures and wait until Prometheus has scraped them."""
        self.endpoint.text = self.fleet.exposition()
        want = {n: float(v) for n, v in self.fleet.host_available.items()}

        async def scraped() -> bool:
            samples = await asyncio.to_thread(
                PrometheusConnect(self.prometheus.url).custom_query,
                "node_memory_MemAvailable_bytes",
            )
            seen = {s["metric"]["node"]: float(s["value"][1]) for s in samples}
            return seen == want

        await eventually(scraped, timeout=15)

    async def model(self, name: str) -> dict[str, Any]:
        return await self.cluster.client.get("inferencemodels", name, NAMESPACE)

    async def wait_model(self, name: str, predicate: Callable[[dict[str, Any]], bool],
                         timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        return await self.cluster.client.wait_for("inferencemodels", name, predicate, NAMESPACE,
                                                  timeout=timeout)  # fmt: skip

    async def events(self, name: str) -> list[dict[str, Any]]:
        events = await self.cluster.client.list("events", NAMESPACE)
        return [e for e in events if e.get("involvedObject", {}).get("name") == name]

    async def event(self, name: str, reason: str, contains: str = "") -> dict[str, Any]:
        """The first Event on `name` with `reason` (and `contains` in its message), waited for:
        an Event is posted just after the status that records its change."""

        async def find() -> dict[str, Any] | None:
            for event in await self.events(name):
                if event["reason"] == reason and contains in event.get("message", ""):
                    return event
            return None

        found: dict[str, Any] = await eventually(find, timeout=10)
        return found

    @contextlib.asynccontextmanager
    async def operator(self) -> AsyncIterator[None]:
        self.metrics = OperatorMetrics()
        registry = registry_for(
            self.settings, server=self.cluster.url, login=False, metrics=self.metrics
        )
        async with run_operator(self.cluster.url, registry=registry, memo=kopf.Memo()):
            yield


def embedder(name: str | None = None) -> dict[str, Any]:
    """The sample ticket-embedder in the test namespace (under `name` if given)."""
    doc: dict[str, Any] = yaml.safe_load((SAMPLES / "ticket-embedder.yaml").read_text())
    doc["metadata"]["namespace"] = NAMESPACE
    if name is not None:
        doc["metadata"]["name"] = name
    return doc


def condition(model: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in (model.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


@pytest.fixture(scope="module")
def live_metrics() -> Iterator[tuple[MetricsEndpoint, PrometheusServer]]:
    with MetricsEndpoint() as endpoint:
        endpoint.text = Fleet().exposition()
        with PrometheusServer([ScrapeTarget(endpoint.address)], scrape_interval="1s") as prom:
            prom.wait_for_targets()
            yield endpoint, prom


@pytest.fixture
async def env(live_metrics: tuple[MetricsEndpoint, PrometheusServer]) -> AsyncIterator[Env]:
    endpoint, prom = live_metrics
    fleet = Fleet()
    endpoint.text = fleet.exposition()
    behaviours = Behaviours()
    settings = Settings.from_env({
        "TIERWISE_PROMETHEUS_URL": prom.url,
        "TIERWISE_REPLAN_INTERVAL": "1s",
        "TIERWISE_METRICS_WINDOW": "10s",
        "TIERWISE_TIER_DWELL": "0s",
        "TIERWISE_SCALE_DOWN_STABILIZATION": "0s",
    })  # fmt: skip
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    async with Cluster.start(
        crds=[REPO / "crds", PEERING / "peering-crd.yaml"],
        objects=[namespace, SAMPLES / "tierclasses.yaml", PEERING / "peering.yaml"],
        nodes=NODES,
        kubelet=FakeKubelet(delay=0.05, decide=behaviours),
    ) as cluster:
        yield Env(cluster, fleet, endpoint, prom, behaviours, settings)


async def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Await `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise TimeoutError(f"never became true; last: {last!r}")


__all__ = ["GIB", "NAMESPACE", "Env", "Precision", "condition", "embedder", "eventually"]
