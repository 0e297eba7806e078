"""`tierwise dev`: the whole loop on one machine, with the bundled model and real processes.

An API emulator in-process (kubectl works against it), the real operator,
runtime pods as local processes, a node exporter reporting this machine's
memory, and Prometheus when installed. The demo applies the samples, waits
for the profile, prints the plan, serves real requests, then simulates memory
pressure and a traffic rise and shows the re-plans while requests keep flowing,
then wakes a second model from zero replicas with one request. Every request goes
through the gateway (`tierwise gateway`, in-process), as clients would in a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import kopf
import yaml

from ..emulator import Cluster
from ..emulator.controllers.nodes import NodeSpec
from ..emulator.kopfrun import run_operator
from ..gateway.run import GatewayOptions, running
from ..metrics.direct import DirectSource
from ..runner import registry_for
from ..settings import Settings
from .display import condition, model_table, ready_replicas
from .loadgen import LoadStats, run_load
from .node_exporter import NodeExporter, mem_available
from .process_kubelet import ProcessKubelet
from .prometheus_server import PrometheusServer, ScrapeTarget
from .wake_demo import wake_from_zero

NAMESPACE = "default"
APPLY_ORDER = ("TierClass", "ConfigMap", "InferenceModel")
TRAFFIC_RISE = 150
"""Requests/s the demo's traffic step plans for: enough for a second replica, few enough
for a laptop's cores to run them all."""
MODEL = "ticket-embedder"
DEV_SETTINGS = {
    "TIERWISE_REPLAN_INTERVAL": "2s",
    "TIERWISE_METRICS_WINDOW": "20s",
    # Moves that fix a broken constraint (memory pressure) happen at once; moves that
    # only save money wait, as in production, so the demo shows no flapping.
    "TIERWISE_TIER_DWELL": "10m",
    "TIERWISE_SCALE_DOWN_STABILIZATION": "60s",
    # Local mode trades the precision of the figures for a profile in about a minute.
    "TIERWISE_PROFILE_ARGS": "--eval-limit 32 --repeats 30 --warmup 2 --time-budget 1 "
    "--batch-sizes 1,8",
}


async def run_until_signalled(main: Coroutine[Any, Any, int]) -> int:
    """Run `main`; Ctrl-C or SIGTERM cancels it, so every `async with` below cleans up."""
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        print("\nstopped: emulator, operator, runtimes and Prometheus are down", file=sys.stderr)
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _meminfo_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{line.split()[1]}Ki"
    return "16Gi"


def local_nodes() -> tuple[NodeSpec, ...]:
    """This machine as one node of each local tier (they share its memory and cores)."""
    memory = _meminfo_total()
    cpu = {"node.kubernetes.io/instance-type": "m7i.4xlarge"}
    nvme = {"tierwise.dev/nvme": "true"}
    return (
        NodeSpec("local-cpu", cpu, allocatable={"cpu": "16", "memory": memory, "pods": "110"}),
        NodeSpec("local-nvme", nvme, allocatable={"cpu": "8", "memory": memory, "pods": "110"}),
    )


@dataclass
class DevOptions:
    workdir: Path
    samples: Path
    crds: Path
    port: int | None = None
    once: bool = False
    prometheus: bool = True
    out: TextIO = sys.stdout


