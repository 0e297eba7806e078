"""The runtime's Prometheus metrics: names and labels are a contract with the operator's queries."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .engine import EngineInfo
from .gpu import GpuMemory, gpu_memory
from .memory import MemoryUsage, read_memory

PREFIX = "tierwise_runtime"

#: Request latency buckets: 1 ms to 30 s, about three per decade.
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: Batch sizes: powers of two, as max-batch settings usually are.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# `*_created` timestamps double the series and no query here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

MemoryReader = Callable[[], MemoryUsage]
GpuReader = Callable[[str], GpuMemory | None]


class RuntimeMetrics:
    """Every metric of one server, in a registry of its own (so tests can run many)."""

    def __init__(self, memory: MemoryReader = read_memory, gpu: GpuReader = gpu_memory) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests", "HTTP requests by route and status code.",
            ["route", "status"], registry=reg,
        )  # fmt: skip
        self.duration = Histogram(
            f"{PREFIX}_request_duration_seconds", "Time from request to last byte, by route.",
            ["route"], buckets=DURATION_BUCKETS, registry=reg,
        )  # fmt: skip
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size", "Items (texts or prompts) per engine call, by route.",
            ["route"], buckets=BATCH_BUCKETS, registry=reg,
        )  # fmt: skip
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth", "Items admitted and waiting for a batch.", registry=reg
        )
        self.running = Gauge(
            f"{PREFIX}_running_sequences",
            "Completions decoding in the running batch (continuous batching).", registry=reg,
        )  # fmt: skip
        self.tokens = Counter(
            f"{PREFIX}_tokens", "Tokens processed: kind=prompt (inputs) or completion.",
            ["kind"], registry=reg,
        )  # fmt: skip
        self.weight_bytes = Gauge(
            f"{PREFIX}_weight_bytes", "Bytes the loaded weights take at their precision.",
            registry=reg,
        )  # fmt: skip
        self.info = Gauge(
            f"{PREFIX}_info", "What this replica serves; always 1.",
            ["model", "precision", "device", "tier"], registry=reg,
        )  # fmt: skip
        self.ready = Gauge(
            f"{PREFIX}_ready", "1 when serving, 0 loading, draining or stalled.", registry=reg
        )
        self.engine_stalled = Gauge(
            f"{PREFIX}_engine_stalled",
            "1 while one engine call runs past its limit (the replica is not ready).",
            registry=reg,
        )  # fmt: skip
        self.engine_overruns = Counter(
            f"{PREFIX}_engine_overruns",
            "Engine calls that ran past their limit (each turned the replica not ready).",
            registry=reg,
        )  # fmt: skip
        self._resources = _ResourceCollector(memory, gpu)
        reg.register(self._resources)
        ProcessCollector(registry=reg)  # the standard process_* figures (CPU time, fds)

    def engine_loaded(self, info: EngineInfo) -> None:
        """Publish what was loaded; GPU memory is read for the engine's device from now on."""
        self.weight_bytes.set(info.weight_bytes)
        self.info.labels(
            model=info.model_name,
            precision=str(info.precision),
            device=info.device,
            tier=str(info.tier),
        ).set(1)
        self._resources.device = info.device

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _ResourceCollector(Collector):
    """Memory figures read at scrape time, so they are never stale."""

    def __init__(self, memory: MemoryReader, gpu: GpuReader) -> None:
        self._memory = memory
        self._gpu = gpu
        self.device: str | None = None

    def collect(self) -> Iterator[Metric]:
        usage = self._memory()
        rss = GaugeMetricFamily(
            f"{PREFIX}_memory_rss_bytes",
            "Resident memory by kind: anon (not reclaimable), file (mapped files), shmem.",
            labels=["kind"],
        )
        rss.add_metric(["anon"], usage.anon_bytes)
        rss.add_metric(["file"], usage.file_bytes)
        rss.add_metric(["shmem"], usage.shmem_bytes)
        yield rss
        yield GaugeMetricFamily(
            f"{PREFIX}_memory_peak_rss_bytes",
            "High-water mark of resident memory.",
            value=usage.peak_rss_bytes,
        )
        gpu = self._gpu(self.device) if self.device is not None else None
        if gpu is not None:
            family = GaugeMetricFamily(
                f"{PREFIX}_gpu_memory_bytes",
                "Memory of the serving GPU (all processes on it), by state.",
                labels=["state"],
            )
            family.add_metric(["used"], gpu.used_bytes)
            family.add_metric(["total"], gpu.total_bytes)
            yield family
