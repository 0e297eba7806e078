"""Running the gateway: the Kubernetes watches, the demand signal and the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from .app import create_app
from .config import GatewaySettings
from .discovery import Watcher
from .endpoints import Directory
from .keys import KeyRing
from .kubeapi import ApiConfig, KubeApi
from .metrics import GatewayMetrics
from .waking import AnnotationDemand

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatewayOptions:
    host: str = "0.0.0.0"
    port: int = 8080
    server: str | None = None
    """An API URL without authentication (the emulator); otherwise kubeconfig or in-cluster."""
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()
    keys_file: Path | None = None
    settings: GatewaySettings = field(default_factory=GatewaySettings)
    #: How long a stopping gateway lets requests in flight finish.
    drain_s: float = 30.0


@dataclass
class RunningGateway:
    url: str
    directory: Directory
    watcher: Watcher
    metrics: GatewayMetrics
    demand: AnnotationDemand


@contextlib.asynccontextmanager
async def running(options: GatewayOptions) -> AsyncIterator[RunningGateway]:
    """The gateway serving on options.host:port (0: a free port) until the block ends."""
    directory = Directory()
    metrics = GatewayMetrics()
    keys = KeyRing(options.keys_file)
    config = ApiConfig.load(options.server, options.kubeconfig)
    async with aiohttp.ClientSession() as session:
        api = KubeApi(config, session)
        watcher = Watcher(api, directory, options.namespaces)
        demand = AnnotationDemand(api.patch_model, options.settings.demand_interval_s, metrics)
        app = create_app(
            directory, options.settings, keys=keys, metrics=metrics, signal=demand,
            ready=lambda: watcher.synced,
        )  # fmt: skip
        runner = web.AppRunner(app, shutdown_timeout=options.drain_s, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, options.host, options.port)
        await site.start()
        port = runner.addresses[0][1]
        host = "127.0.0.1" if options.host in ("0.0.0.0", "") else options.host
        watching = asyncio.create_task(watcher.run())
        try:
            yield RunningGateway(f"http://{host}:{port}", directory, watcher, metrics, demand)
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await demand.close()
            await runner.cleanup()


async def serve_forever(options: GatewayOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(options) as gateway:
        log.info("gateway listening on %s", gateway.url)
        await stop.wait()
        log.info("stopping: letting requests in flight finish")
