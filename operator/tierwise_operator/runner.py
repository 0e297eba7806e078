"""`tierwise run`: kopf with tierwise's settings, its handlers, and /healthz + /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from decimal import Decimal

import kopf
from aiohttp import web

from .handlers import build_registry
from .kube import Kube, api_client
from .metrics.prometheus import PrometheusSource
from .metrics.prometheus_auth import PrometheusAuth
from .observability import OperatorMetrics, health_app
from .planner import PlannerSettings
from .settings import Settings
from .state import Clock, ObservationSource, OperatorState, utc_now

log = logging.getLogger(__name__)


def peering_priority() -> int:
    """A random peering priority: two replicas tie with odds of one in two billion."""
    return secrets.randbelow(2**31 - 2) + 1


def planner_settings(settings: Settings) -> PlannerSettings:
    return PlannerSettings(
        switch_margin=Decimal(str(float(settings.savings_margin))),
        min_dwell=timedelta(seconds=float(settings.tier_dwell)),
        scale_down_window=timedelta(seconds=float(settings.scale_down_stabilization)),
        breach_settle=timedelta(seconds=float(settings.metrics_window)),
    )


def prometheus_auth(settings: Settings) -> PrometheusAuth:
    return PrometheusAuth(
        ca_file=settings.prometheus_ca_file,
        token_file=settings.prometheus_token_file,
        basic_auth_dir=settings.prometheus_basic_auth_dir,
    )


def make_state(
    settings: Settings,
    *,
    server: str | None = None,
    metrics: OperatorMetrics | None = None,
    clock: Clock = utc_now,
    source: ObservationSource | None = None,
) -> OperatorState:
    """Everything the handlers share, for one run against `server` (the kubeconfig when None).

    Live metrics come from `source` when given, else from Prometheus when configured.
    """
    if source is None and settings.prometheus_url:
        source = PrometheusSource(
            settings.prometheus_url,
            settings.promql,
            window=str(settings.metrics_window),
            auth=prometheus_auth(settings),
        )
    return OperatorState(
        kube=Kube(api_client(server), settings.field_manager),
        settings=settings,
        planner=planner_settings(settings),
        metrics=metrics or OperatorMetrics(),
        source=source,
        clock=clock,
    )


def registry_for(
    settings: Settings,
    *,
    server: str | None = None,
    metrics: OperatorMetrics | None = None,
    clock: Clock = utc_now,
    login: bool = True,
    source: ObservationSource | None = None,
) -> kopf.OperatorRegistry:
    """The handlers for one run; with `server`, every client talks to that API server.

    Without `server` kopf logs in as the kubernetes client does (in-cluster, else the
    kubeconfig). `login=False` leaves the login handler to the caller (the emulator's
    runner adds one).
    """
    registry = build_registry(
        lambda: make_state(settings, server=server, metrics=metrics, clock=clock, source=source),
        float(settings.replan_interval),
    )
    if not login:
        return registry
    if server is None:
        # A fresh OperatorRegistry has none of the fallback logins of kopf's default one.
        kopf.on.login(registry=registry, id="login_via_client")(kopf.login_via_client)
        return registry

    @kopf.on.login(registry=registry, id="login")
    def login_to_server(**_: object) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server, insecure=True)

    return registry


@contextlib.asynccontextmanager
async def serve_health(
    metrics: OperatorMetrics, ready: asyncio.Event, port: int
) -> AsyncIterator[None]:
    runner = web.AppRunner(health_app(metrics, ready.is_set), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", port)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()


async def run(
    settings: Settings,
    *,
    namespaces: Sequence[str] = (),
    standalone: bool = True,
    peering: str | None = None,
    priority: int | None = None,
    port: int | None = None,
) -> None:
    """Run until interrupted: watch InferenceModels and keep them planned and served.

    With `peering`, the live replica of highest `priority` works and the others
    wait. kopf freezes every replica of a tie, so replicas of one Deployment (which
    share their arguments) draw a random priority unless one is given.
    """
    if peering is not None and priority is None:
        priority = peering_priority()
        log.info("peering %r with priority %d", peering, priority)
    metrics = OperatorMetrics()
    ready = asyncio.Event()
    registry = registry_for(settings, metrics=metrics)
    async with contextlib.AsyncExitStack() as stack:
        if port:
            await stack.enter_async_context(serve_health(metrics, ready, port))
        await kopf.operator(
            registry=registry,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            standalone=standalone,
            peering_name=peering,
            priority=priority,
            ready_flag=ready,
            memo=kopf.Memo(),
        )
