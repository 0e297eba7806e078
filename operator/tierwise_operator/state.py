"""Operator-wide state shared by the handlers: clients, settings, metrics and the live snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from .api import TierClass
from .arbiter import Arbiter
from .kube import NODES, PODS, TIER_CLASSES, Kube, KubeError
from .metrics.observation import ModelKey, Observation
from .metrics.snapshot import build_snapshot
from .observability import OperatorMetrics
from .planner import MetricsSnapshot, PlannerSettings
from .settings import Settings
from .unchanged import AppliedChildren

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class ObservationSource(Protocol):
    """Where live metrics come from: Prometheus, or the targets themselves in local mode."""

    def collect(self, models: Iterable[ModelKey], now: datetime) -> Observation: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LiveMetrics:
    """The latest observation and snapshot, refreshed by one background loop for all models."""

    observation: Observation | None = None
    snapshot: MetricsSnapshot | None = None
    fresh_at: datetime | None = None
    """When traffic metrics were last available (the planner's staleness clock)."""


@dataclass
class OperatorState:
    kube: Kube
    settings: Settings
    planner: PlannerSettings
    metrics: OperatorMetrics
    source: ObservationSource | None
    """None when no Prometheus is configured: capacity from the Kubernetes API only."""
    clock: Clock = utc_now
    live: LiveMetrics = field(default_factory=LiveMetrics)
    models: set[ModelKey] = field(default_factory=set)
    """Models seen by a reconcile: whose traffic to query."""
    locks: dict[ModelKey, asyncio.Lock] = field(default_factory=dict)
    child_digests: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """Last seen state of each child (kind, namespace, name), to wake owners on real changes."""
    applied: AppliedChildren = field(default_factory=AppliedChildren)
    """What was last applied to each child, so a plan that holds sends no apply."""
    versions: dict[ModelKey, str] = field(default_factory=dict)
    """The resourceVersion of each model as this operator last read or wrote it."""

    indices: dict[str, Any] | None = None
    """kopf's indices, kept by the first handler that sees them (they stay live)."""
    arbiter: Arbiter = field(init=False)
    """Plans every model together, one round at a time."""
    _collector: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.arbiter = Arbiter(self, debounce=float(self.settings.plan_debounce))

    def lock(self, key: ModelKey) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    async def start_collector(
        self, interval: float, after: Callable[[OperatorState], Awaitable[None]] | None = None
    ) -> None:
        """Collect once now, so the first plans see the cluster, then every `interval`,
        calling `after(state)` (the re-plan of every model) after each collection."""
        await self._collect_once()
        self._collector = asyncio.create_task(self._collect_forever(interval, after))

    async def stop(self) -> None:
        await self.arbiter.stop()
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector

    async def refresh_now(self) -> None:
        """Collect at once (a TierClass changed), between the regular rounds."""
        await self._collect_once()

    async def _collect_forever(
        self, interval: float, after: Callable[[OperatorState], Awaitable[None]] | None
    ) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._collect_once()
            if after is not None:
                try:
                    await after(self)
                except Exception:  # the loop must outlive any one round's failure
                    log.exception("periodic re-plan failed; trying again next round")

    async def _collect_once(self) -> None:
        try:
            await self.refresh(await self._tiers())
        except KubeError as exc:
            log.warning("metrics collection failed: %s", exc)

    async def _tiers(self) -> list[TierClass]:
        valid = []
        for body in await self.kube.list(TIER_CLASSES):
            try:
                valid.append(TierClass.model_validate(body))
            except ValidationError:
                continue  # an Event on the TierClass itself says why
        return valid

    async def refresh(self, tiers: list[TierClass]) -> None:
        """Collect metrics once: Prometheus if configured, capacity from the Kubernetes API."""
        now = self.clock()
        observation = await self._observe(now)
        if observation.available:
            self.live.fresh_at = now
        try:
            nodes = await self.kube.list(NODES)
            pods = await self.kube.list(PODS)
        except KubeError as exc:
            log.warning("cannot read nodes and pods for capacity: %s", exc)
            self.live.observation = observation
            return
        self.live.observation = observation
        # Without live metrics the snapshot counts as stale at once, so the
        # planner holds every model on its tier (it may still scale replicas).
        self.live.snapshot = build_snapshot(
            tiers=tiers,
            nodes=nodes,
            pods=pods,
            observation=observation,
            metrics_at=now if observation.available else datetime.fromtimestamp(0, UTC),
        )

    async def _observe(self, now: datetime) -> Observation:
        if self.source is None:
            return Observation(
                at=now, source="kubernetes", available=False, reason="PrometheusNotConfigured",
                message="no Prometheus URL set (TIERWISE_PROMETHEUS_URL): capacity from the "
                "Kubernetes API, no live traffic, tiers held",
            )  # fmt: skip
        return await asyncio.to_thread(self.source.collect, sorted(self.models), now)