class Dev:
    """One local-mode session; `run()` is the whole demo."""

    def __init__(self, options: DevOptions) -> None:
        self.opts = options
        self.nodes = local_nodes()
        self.kubelet = ProcessKubelet(options.workdir)
        self.exporter = NodeExporter([n.name for n in self.nodes])
        self.prometheus: PrometheusServer | None = None
        self.cluster: Cluster | None = None
        self.gateway = ""

    def say(self, text: str = "") -> None:
        print(text, file=self.opts.out, flush=True)

    def step(self, number: int, text: str) -> None:
        self.say(f"\n== {number}. {text}")

    # -- setting up -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _prometheus(self) -> AsyncIterator[PrometheusServer | None]:
        if not self.opts.prometheus or shutil.which("prometheus") is None:
            self.say(
                "prometheus: not installed; the operator reads the runtimes' /metrics directly"
            )
            yield None
            return
        server = PrometheusServer(
            [ScrapeTarget(self.exporter.address, job="node")],
            scrape_interval="1s",
            file_sd_job="tierwise-runtime",
        )
        server.start()
        try:
            await asyncio.to_thread(server.wait_for_targets)
            self.say(f"prometheus: {server.url} (scraping the node exporter and runtime pods)")
            yield server
        finally:
            server.stop()

    def _targets(self) -> list[tuple[tuple[str, str], str]]:
        out = []
        for url in self.kubelet.ready_endpoints(NAMESPACE, MODEL):
            out.append(((NAMESPACE, MODEL), url))
        return out

    async def _publish_targets(self) -> None:
        """Keep Prometheus' file-discovered targets equal to the ready runtime pods."""
        while self.prometheus is not None:
            labels = {"namespace": NAMESPACE, "tierwise_dev_model": MODEL}
            targets = [
                ScrapeTarget(url.removeprefix("http://"), labels) for _, url in self._targets()
            ]
            self.prometheus.set_file_targets(targets)
            await asyncio.sleep(1)

    def _settings(self) -> Settings:
        env = dict(DEV_SETTINGS)
        if self.prometheus is not None:
            env["TIERWISE_PROMETHEUS_URL"] = self.prometheus.url
        return Settings.from_env(env)

    # -- the demo ---------------------------------------------------------------

    async def run(self) -> int:
        self.opts.workdir.mkdir(parents=True, exist_ok=True)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.exporter.serving())
            self.prometheus = await stack.enter_async_context(self._prometheus())
            publisher = asyncio.create_task(self._publish_targets())
            stack.callback(publisher.cancel)
            cluster = await stack.enter_async_context(
                Cluster.start(
                    crds=[self.opts.crds],
                    nodes=self.nodes,
                    kubelet=self.kubelet,
                    port=self.opts.port,
                )
            )
            self.cluster = cluster
            kubeconfig = cluster.write_kubeconfig(self.opts.workdir / "kubeconfig")
            self.say(f"api: {cluster.url} (kubectl --kubeconfig {kubeconfig} get im)")
            source = None
            if self.prometheus is None:
                source = DirectSource(self._targets, self.exporter.address)
            registry = registry_for(
                self._settings(), server=cluster.url, login=False, source=source
            )
            await stack.enter_async_context(
                run_operator(cluster.url, registry=registry, memo=kopf.Memo())
            )
            self.say("operator: running (re-plans every 2s)")
            gateway = await stack.enter_async_context(
                running(GatewayOptions(host="127.0.0.1", port=0, server=cluster.url))
            )
            self.gateway = gateway.url
            self.say(f"gateway: {gateway.url}/v1 (every request below goes through it)")
            failed = await self.demo()
            self.step(7, "Still running: try kubectl against the emulator")
            self.say(f"  export KUBECONFIG={kubeconfig}")
            self.say("  kubectl get inferencemodels -o wide; kubectl describe im ticket-embedder")
            if not self.opts.once:
                self.say("  (Ctrl-C stops everything)")
                await asyncio.Event().wait()
        return 1 if failed else 0

    async def demo(self) -> int:
        await self.apply_samples()
        model = await self.wait_profiled()
        self.show_plan(model)
        if condition(model, "Ready").get("reason") == "NoFeasiblePlan":
            self.say(
                "\n  No plan meets the sample's SLO with the figures measured on this machine"
                " (a busy machine measures slow p99s). Stopping the demo here."
            )
            return 1
        await self.serve_requests()
        failed = await self.simulate_changes()
        assert self.cluster is not None
        self.step(6, "Wake from zero: a model at zero replicas, woken by its first request")
        return failed + await wake_from_zero(self.cluster, self.gateway, model, self.say)

    async def apply_samples(self) -> None:
        assert self.cluster is not None
        self.step(1, f"Applying the samples from {self.opts.samples}")
        docs = [
            doc
            for path in sorted(self.opts.samples.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if doc and doc.get("kind") in APPLY_ORDER
        ]
        # The tiers first, as kubectl apply -f on a directory in order would not guarantee.
        for doc in sorted(docs, key=lambda d: APPLY_ORDER.index(d["kind"])):
            if doc["kind"] == "InferenceModel" and doc["metadata"]["name"] != MODEL:
                continue  # the summarizer's profile would take too long on a laptop
            await self.cluster.client.create(self._resource(doc), doc, NAMESPACE)
            self.say(f"  created {doc['kind']}/{doc['metadata']['name']}")

    @staticmethod
    def _resource(doc: dict[str, Any]) -> str:
        return {
            "TierClass": "tierclasses",
            "InferenceModel": "inferencemodels",
            "ConfigMap": "configmaps",
        }[doc["kind"]]

    async def model(self) -> dict[str, Any]:
        assert self.cluster is not None
        return await self.cluster.client.get("inferencemodels", MODEL, NAMESPACE)

    async def until(
        self,
        check: Callable[[dict[str, Any]], bool],
        timeout: float,
        tick: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            model = await self.model()
            if check(model):
                return model
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{MODEL} did not get there in {timeout:.0f}s: "
                    f"{model.get('status', {}).get('conditions')}"
                )
            if tick is not None:
                await tick(model)
            await asyncio.sleep(1)

    async def wait_profiled(self) -> dict[str, Any]:
        self.step(2, "Profiling all-MiniLM-L6-v2 at every precision on the cpu and offload tiers")
        said: set[str] = set()

        async def progress(model: dict[str, Any]) -> None:
            lines = [condition(model, "Profiled").get("message", "")]
            log = self.kubelet.log_of(NAMESPACE, f"{MODEL}-profile-cpu")
            if log is not None and log.exists():
                text = log.read_text(errors="replace")
                lines += [x for x in text.splitlines() if x.startswith("[")]
            for line in lines:
                if line and line not in said:
                    said.add(line)
                    self.say(f"  {line[:150]}")

        def settled(model: dict[str, Any]) -> bool:
            profiled = condition(model, "Profiled").get("status") == "True"
            infeasible = condition(model, "Ready").get("reason") == "NoFeasiblePlan"
            return profiled and (ready_replicas(model) > 0 or infeasible)

        model = await self.until(settled, timeout=900, tick=progress)
        await progress(model)  # the last lines, which may have arrived with the settled state
        return model

    def show_plan(self, model: dict[str, Any]) -> None:
        self.step(3, "The plan (kubectl get inferencemodels)")
        self.say(model_table([model]))
        decision = model["status"]["decision"]
        self.say(f"\n  decision: {decision['reason']}")
        for rejected in decision.get("rejected", [])[:6]:
            self.say(f"    {rejected['candidate']:<22} {rejected['why']}")
        more = len(decision.get("rejected", [])) - 6
        if more > 0:
            self.say(f"    ... and {more} more (kubectl get im {MODEL} -o yaml)")

    async def serve_requests(self) -> None:
        self.step(4, "Serving real requests on localhost")
        stats = LoadStats()
        stop = asyncio.Event()
        task = asyncio.create_task(run_load(self._endpoints, MODEL, 20.0, stop, stats, attempts=1))
        await asyncio.sleep(5)
        stop.set()
        await task
        self.say(f"  {self.gateway}/v1/embeddings: {stats.summary()}")

    def _endpoints(self) -> list[str]:
        """The demo's requests go through the gateway, which finds the ready replicas."""
        return [self.gateway]

    async def simulate_changes(self) -> int:
        assert self.cluster is not None
        self.step(5, "Memory pressure, then a traffic rise, with requests flowing throughout")
        stats, stop = LoadStats(), asyncio.Event()
        load = asyncio.create_task(run_load(self._endpoints, MODEL, 10.0, stop, stats, attempts=1))
        before = (await self.model())["status"]
        node = await self._node_of_model()
        self.exporter.pressure[node] = mem_available() - 64 * 2**20
        self.say(
            f"  {node}: available memory squeezed to ~64 MiB (pressure); "
            f"{MODEL} runs there on {before['tierClass']}"
        )
        moved = await self.until(
            lambda m: (
                m["status"].get("tierClass") != before["tierClass"]
                and condition(m, "Progressing").get("status") == "False"
                and ready_replicas(m) >= m["status"].get("replicas", 1)
            ),
            timeout=300,
        )
        await self._show_events("re-tier")
        self.say(model_table([moved]))
        self.exporter.pressure.clear()
        await self.cluster.client.patch(
            "inferencemodels", MODEL, {"spec": {"traffic": {"targetRPS": TRAFFIC_RISE}}}, NAMESPACE
        )
        self.say(f"  traffic floor raised to {TRAFFIC_RISE} requests/s (spec.traffic.targetRPS)")
        scaled = await self.until(
            lambda m: (
                m["status"].get("replicas", 1) > moved["status"].get("replicas", 1)
                and ready_replicas(m) >= m["status"]["replicas"]
            ),
            timeout=300,
        )
        await self._show_events("scale")
        self.say(model_table([scaled]))
        stop.set()
        await load
        self.say(f"\n  through both changes: {stats.summary()}")
        for error in stats.errors[:5]:
            self.say(f"    failed: {error}")
        return stats.failed

    async def _node_of_model(self) -> str:
        assert self.cluster is not None
        pods = await self.cluster.client.list(
            "pods",
            NAMESPACE,
            labels=f"tierwise.dev/model={MODEL},app.kubernetes.io/component=serving",
        )
        return str(pods[0]["spec"]["nodeName"])

    async def _show_events(self, word: str) -> None:
        """Print the latest Event about `word` (posted just after the status it explains)."""
        assert self.cluster is not None
        for _ in range(20):
            events = await self.cluster.client.list("events", NAMESPACE)
            mine = [
                e
                for e in events
                if e.get("involvedObject", {}).get("name") == MODEL and word in e.get("message", "")
            ]
            if mine:
                event = mine[-1]
                self.say(f"  Event {event['type']} {event['reason']}: {event['message'][:300]}")
                return
            await asyncio.sleep(0.5)
        self.say(f"  (no Event about {word} yet)")
